"""Apache Beam transforms over redditvision's steps (extra ``[beam]``).

The same steps as the in-process job, as composite transforms that run on the DirectRunner
here and on Google Cloud Dataflow unchanged::

    posts, bad_reads = pipeline | ReadSubmissions(listings=["listings/*.json"])
    images, bad_downloads = posts | DownloadImages("gs://bucket/run/images")
    pictures = images | DedupImages()
    results, bad_predictions = pictures | ClassifyImages("gs://bucket/models/bmw")
    results, bad_labels = results | GenericLabels("imagenet")
    results | WriteResults("gs://bucket/run/results")

``python -m redditvision.beam --help`` runs the whole pipeline with standard Beam pipeline
options. Importing this package without Apache Beam raises
:class:`~redditvision.errors.MissingDependencyError` naming
``pip install 'redditvision[beam]'``.
"""

from redditvision.beam._compat import require_beam

require_beam()

from redditvision.beam.elements import (  # noqa: E402 - after the guard that names the extra
    BIGQUERY_SCHEMA,
    DeadLetter,
    ImageResult,
    MediaTask,
    StoredImage,
    dead_letter_to_row,
    result_to_row,
)
from redditvision.beam.pipeline import PipelineConfig, build_pipeline  # noqa: E402
from redditvision.beam.transforms import (  # noqa: E402
    DEAD_LETTER,
    LABELERS,
    ClassifyImages,
    DedupImages,
    DownloadImages,
    GenericLabels,
    ReadSubmissions,
    ResolveMedia,
    WriteDeadLetters,
    WriteResults,
    cloud_vision_labeler,
    imagenet_labeler,
    local_backend,
    vertex_backend,
)

__all__ = [
    "BIGQUERY_SCHEMA",
    "DEAD_LETTER",
    "LABELERS",
    "ClassifyImages",
    "DeadLetter",
    "DedupImages",
    "DownloadImages",
    "GenericLabels",
    "ImageResult",
    "MediaTask",
    "PipelineConfig",
    "ReadSubmissions",
    "ResolveMedia",
    "StoredImage",
    "WriteDeadLetters",
    "WriteResults",
    "build_pipeline",
    "cloud_vision_labeler",
    "dead_letter_to_row",
    "imagenet_labeler",
    "local_backend",
    "result_to_row",
    "vertex_backend",
]
