"""The public surface is exactly the list below, as httpx's ``tests/test_exported_members.py``.

A name added to or removed from ``redditvision.__all__`` must be added to or removed from
``EXPECTED`` too: the API surface changes only on purpose.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import redditvision

EXPECTED = [
    "__version__",
    "AutoMLShutdownWarning",
    "AutoMLTrainer",
    "Backend",
    "BackendOptions",
    "BackendSpec",
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
    "Deployer",
    "Deployment",
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
    "RunConfig",
    "SkipReason",
    "SkippedMedia",
    "SourceError",
    "StorageError",
    "TargetLimits",
    "ThresholdMetrics",
    "TrainedModel",
    "TrainingBackend",
    "TrainingBudget",
    "TrainingError",
    "Undeployment",
    "UnsafeURLError",
    "UploadResult",
    "VertexAutoMLBackend",
    "VertexBatchPrediction",
    "VertexDeployment",
    "VertexPredictor",
    "VisionComparator",
    "backend_names",
    "build_backend",
    "check_dataset",
    "compute_evaluation",
    "convert_unsupported",
    "export_label_csv",
    "get_backend",
    "group_near_duplicates",
    "label_csv",
    "label_folders",
    "label_records",
    "load_local_dataset",
    "normalize_label",
    "post_from_submission_data",
    "register_backend",
    "resolve_media",
    "run",
    "split_dataset",
    "write_evaluation_report",
    "write_local_dataset",
    "write_report",
]


def test_all_is_exactly_the_expected_public_names() -> None:
    assert redditvision.__all__ == EXPECTED


def test_dir_shows_every_public_name_and_no_other() -> None:
    public = {name for name in dir(redditvision) if not name.startswith("_")}
    # Submodules imported by now are attributes of the package, not names of the API.
    modules = {name for name in public if type(getattr(redditvision, name)).__name__ == "module"}
    assert public - modules == set(EXPECTED) - {"__version__"}


def test_every_exported_name_resolves_and_names_where_it_lives() -> None:
    for name in redditvision.__all__:
        obj = getattr(redditvision, name)
        if name == "__version__":
            continue
        module = getattr(obj, "__module__", "") or ""
        assert module.startswith("redditvision"), (name, module)


def test_internals_are_not_exported() -> None:
    for name in ("DEFAULT", "parse_retry_after", "is_transient", "call_with_retry"):
        assert name not in redditvision.__all__
        assert not hasattr(redditvision, name)


def test_every_exported_name_has_a_docstring() -> None:
    for name in redditvision.__all__:
        if name == "__version__":
            continue
        assert (getattr(redditvision, name).__doc__ or "").strip(), name


def test_version_comes_from_package_metadata() -> None:
    assert redditvision.__version__ == importlib.metadata.version("redditvision")


def test_importing_the_package_loads_no_cloud_client() -> None:
    code = (
        "import sys, redditvision\n"
        "loaded = sorted(m for m in sys.modules if m.startswith("
        "('google.cloud.automl', 'google.cloud.aiplatform', 'google.cloud.vision', "
        "'google.cloud.storage', 'torch')))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


def test_the_registry_loads_no_cloud_client_until_a_cloud_backend_is_built() -> None:
    code = (
        "import sys\n"
        "from redditvision.backends import backend_names, get_backend\n"
        "names = backend_names()\n"
        "limits = [get_backend(n).limits.min_images_per_label for n in names]\n"
        "loaded = sorted(m for m in sys.modules if m.startswith("
        "('google.cloud.automl', 'google.cloud.aiplatform')))\n"
        "print(','.join(names), ','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["local,vertex,automl"]
