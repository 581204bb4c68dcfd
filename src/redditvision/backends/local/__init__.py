"""The local backend: train, evaluate and predict on this machine, offline.

Needs the ``[local]`` extra (``pip install 'redditvision[local]'``; install a CPU build of
torch first). Importing this package does not import torch or scikit-learn: they are loaded
when a model is first used, and a missing one raises
:class:`~redditvision.errors.MissingDependencyError` naming the install command.

Public names:

* :class:`LocalBackend` - :class:`~redditvision.training.TrainingBackend` and
  :class:`~redditvision.classify.PredictionBackend` on this machine; ``quality=`` picks a
  :class:`Preset` from :data:`PRESETS` (``fast``, ``medium`` (default), ``high``, ``best``).
* :func:`make_backbone`, :class:`Backbone`, :func:`backbone_from_timm`,
  :func:`backbone_from_open_clip` - pretrained networks (EfficientNet-Lite0/1/2, timm,
  open_clip); :class:`FineTunedExtractor` - features of one.
* :class:`TrainingEvent` - what fine-tuning reports (epochs, resume, early stop, time limit).
* :func:`plot_training_curve` - a model's training curve as PNG bytes.
* :class:`LocalPredictor` - a loaded model folder.
* :class:`FeatureExtractor` - the protocol of image feature extractors;
  :class:`EfficientNetLite0Extractor` is the default.
* :class:`ImageNetLabeler` - offline generic labels (ImageNet-1k classes).
* :class:`Candidate`, :class:`SearchResult`, :func:`default_candidates` - the head search.
"""

from __future__ import annotations

from redditvision.backends.local._backbones import (
    LITE_NATIVE_SIZES,
    Backbone,
    FineTunedExtractor,
    backbone_from_open_clip,
    backbone_from_timm,
    default_device,
    make_backbone,
    register_backbone,
)
from redditvision.backends.local._backend import (
    LocalBackend,
    LocalPredictor,
    ProgressCallback,
    default_model_dir,
)
from redditvision.backends.local._cache import EmbeddingCache, default_cache_dir
from redditvision.backends.local._curve import plot_training_curve
from redditvision.backends.local._deps import INSTALL_HINT
from redditvision.backends.local._extractor import (
    AUGMENTATIONS,
    EfficientNetLite0Extractor,
    FeatureExtractor,
    ImageDecodeError,
    default_num_threads,
)
from redditvision.backends.local._finetune import EventCallback, TrainingEvent
from redditvision.backends.local._presets import (
    DEFAULT_QUALITY,
    PRESETS,
    QUALITIES,
    QUALITY_ENV,
    Preset,
    default_quality,
    get_preset,
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
    "DEFAULT_QUALITY",
    "INSTALL_HINT",
    "LITE_NATIVE_SIZES",
    "PRESETS",
    "QUALITIES",
    "QUALITY_ENV",
    "Backbone",
    "Candidate",
    "EfficientNetLite0Extractor",
    "EmbeddingCache",
    "EventCallback",
    "FeatureExtractor",
    "FineTunedExtractor",
    "ImageDecodeError",
    "ImageNetLabeler",
    "LocalBackend",
    "LocalPredictor",
    "Preset",
    "ProgressCallback",
    "SearchResult",
    "TrainingEvent",
    "backbone_from_open_clip",
    "backbone_from_timm",
    "default_cache_dir",
    "default_candidates",
    "default_device",
    "default_model_dir",
    "default_num_threads",
    "default_quality",
    "get_preset",
    "imagenet_class_names",
    "make_backbone",
    "plot_training_curve",
    "register_backbone",
    "search",
]
