"""Generic labelers: labels that know generic classes only ("car", "sports car", "BMW").

* :class:`GenericLabeler` - the protocol; :class:`ImageLabels` - one image's labels.
* :class:`CloudVisionLabeler` - Google Cloud Vision's label and web detection.
* :class:`ImageNetLabeler` - offline, the ImageNet-1k head of the local backend's network
  (needs the ``[local]`` extra when used; importing it loads no torch).

:class:`redditvision.compare.VisionComparator` sets one of them beside a custom model.
"""

from __future__ import annotations

from redditvision.labelers._base import GenericLabel, GenericLabeler, ImageLabels
from redditvision.labelers.cloud_vision import (
    VISION_MAX_IMAGES_PER_REQUEST,
    VISION_MAX_REQUEST_BYTES,
    CloudVisionLabeler,
)
from redditvision.labelers.imagenet import ImageNetLabeler, imagenet_class_names

__all__ = [
    "VISION_MAX_IMAGES_PER_REQUEST",
    "VISION_MAX_REQUEST_BYTES",
    "CloudVisionLabeler",
    "GenericLabel",
    "GenericLabeler",
    "ImageLabels",
    "ImageNetLabeler",
    "imagenet_class_names",
]
