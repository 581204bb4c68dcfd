"""redditvision: build custom image classifiers from Reddit.

Collect submissions of a subreddit, download their images safely, label and split them,
write the dataset to Cloud Storage or a local folder, train on Vertex AI AutoML, legacy
AutoML or on this machine, classify new images, and compare the custom model with a generic
labeler. The main job is :func:`run` with a :class:`RunConfig` (``redditvision run``).

The public names are re-exported here and imported on first use (PEP 562, see
:mod:`redditvision._lazy`), so ``import redditvision`` is cheap and loads no cloud client;
submodules starting with ``_`` are private.
"""

import importlib.metadata as _metadata
import typing as _typing

from redditvision._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from redditvision.backends import (
        Backend as Backend,
    )
    from redditvision.backends import (
        BackendOptions as BackendOptions,
    )
    from redditvision.backends import (
        BackendSpec as BackendSpec,
    )
    from redditvision.backends import (
        Deployer as Deployer,
    )
    from redditvision.backends import (
        Deployment as Deployment,
    )
    from redditvision.backends import (
        PredictionBackend as PredictionBackend,
    )
    from redditvision.backends import (
        Predictor as Predictor,
    )
    from redditvision.backends import (
        TargetLimits as TargetLimits,
    )
    from redditvision.backends import (
        TrainingBackend as TrainingBackend,
    )
    from redditvision.backends import (
        Undeployment as Undeployment,
    )
    from redditvision.backends import (
        backend_names as backend_names,
    )
    from redditvision.backends import (
        build_backend as build_backend,
    )
    from redditvision.backends import (
        get_backend as get_backend,
    )
    from redditvision.backends import (
        register_backend as register_backend,
    )
    from redditvision.backends.automl import (
        AutoMLShutdownWarning as AutoMLShutdownWarning,
    )
    from redditvision.backends.automl import (
        LegacyAutoMLBackend as LegacyAutoMLBackend,
    )
    from redditvision.backends.local import (
        EfficientNetLite0Extractor as EfficientNetLite0Extractor,
    )
    from redditvision.backends.local import (
        FeatureExtractor as FeatureExtractor,
    )
    from redditvision.backends.local import (
        LocalBackend as LocalBackend,
    )
    from redditvision.backends.vertex import (
        VertexAutoMLBackend as VertexAutoMLBackend,
    )
    from redditvision.backends.vertex import (
        VertexBatchPrediction as VertexBatchPrediction,
    )
    from redditvision.backends.vertex import (
        VertexDeployment as VertexDeployment,
    )
    from redditvision.backends.vertex import (
        VertexPredictor as VertexPredictor,
    )
    from redditvision.checks import (
        CheckIssue as CheckIssue,
    )
    from redditvision.checks import (
        DatasetCheckReport as DatasetCheckReport,
    )
    from redditvision.checks import (
        check_dataset as check_dataset,
    )
    from redditvision.checks import (
        convert_unsupported as convert_unsupported,
    )
    from redditvision.classify import (
        Classifier as Classifier,
    )
    from redditvision.compare import (
        ClassComparison as ClassComparison,
    )
    from redditvision.compare import (
        ComparisonReport as ComparisonReport,
    )
    from redditvision.compare import (
        ComparisonSummary as ComparisonSummary,
    )
    from redditvision.compare import (
        ImageComparison as ImageComparison,
    )
    from redditvision.compare import (
        VisionComparator as VisionComparator,
    )
    from redditvision.download import (
        DownloadLimits as DownloadLimits,
    )
    from redditvision.download import (
        ImageDownloader as ImageDownloader,
    )
    from redditvision.errors import (
        ComparisonError as ComparisonError,
    )
    from redditvision.errors import (
        ConfigError as ConfigError,
    )
    from redditvision.errors import (
        DatasetError as DatasetError,
    )
    from redditvision.errors import (
        DownloadError as DownloadError,
    )
    from redditvision.errors import (
        ListingFormatError as ListingFormatError,
    )
    from redditvision.errors import (
        MissingDependencyError as MissingDependencyError,
    )
    from redditvision.errors import (
        ModelFormatError as ModelFormatError,
    )
    from redditvision.errors import (
        PredictionError as PredictionError,
    )
    from redditvision.errors import (
        RedditVisionError as RedditVisionError,
    )
    from redditvision.errors import (
        SourceError as SourceError,
    )
    from redditvision.errors import (
        StorageError as StorageError,
    )
    from redditvision.errors import (
        TrainingError as TrainingError,
    )
    from redditvision.errors import (
        UnsafeURLError as UnsafeURLError,
    )
    from redditvision.labelers import (
        CloudVisionLabeler as CloudVisionLabeler,
    )
    from redditvision.labelers import (
        GenericLabeler as GenericLabeler,
    )
    from redditvision.labelers import (
        ImageLabels as ImageLabels,
    )
    from redditvision.labelers import (
        ImageNetLabeler as ImageNetLabeler,
    )
    from redditvision.labels import (
        LabelingReport as LabelingReport,
    )
    from redditvision.labels import (
        LabelMap as LabelMap,
    )
    from redditvision.labels import (
        RuleSet as RuleSet,
    )
    from redditvision.labels import (
        export_label_csv as export_label_csv,
    )
    from redditvision.labels import (
        label_csv as label_csv,
    )
    from redditvision.labels import (
        label_folders as label_folders,
    )
    from redditvision.labels import (
        label_records as label_records,
    )
    from redditvision.labels import (
        normalize_label as normalize_label,
    )
    from redditvision.manifest import (
        ImageManifest as ImageManifest,
    )
    from redditvision.metrics import (
        compute_evaluation as compute_evaluation,
    )
    from redditvision.models import (
        DatasetLocation as DatasetLocation,
    )
    from redditvision.models import (
        Evaluation as Evaluation,
    )
    from redditvision.models import (
        GenericLabel as GenericLabel,
    )
    from redditvision.models import (
        ImagePost as ImagePost,
    )
    from redditvision.models import (
        ImageRecord as ImageRecord,
    )
    from redditvision.models import (
        LabeledDataset as LabeledDataset,
    )
    from redditvision.models import (
        LabeledImage as LabeledImage,
    )
    from redditvision.models import (
        LabelMetrics as LabelMetrics,
    )
    from redditvision.models import (
        MediaItem as MediaItem,
    )
    from redditvision.models import (
        MediaKind as MediaKind,
    )
    from redditvision.models import (
        Misclassified as Misclassified,
    )
    from redditvision.models import (
        MLUse as MLUse,
    )
    from redditvision.models import (
        Prediction as Prediction,
    )
    from redditvision.models import (
        RecordStatus as RecordStatus,
    )
    from redditvision.models import (
        SkippedMedia as SkippedMedia,
    )
    from redditvision.models import (
        ThresholdMetrics as ThresholdMetrics,
    )
    from redditvision.models import (
        TrainedModel as TrainedModel,
    )
    from redditvision.models import (
        TrainingBudget as TrainingBudget,
    )
    from redditvision.pipeline import (
        RunConfig as RunConfig,
    )
    from redditvision.pipeline import (
        run as run,
    )
    from redditvision.reddit import (
        CollectStats as CollectStats,
    )
    from redditvision.reddit import (
        DumpFileSource as DumpFileSource,
    )
    from redditvision.reddit import (
        ListingFileSource as ListingFileSource,
    )
    from redditvision.reddit import (
        PostFilters as PostFilters,
    )
    from redditvision.reddit import (
        RedditImageSource as RedditImageSource,
    )
    from redditvision.reddit import (
        SkipReason as SkipReason,
    )
    from redditvision.reddit import (
        post_from_submission_data as post_from_submission_data,
    )
    from redditvision.reddit import (
        resolve_media as resolve_media,
    )
    from redditvision.report import (
        ReportFiles as ReportFiles,
    )
    from redditvision.report import (
        write_evaluation_report as write_evaluation_report,
    )
    from redditvision.report import (
        write_report as write_report,
    )
    from redditvision.retry import (
        RetryPolicy as RetryPolicy,
    )
    from redditvision.split import (
        group_near_duplicates as group_near_duplicates,
    )
    from redditvision.split import (
        split_dataset as split_dataset,
    )
    from redditvision.storage import (
        DatasetWriter as DatasetWriter,
    )
    from redditvision.storage import (
        GcsDatasetWriter as GcsDatasetWriter,
    )
    from redditvision.storage import (
        LocalDatasetWriter as LocalDatasetWriter,
    )
    from redditvision.storage import (
        UploadResult as UploadResult,
    )
    from redditvision.storage import (
        load_local_dataset as load_local_dataset,
    )
    from redditvision.storage import (
        write_local_dataset as write_local_dataset,
    )
    from redditvision.training import (
        AutoMLTrainer as AutoMLTrainer,
    )

try:
    __version__ = _metadata.version("redditvision")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree, not installed
    __version__ = "0.0.0"

_EXPORTS = {
    "AutoMLShutdownWarning": "redditvision.backends.automl",
    "AutoMLTrainer": "redditvision.training",
    "Backend": "redditvision.backends",
    "BackendOptions": "redditvision.backends",
    "BackendSpec": "redditvision.backends",
    "CheckIssue": "redditvision.checks",
    "ClassComparison": "redditvision.compare",
    "Classifier": "redditvision.classify",
    "CloudVisionLabeler": "redditvision.labelers",
    "CollectStats": "redditvision.reddit",
    "ComparisonError": "redditvision.errors",
    "ComparisonReport": "redditvision.compare",
    "ComparisonSummary": "redditvision.compare",
    "ConfigError": "redditvision.errors",
    "DatasetCheckReport": "redditvision.checks",
    "DatasetError": "redditvision.errors",
    "DatasetLocation": "redditvision.models",
    "DatasetWriter": "redditvision.storage",
    "Deployer": "redditvision.backends",
    "Deployment": "redditvision.backends",
    "DownloadError": "redditvision.errors",
    "DownloadLimits": "redditvision.download",
    "DumpFileSource": "redditvision.reddit",
    "EfficientNetLite0Extractor": "redditvision.backends.local",
    "Evaluation": "redditvision.models",
    "FeatureExtractor": "redditvision.backends.local",
    "GcsDatasetWriter": "redditvision.storage",
    "GenericLabel": "redditvision.models",
    "GenericLabeler": "redditvision.labelers",
    "ImageComparison": "redditvision.compare",
    "ImageDownloader": "redditvision.download",
    "ImageLabels": "redditvision.labelers",
    "ImageManifest": "redditvision.manifest",
    "ImageNetLabeler": "redditvision.labelers",
    "ImagePost": "redditvision.models",
    "ImageRecord": "redditvision.models",
    "LabelMap": "redditvision.labels",
    "LabelMetrics": "redditvision.models",
    "LabeledDataset": "redditvision.models",
    "LabeledImage": "redditvision.models",
    "LabelingReport": "redditvision.labels",
    "LegacyAutoMLBackend": "redditvision.backends.automl",
    "ListingFileSource": "redditvision.reddit",
    "ListingFormatError": "redditvision.errors",
    "LocalBackend": "redditvision.backends.local",
    "LocalDatasetWriter": "redditvision.storage",
    "MLUse": "redditvision.models",
    "MediaItem": "redditvision.models",
    "MediaKind": "redditvision.models",
    "Misclassified": "redditvision.models",
    "MissingDependencyError": "redditvision.errors",
    "ModelFormatError": "redditvision.errors",
    "PostFilters": "redditvision.reddit",
    "Prediction": "redditvision.models",
    "PredictionBackend": "redditvision.backends",
    "PredictionError": "redditvision.errors",
    "Predictor": "redditvision.backends",
    "RecordStatus": "redditvision.models",
    "RedditImageSource": "redditvision.reddit",
    "RedditVisionError": "redditvision.errors",
    "ReportFiles": "redditvision.report",
    "RetryPolicy": "redditvision.retry",
    "RuleSet": "redditvision.labels",
    "RunConfig": "redditvision.pipeline",
    "SkipReason": "redditvision.reddit",
    "SkippedMedia": "redditvision.models",
    "SourceError": "redditvision.errors",
    "StorageError": "redditvision.errors",
    "TargetLimits": "redditvision.backends",
    "ThresholdMetrics": "redditvision.models",
    "TrainedModel": "redditvision.models",
    "TrainingBackend": "redditvision.backends",
    "TrainingBudget": "redditvision.models",
    "TrainingError": "redditvision.errors",
    "Undeployment": "redditvision.backends",
    "UnsafeURLError": "redditvision.errors",
    "UploadResult": "redditvision.storage",
    "VertexAutoMLBackend": "redditvision.backends.vertex",
    "VertexBatchPrediction": "redditvision.backends.vertex",
    "VertexDeployment": "redditvision.backends.vertex",
    "VertexPredictor": "redditvision.backends.vertex",
    "VisionComparator": "redditvision.compare",
    "backend_names": "redditvision.backends",
    "build_backend": "redditvision.backends",
    "check_dataset": "redditvision.checks",
    "compute_evaluation": "redditvision.metrics",
    "convert_unsupported": "redditvision.checks",
    "export_label_csv": "redditvision.labels",
    "get_backend": "redditvision.backends",
    "group_near_duplicates": "redditvision.split",
    "label_csv": "redditvision.labels",
    "label_folders": "redditvision.labels",
    "label_records": "redditvision.labels",
    "load_local_dataset": "redditvision.storage",
    "normalize_label": "redditvision.labels",
    "post_from_submission_data": "redditvision.reddit",
    "register_backend": "redditvision.backends",
    "resolve_media": "redditvision.reddit",
    "run": "redditvision.pipeline",
    "split_dataset": "redditvision.split",
    "write_evaluation_report": "redditvision.report",
    "write_local_dataset": "redditvision.storage",
    "write_report": "redditvision.report",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
