"""The local backend: train, evaluate and predict on this machine, offline.

Needs the ``[local]`` extra (``pip install 'redditvision[local]'``; install a CPU build of
torch first). Importing this package does not import torch or scikit-learn: they are loaded
when a model is first used, and a missing one raises
:class:`~redditvision.errors.MissingDependencyError` naming the install command.

Public names:

* :class:`LocalBackend` - :class:`~redditvision.training.TrainingBackend` and
  :class:`~redditvision.classify.PredictionBackend` on this machine.
* :class:`LocalPredictor` - a loaded model folder.
* :class:`FeatureExtractor` - the protocol of image feature extractors;
  :class:`EfficientNetLite0Extractor` is the default.
* :class:`ImageNetLabeler` - offline generic labels (ImageNet-1k classes).
* :class:`Candidate`, :class:`SearchResult`, :func:`default_candidates` - the head search.
"""

from __future__ import annotations

from redditvision.backends.local._backend import (
    LocalBackend,
    LocalPredictor,
    ProgressCallback,
    default_model_dir,
)
from redditvision.backends.local._cache import EmbeddingCache, default_cache_dir
from redditvision.backends.local._deps import INSTALL_HINT
from redditvision.backends.local._extractor import (
    AUGMENTATIONS,
    EfficientNetLite0Extractor,
    FeatureExtractor,
    ImageDecodeError,
    default_num_threads,
)
from redditvision.backends.local._search import (
    Candidate,
    SearchResult,
    default_candidates,
    search,
)
from redditvision.labelers.imagenet import ImageNetLabeler, imagenet_class_names

__all__ = [
    "AUGMENTATIONS",
    "INSTALL_HINT",
    "Candidate",
    "EfficientNetLite0Extractor",
    "EmbeddingCache",
    "FeatureExtractor",
    "ImageDecodeError",
    "ImageNetLabeler",
    "LocalBackend",
    "LocalPredictor",
    "ProgressCallback",
    "SearchResult",
    "default_cache_dir",
    "default_candidates",
    "default_model_dir",
    "default_num_threads",
    "imagenet_class_names",
    "search",
]
