"""redditvision: build custom image classifiers from Reddit.

Collect submissions of a subreddit, download their images safely, label and split them,
write the dataset to Cloud Storage or a local folder, train on Vertex AI AutoML, legacy
AutoML or on this machine, classify new images, and compare the custom model with a generic
labeler. The public names are re-exported here; submodules starting with ``_`` are private.
"""

import importlib.metadata as _metadata

from redditvision.backends.automl import AutoMLShutdownWarning, LegacyAutoMLBackend
from redditvision.backends.local import (
    EfficientNetLite0Extractor,
    FeatureExtractor,
    ImageNetLabeler,
    LocalBackend,
)
from redditvision.backends.vertex import (
    VertexAutoMLBackend,
    VertexBatchPrediction,
    VertexDeployment,
    VertexPredictor,
)
from redditvision.checks import CheckIssue, DatasetCheckReport, check_dataset, convert_unsupported
from redditvision.classify import Classifier, PredictionBackend, Predictor
from redditvision.compare import (
    ClassComparison,
    ComparisonReport,
    ComparisonSummary,
    ImageComparison,
    VisionComparator,
)
from redditvision.download import DownloadLimits, ImageDownloader
from redditvision.errors import (
    ComparisonError,
    ConfigError,
    DatasetError,
    DownloadError,
    ListingFormatError,
    MissingDependencyError,
    ModelFormatError,
    PredictionError,
    RedditVisionError,
    SourceError,
    StorageError,
    TrainingError,
    UnsafeURLError,
)
from redditvision.labelers import CloudVisionLabeler, GenericLabeler, ImageLabels
from redditvision.labels import (
    LabelingReport,
    LabelMap,
    RuleSet,
    export_label_csv,
    label_csv,
    label_folders,
    label_records,
    normalize_label,
)
from redditvision.manifest import ImageManifest
from redditvision.metrics import compute_evaluation
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    GenericLabel,
    ImagePost,
    ImageRecord,
    LabeledDataset,
    LabeledImage,
    LabelMetrics,
    MediaItem,
    MediaKind,
    Misclassified,
    MLUse,
    Prediction,
    RecordStatus,
    SkippedMedia,
    ThresholdMetrics,
    TrainedModel,
    TrainingBudget,
)
from redditvision.reddit import (
    CollectStats,
    DumpFileSource,
    ListingFileSource,
    PostFilters,
    RedditImageSource,
    SkipReason,
    post_from_submission_data,
    resolve_media,
)
from redditvision.report import ReportFiles, write_evaluation_report, write_report
from redditvision.retry import DEFAULT, RetryPolicy, is_transient, parse_retry_after
from redditvision.split import group_near_duplicates, split_dataset
from redditvision.storage import (
    DatasetWriter,
    GcsDatasetWriter,
    LocalDatasetWriter,
    UploadResult,
    load_local_dataset,
    write_local_dataset,
)
from redditvision.training import AutoMLTrainer, TrainingBackend

# -- more public names are added below by each step's module --

try:
    __version__ = _metadata.version("redditvision")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree, not installed
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT",
    "AutoMLShutdownWarning",
    "AutoMLTrainer",
    "CheckIssue",
    "ClassComparison",
    "Classifier",
    "CloudVisionLabeler",
    "CollectStats",
    "ComparisonError",
    "ComparisonReport",
    "ComparisonSummary",
    "ConfigError",
    "DatasetCheckReport",
    "DatasetError",
    "DatasetLocation",
    "DatasetWriter",
    "DownloadError",
    "DownloadLimits",
    "DumpFileSource",
    "EfficientNetLite0Extractor",
    "Evaluation",
    "FeatureExtractor",
    "GcsDatasetWriter",
    "GenericLabel",
    "GenericLabeler",
    "ImageComparison",
    "ImageDownloader",
    "ImageLabels",
    "ImageManifest",
    "ImageNetLabeler",
    "ImagePost",
    "ImageRecord",
    "LabelMap",
    "LabelMetrics",
    "LabeledDataset",
    "LabeledImage",
    "LabelingReport",
    "LegacyAutoMLBackend",
    "ListingFileSource",
    "ListingFormatError",
    "LocalBackend",
    "LocalDatasetWriter",
    "MLUse",
    "MediaItem",
    "MediaKind",
    "Misclassified",
    "MissingDependencyError",
    "ModelFormatError",
    "PostFilters",
    "Prediction",
    "PredictionBackend",
    "PredictionError",
    "Predictor",
    "RecordStatus",
    "RedditImageSource",
    "RedditVisionError",
    "ReportFiles",
    "RetryPolicy",
    "RuleSet",
    "SkipReason",
    "SkippedMedia",
    "SourceError",
    "StorageError",
    "ThresholdMetrics",
    "TrainedModel",
    "TrainingBackend",
    "TrainingBudget",
    "TrainingError",
    "UnsafeURLError",
    "UploadResult",
    "VertexAutoMLBackend",
    "VertexBatchPrediction",
    "VertexDeployment",
    "VertexPredictor",
    "VisionComparator",
    "__version__",
    "check_dataset",
    "compute_evaluation",
    "convert_unsupported",
    "export_label_csv",
    "group_near_duplicates",
    "is_transient",
    "label_csv",
    "label_folders",
    "label_records",
    "load_local_dataset",
    "normalize_label",
    "parse_retry_after",
    "post_from_submission_data",
    "resolve_media",
    "split_dataset",
    "write_evaluation_report",
    "write_local_dataset",
    "write_report",
]
