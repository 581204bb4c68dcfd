"""Features of many images through the embedding cache, tolerant of undecodable images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._cache import EmbeddingCache
from redditvision.backends.local._extractor import FeatureExtractor, ImageDecodeError
from redditvision.backends.local._images import image_sha256

__all__ = ["Embedder"]

_CHUNK = 32

ProgressCallback = Callable[[int, int], None]


class Embedder:
    """Features for many images, through the cache, tolerant of undecodable images."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        cache: EmbeddingCache | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.extractor = extractor
        self.cache = cache
        self.progress = progress
        self.namespace = f"{extractor.id}@{extractor.version}"

    def _extract_chunk(
        self, chunk: list[bytes], augmentation: str
    ) -> tuple[list[NDArray[np.float32] | None], dict[int, str]]:
        try:
            block = self.extractor.extract(chunk, augmentation=augmentation)
            return list(block), {}
        except ImageDecodeError:
            pass
        vectors: list[NDArray[np.float32] | None] = []
        errors: dict[int, str] = {}
        for index, data in enumerate(chunk):
            try:
                vectors.append(self.extractor.extract([data], augmentation=augmentation)[0])
            except ImageDecodeError as exc:
                vectors.append(None)
                errors[index] = exc.message.split(": ", 1)[-1]
        return vectors, errors

    def embed(
        self, images: Sequence[bytes], augmentations: Sequence[str]
    ) -> tuple[dict[str, NDArray[np.float32]], dict[int, str]]:
        """Return features per augmentation for the decodable images, and the failures.

        Returns:
            (augmentation -> array of shape (n_ok, dim) in input order of the decodable
            images, index -> reason for each undecodable image).
        """
        shas = [image_sha256(data) for data in images]
        dim = self.extractor.dim
        found: dict[str, list[NDArray[np.float32] | None]] = {}
        bad: dict[int, str] = {}
        todo = 0
        for augmentation in augmentations:
            row: list[NDArray[np.float32] | None] = []
            for sha in shas:
                cached = (
                    self.cache.get(self.namespace, augmentation, sha, dim=dim)
                    if self.cache
                    else None
                )
                row.append(cached)
                todo += cached is None
            found[augmentation] = row
        done = 0
        total = len(images) * len(augmentations)
        done_cached = total - todo
        if self.progress is not None:
            self.progress(done_cached, total)
        for augmentation in augmentations:
            row = found[augmentation]
            missing = [i for i, vector in enumerate(row) if vector is None and i not in bad]
            for start in range(0, len(missing), _CHUNK):
                indices = missing[start : start + _CHUNK]
                vectors, errors = self._extract_chunk([images[i] for i in indices], augmentation)
                for position, index in enumerate(indices):
                    vector = vectors[position]
                    if vector is None:
                        bad[index] = errors[position]
                        continue
                    row[index] = vector
                    if self.cache is not None:
                        self.cache.put(self.namespace, augmentation, shas[index], vector)
                done += len(indices)
                if self.progress is not None:
                    self.progress(done_cached + done, total)
        keep = [i for i in range(len(images)) if i not in bad]
        out = {}
        for augmentation in augmentations:
            row = found[augmentation]
            vectors = [row[i] for i in keep]
            out[augmentation] = (
                np.stack([v for v in vectors if v is not None]).astype(np.float32)
                if keep
                else np.zeros((0, dim), dtype=np.float32)
            )
        return out, bad
