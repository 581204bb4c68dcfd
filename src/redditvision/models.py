"""Frozen value types that flow between the steps of redditvision.

The flow, one direction (see :doc:`/concepts`)::

    ImagePost (with MediaItem / SkippedMedia)      collect
      -> ImageRecord                               download
      -> LabeledImage / LabeledDataset             label and split
      -> DatasetLocation                           write (Cloud Storage or local folder)
      -> TrainedModel -> Evaluation                train and evaluate
      -> Prediction                                classify
      -> GenericLabel                              generic labels for the comparison

All types are ``attrs`` frozen classes: compare by value, change with :func:`attrs.evolve`.
Sequences are tuples and mappings are plain dicts that must not be mutated.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "DatasetLocation",
    "Evaluation",
    "GenericLabel",
    "ImagePost",
    "ImageRecord",
    "LabelMetrics",
    "LabeledDataset",
    "LabeledImage",
    "MLUse",
    "MediaItem",
    "MediaKind",
    "Misclassified",
    "Prediction",
    "RecordStatus",
    "SkippedMedia",
    "ThresholdMetrics",
    "TrainedModel",
    "TrainingBudget",
]


class MediaKind(enum.StrEnum):
    """What a media item holds: a still image or an animation (GIF, imgur ``.gifv``)."""

    IMAGE = "image"
    ANIMATED = "animated"


@attrs.frozen(kw_only=True)
class MediaItem:
    """One image file a submission points at, resolved to a URL that serves the bytes.

    Attributes:
        url: Absolute http(s) URL of the file, HTML entities (``&amp;``) already decoded.
        kind: :attr:`MediaKind.IMAGE` or :attr:`MediaKind.ANIMATED`.
        width: Width in pixels when Reddit reported it (gallery ``s.x``, preview), else None.
        height: Height in pixels when known, else None.
        gallery_index: 0-based position in the gallery (``gallery_data.items`` order), or
            None when the submission is not a gallery.
        media_id: The gallery ``media_id`` (key of ``media_metadata``), or None.
        caption: The gallery item's caption, or None.
        is_preview: True when this is Reddit's preview rendition: either the post's only
            item (its link is an image-host page), or a fallback after the post's own
            image, fetched only when that image is gone (deleted, placeholder).
        from_crosspost: True when the media came from ``crosspost_parent_list``.
    """

    url: str
    kind: MediaKind = MediaKind.IMAGE
    width: int | None = None
    height: int | None = None
    gallery_index: int | None = None
    media_id: str | None = None
    caption: str | None = None
    is_preview: bool = False
    from_crosspost: bool = False


@attrs.frozen(kw_only=True)
class SkippedMedia:
    """Something a submission holds that is not used, with the reason.

    Attributes:
        url: The URL or gallery ``media_id`` concerned, or None when there is none (self
            post).
        reason: A short machine-readable reason, e.g. ``"video"``, ``"self_post"``,
            ``"gallery_item_failed"``, ``"not_an_image_link"``.
        detail: Human-readable detail, or None.
    """

    url: str | None
    reason: str
    detail: str | None = None


@attrs.frozen(kw_only=True)
class ImagePost:
    """A Reddit submission and the image files it resolves to.

    Attributes:
        id: Submission id without the ``t3_`` prefix, e.g. ``"1abcde"``.
        subreddit: Subreddit name without ``r/``.
        title: The title as posted (any Unicode, up to 300 characters on Reddit).
        permalink: Path on reddit.com, e.g. ``"/r/BMW/comments/1abcde/.../"``.
        author: Username, or None when the account is deleted.
        score: Net votes at listing time.
        created_utc: Creation time, seconds since the Unix epoch (UTC).
        over_18: Marked NSFW.
        spoiler: Marked spoiler.
        stickied: Pinned by moderators.
        flair_text: ``link_flair_text``, or None.
        url: The submission's link URL, or None.
        domain: The link's domain as Reddit reports it, or None.
        media: The resolved images, in gallery order for galleries.
        skipped: What was not used, each with a reason.
    """

    id: str
    subreddit: str
    title: str
    permalink: str
    author: str | None = None
    score: int = 0
    created_utc: float = 0.0
    over_18: bool = False
    spoiler: bool = False
    stickied: bool = False
    flair_text: str | None = None
    url: str | None = None
    domain: str | None = None
    media: tuple[MediaItem, ...] = ()
    skipped: tuple[SkippedMedia, ...] = ()


class RecordStatus(enum.StrEnum):
    """Outcome of fetching one media item."""

    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    MISSING = "missing"


@attrs.frozen(kw_only=True)
class ImageRecord:
    """One media item after the download step, with its provenance.

    Attributes:
        post_id: The submission id.
        index: Position of the media item in :attr:`ImagePost.media`.
        url: The URL fetched (after resolution, before redirects).
        status: ok, skipped, failed, duplicate or missing (deleted-image placeholder).
        reason: Why it is not ok, else None.
        path: The verified file on disk (content-addressed name), else None.
        sha256: Hex SHA-256 of the bytes, else None.
        phash: Perceptual hash as hex (``imagehash.phash``, 64 bits) of the JPEG decoded at
            1/8 scale (draft mode), else None; compare it only with other stored hashes (it
            can differ from a full-size hash by a few bits).
        width: Pixels, else None.
        height: Pixels, else None.
        format: Pillow format name sniffed from the bytes, e.g. ``"JPEG"``, else None.
        size_bytes: File size in bytes, else None.
        duplicate_of: For duplicates, the ``"{post_id}:{index}"`` key of the record it
            repeats, else None.
        near_duplicate_group: Id shared by perceptually near-identical images, else None.
        subreddit: Provenance: subreddit name.
        title: Provenance: submission title.
        author: Provenance: author, or None when deleted.
        flair_text: Provenance: link flair, or None.
        permalink: Provenance: permalink.
    """

    post_id: str
    index: int
    url: str
    status: RecordStatus
    reason: str | None = None
    path: Path | None = None
    sha256: str | None = None
    phash: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    size_bytes: int | None = None
    duplicate_of: str | None = None
    near_duplicate_group: str | None = None
    subreddit: str = ""
    title: str = ""
    author: str | None = None
    flair_text: str | None = None
    permalink: str = ""

    @property
    def key(self) -> str:
        """The record's stable key, ``"{post_id}:{index}"``."""
        return f"{self.post_id}:{self.index}"


class MLUse(enum.StrEnum):
    """The split an image belongs to, named as Vertex AI names ``ml_use``."""

    TRAINING = "training"
    VALIDATION = "validation"
    TEST = "test"


@attrs.frozen(kw_only=True)
class LabeledImage:
    """One image of a dataset with its label and split.

    Attributes:
        path: The image file on disk.
        label: The label as the services accept it (``^[A-Za-z][A-Za-z0-9_]{0,31}$``).
        original_label: The user's own name for it (folder name, CSV or rule label).
        ml_use: The split, or None before splitting.
        sha256: Hex SHA-256 of the file when known (used for object names and caching).
        group: Near-duplicate group id; images of one group share a split. None when
            unknown.
        source: Where the image came from (record key, folder path or CSV row), for reports.
    """

    path: Path
    label: str
    original_label: str
    ml_use: MLUse | None = None
    sha256: str | None = None
    group: str | None = None
    source: str | None = None


@attrs.frozen(kw_only=True)
class LabeledDataset:
    """Images with labels and splits, plus the label name mapping.

    Attributes:
        images: The labeled images.
        label_map: Service label -> the user's original label, so predictions can be shown
            in the user's names. Identity entries are included.
        name: A display name for the dataset (used for cloud resources).
    """

    images: tuple[LabeledImage, ...]
    label_map: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    name: str = "redditvision"

    @property
    def labels(self) -> tuple[str, ...]:
        """The service labels present, sorted."""
        return tuple(sorted({image.label for image in self.images}))

    def counts(self) -> dict[str, int]:
        """Return images per service label, sorted by label."""
        counts: dict[str, int] = {}
        for image in self.images:
            counts[image.label] = counts.get(image.label, 0) + 1
        return dict(sorted(counts.items()))

    def subset(self, ml_use: MLUse) -> tuple[LabeledImage, ...]:
        """Return the images of one split.

        Args:
            ml_use: The split.

        Returns:
            The images whose ``ml_use`` equals it, in dataset order.
        """
        return tuple(image for image in self.images if image.ml_use == ml_use)


@attrs.frozen(kw_only=True)
class DatasetLocation:
    """Where a written dataset lives, and its import file.

    Attributes:
        uri: The dataset root, ``gs://bucket/prefix`` or ``file:///abs/folder``.
        import_file_uri: The import file for the target backend (``gs://.../import.csv``,
            ``file:///.../import.jsonl``, ...).
        import_format: ``"vertex_csv"``, ``"vertex_jsonl"``, ``"automl_csv"`` or
            ``"local_jsonl"``.
        images: Number of images written.
        labels: The service labels, sorted.
        label_map: Service label -> the user's original label.
        extra_import_files: Other import formats written beside it, format -> URI.
    """

    uri: str
    import_file_uri: str
    import_format: str
    images: int
    labels: tuple[str, ...]
    label_map: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    extra_import_files: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    @classmethod
    def from_import_file(
        cls,
        import_file_uri: str,
        *,
        import_format: str | None = None,
        label_map: Mapping[str, str] | None = None,
    ) -> DatasetLocation:
        """Describe a dataset by its import file alone (e.g. one written by an earlier run).

        Args:
            import_file_uri: ``gs://bucket/prefix/import.csv`` or a ``file://`` URI.
            import_format: ``"vertex_csv"``, ``"vertex_jsonl"``, ``"automl_csv"`` or
                ``"local_jsonl"``; default from the suffix: ``.csv`` is ``vertex_csv`` and
                ``.jsonl`` is ``vertex_jsonl`` for ``gs://`` and ``local_jsonl`` otherwise.
            label_map: Service label -> the user's label, when known (default identity).

        Returns:
            The location; ``uri`` is the import file's folder, ``images`` is 0 and
            ``labels`` empty (unknown until the service reads the file).

        Raises:
            ValueError: The format cannot be inferred from the suffix.
        """
        if import_format is None:
            if import_file_uri.endswith(".csv"):
                import_format = "vertex_csv"
            elif import_file_uri.endswith(".jsonl"):
                is_gcs = import_file_uri.startswith("gs://")
                import_format = "vertex_jsonl" if is_gcs else "local_jsonl"
            else:
                raise ValueError(
                    f"cannot tell the import format of {import_file_uri!r}; pass import_format"
                )
        return cls(
            uri=import_file_uri.rsplit("/", 1)[0],
            import_file_uri=import_file_uri,
            import_format=import_format,
            images=0,
            labels=(),
            label_map=dict(label_map or {}),
        )


@attrs.frozen(kw_only=True)
class TrainingBudget:
    """How much training to pay for.

    Attributes:
        milli_node_hours: Cloud budget in milli node hours (1,000 = one node hour). Vertex
            AI AutoML image classification, model type CLOUD, accepts 8,000 to 800,000
            (Vertex AI docs, ``AutoMlImageClassificationInputs.budgetMilliNodeHours``).
            Ignored by the local backend.
        time_limit_s: Wall-clock limit in seconds for the local backend's model search, or
            None for no limit.
        early_stopping: Stop when the service sees no more improvement (cloud backends).
    """

    milli_node_hours: int = 8_000
    time_limit_s: float | None = None
    early_stopping: bool = True


@attrs.frozen(kw_only=True)
class TrainedModel:
    """A handle to a trained model on any backend.

    Attributes:
        backend: ``"local"``, ``"vertex"`` or ``"automl"``.
        resource: A model folder path (local) or a resource name
            (``projects/.../locations/.../models/...``).
        labels: The service labels the model predicts, sorted.
        label_map: Service label -> the user's original label.
        display_name: The name shown in consoles, or None.
        metadata: Backend details (search table, pipeline name, versions); JSON-compatible.
    """

    backend: str
    resource: str
    labels: tuple[str, ...] = ()
    label_map: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    display_name: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class Prediction:
    """One label a model gives an image, with its confidence.

    Attributes:
        label: The user's original label name (mapped back from the service label).
        score: Confidence in ``[0, 1]``.
        model_label: The label as the model/service knows it.
    """

    label: str
    score: float
    model_label: str


@attrs.frozen(kw_only=True)
class LabelMetrics:
    """Precision, recall and F1 of one label, one-vs-rest, at the default threshold.

    Attributes:
        label: The user's label name.
        precision: In ``[0, 1]``.
        recall: In ``[0, 1]``.
        f1: In ``[0, 1]``.
        support: Number of true items of this label in the evaluation set.
        au_prc: Area under the precision-recall curve (average precision), or None.
    """

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    au_prc: float | None = None


@attrs.frozen(kw_only=True)
class ThresholdMetrics:
    """Micro-averaged precision and recall when only predictions above a threshold count.

    Attributes:
        confidence_threshold: In ``[0, 1]``; the thresholds follow Vertex AI's
            ``confidenceMetrics`` (0.0, 0.05, ..., 0.95, 0.96, ..., 0.99).
        precision: In ``[0, 1]``.
        recall: In ``[0, 1]``.
        f1: In ``[0, 1]``.
        label: The label for a per-label curve, or None for all labels together.
    """

    confidence_threshold: float
    precision: float
    recall: float
    f1: float
    label: str | None = None


@attrs.frozen(kw_only=True)
class Misclassified:
    """An evaluation item the model got wrong.

    Attributes:
        item: Path or URI of the image.
        true_label: The user's label name of the truth.
        predicted_label: The user's label name of the top prediction.
        score: The top prediction's confidence.
    """

    item: str
    true_label: str
    predicted_label: str
    score: float


@attrs.frozen(kw_only=True)
class Evaluation:
    """Model evaluation, the same type from every backend.

    Attributes:
        labels: Label order of the confusion matrix (user's names).
        per_label: One :class:`LabelMetrics` per label, in ``labels`` order.
        confusion_matrix: Row = true label, column = predicted label, counts, ``labels``
            order; shape (n_labels, n_labels).
        accuracy: Top-1 accuracy, or None when the backend does not report it.
        macro_precision: Unweighted mean over labels.
        macro_recall: Unweighted mean over labels.
        macro_f1: Unweighted mean over labels.
        micro_precision: Pooled over all items.
        micro_recall: Pooled over all items.
        micro_f1: Pooled over all items.
        au_prc: Area under the micro precision-recall curve, or None.
        log_loss: Cross-entropy, or None.
        thresholds: Precision/recall over confidence thresholds (overall and per label).
        misclassified: Items whose top prediction is wrong (may be empty for cloud).
        evaluated_items: Number of items evaluated.
        source: Where the figures come from, e.g. ``"local:test split"`` or the model
            evaluation resource name.
    """

    labels: tuple[str, ...]
    per_label: tuple[LabelMetrics, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    accuracy: float | None
    macro_precision: float
    macro_recall: float
    macro_f1: float
    micro_precision: float
    micro_recall: float
    micro_f1: float
    au_prc: float | None = None
    log_loss: float | None = None
    thresholds: tuple[ThresholdMetrics, ...] = ()
    misclassified: tuple[Misclassified, ...] = ()
    evaluated_items: int = 0
    source: str = ""


@attrs.frozen(kw_only=True)
class GenericLabel:
    """A generic label for an image from a labeler that knows no custom classes.

    Attributes:
        label: The description, e.g. ``"Car"``, ``"BMW Z4"``, ``"sports car"``.
        score: Confidence in ``[0, 1]``, or None when the service gives none (best guess).
        source: ``"label_detection"``, ``"web_entity"``, ``"best_guess"`` or ``"imagenet"``.
        mid: Knowledge Graph id when the service returns one, else None.
    """

    label: str
    score: float | None
    source: str
    mid: str | None = None
