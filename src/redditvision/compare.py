"""The comparison of a generic labeler with a custom model, image by image.

:class:`VisionComparator` runs a :class:`~redditvision.labelers.GenericLabeler` and a custom
model (any :class:`BatchPredictor`, such as :class:`~redditvision.classify.Classifier`) over
the same images and measures the difference in a :class:`ComparisonReport`: per image the
generic labels, the custom prediction and the truth; per class and overall the custom
model's accuracy and F1, and how often the generic labels name the true class, another
class, or only generic words (the make, "car").

Which words are "generic" is data (:class:`Vocabulary`): the packaged default
:data:`CAR_TERMS` suits cars; a label map's ``[vocabulary]`` table supplies others.

:mod:`redditvision.report` renders a report as Markdown, HTML, CSV/JSON Lines and plots;
:func:`redditvision.metrics.evaluate_comparison` turns it into an
:class:`~redditvision.models.Evaluation`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
from PIL import Image

from redditvision._closing import Closeable
from redditvision._vocabulary import (
    CAR_TERMS,
    DEFAULT_GENERIC_TERMS,
    DEFAULT_VOCABULARY,
    Vocabulary,
    _Matcher,
    class_phrases,
)
from redditvision.classify import ImageInput, read_image_bytes
from redditvision.errors import ComparisonError, ConfigError, PredictionError
from redditvision.labelers._base import GenericLabeler, ImageLabels
from redditvision.models import Prediction, TrainedModel

__all__ = [
    "CAR_TERMS",
    "DEFAULT_GENERIC_TERMS",
    "DEFAULT_VOCABULARY",
    "BatchPredictor",
    "ClassComparison",
    "ComparisonReport",
    "ComparisonSummary",
    "GenericMatch",
    "ImageComparison",
    "VisionComparator",
    "Vocabulary",
    "class_phrases",
]

logger = logging.getLogger(__name__)


class GenericMatch:
    """What an image's generic labels name, relative to its true class (string constants).

    Attributes:
        CLASS: A generic label names the true class ("BMW Z4" for a Z4).
        OTHER_CLASS: They name another class but not the true one.
        GENERIC: They name only the make or a kind of vehicle ("BMW", "Car").
        NONE: They name nothing relevant ("Tire", "Asphalt").
    """

    CLASS = "class"
    OTHER_CLASS = "other_class"
    GENERIC = "generic"
    NONE = "none"


# -- the comparison ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ImageComparison:
    """One image: the generic labels beside the custom prediction and the truth.

    Attributes:
        name: The image's path, or ``"image N"`` (1-based) for bytes and Pillow images.
        truth: The true class (user's name), or None when unknown.
        generic: The generic labeler's labels (or its error for this image).
        custom: The custom model's predictions, best first (user's label names); empty
            when the model failed on this image.
        custom_error: Why the custom model gave no prediction, or None.
        generic_classes: The classes the generic labels name by token match (sorted).
        generic_match: A :class:`GenericMatch` value, or None when the truth is unknown or
            the generic labeler failed on this image.
        thumbnail: A JPEG thumbnail (longest side 160 px) for reports, or None.
    """

    name: str
    truth: str | None
    generic: ImageLabels
    custom: tuple[Prediction, ...]
    custom_error: str | None = None
    generic_classes: tuple[str, ...] = ()
    generic_match: str | None = None
    thumbnail: bytes | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def custom_label(self) -> str | None:
        """The custom model's top label, or None."""
        return self.custom[0].label if self.custom else None

    @property
    def custom_score(self) -> float | None:
        """The custom model's top score in ``[0, 1]``, or None."""
        return self.custom[0].score if self.custom else None

    @property
    def custom_correct(self) -> bool | None:
        """Whether the top custom label is the truth; None without truth or prediction."""
        if self.truth is None or not self.custom:
            return None
        return self.custom[0].label == self.truth

    @property
    def agreement(self) -> bool | None:
        """Whether the generic labels name the custom model's top class.

        None when either side failed on this image.
        """
        if not self.custom or self.generic.error is not None:
            return None
        return self.custom[0].label in self.generic_classes


@attrs.frozen(kw_only=True)
class ClassComparison:
    """Figures for one class (images whose truth is this class, and predictions of it).

    Attributes:
        label: The class (user's name).
        support: Images whose truth is this class.
        predicted: Images the custom model predicted as this class (top 1).
        known_to_model: False when the custom model cannot predict this class (a truth
            label the model was not trained on).
        precision: Custom model's precision for this class, ``[0, 1]`` (0 when never
            predicted).
        recall: Custom model's recall for this class, ``[0, 1]`` (0 without support).
        f1: Harmonic mean of the two, ``[0, 1]``.
        generic_names_class: Fraction of this class's images whose generic labels name it,
            or None when none of them has generic labels.
        generic_only_generic: Fraction of them whose generic labels name only the make or a
            kind of vehicle, or None.
        agreement: Fraction of them where the generic labels name the custom model's top
            class, or None.
    """

    label: str
    support: int
    predicted: int
    known_to_model: bool
    precision: float
    recall: float
    f1: float
    generic_names_class: float | None
    generic_only_generic: float | None
    agreement: float | None


@attrs.frozen(kw_only=True)
class ComparisonSummary:
    """The overall figures of a comparison.

    Fractions are in ``[0, 1]`` and None when there is nothing to count. Custom figures
    count images with a truth and a custom prediction; generic figures count images with a
    truth and generic labels; agreement counts images with both sides' answers.

    Attributes:
        images: Images compared.
        with_truth: Images with a known true class.
        generic_errors: Images the generic labeler failed on.
        custom_errors: Images the custom model failed on.
        custom_accuracy: Top-1 accuracy of the custom model.
        custom_macro_f1: Unweighted mean F1 over the classes seen in truth or predictions.
        generic_names_truth: How often the generic labels name the true class.
        generic_names_other_class: How often they name another class but not the true one.
        generic_only_generic: How often they name only the make or a kind of vehicle.
        generic_none: How often they name nothing relevant.
        agreement: How often the generic labels name the custom model's top class.
        unknown_truth_labels: True classes the custom model does not know (sorted).
    """

    images: int
    with_truth: int
    generic_errors: int
    custom_errors: int
    custom_accuracy: float | None
    custom_macro_f1: float | None
    generic_names_truth: float | None
    generic_names_other_class: float | None
    generic_only_generic: float | None
    generic_none: float | None
    agreement: float | None
    unknown_truth_labels: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ComparisonReport:
    """A generic labeler beside a custom model over the same images.

    Attributes:
        generic_name: The generic labeler's ``name`` (``"imagenet"``, ``"cloud_vision"``).
        custom_name: The custom model (display name or resource).
        labels: All classes (truth and model), sorted: the confusion matrix order.
        confusion_matrix: Row = true class, column = custom top-1 class, counts over images
            with truth and prediction; shape (len(labels), len(labels)).
        images: One :class:`ImageComparison` per input image, in input order.
        classes: One :class:`ClassComparison` per class, in ``labels`` order.
        summary: The overall figures.
        make_terms: The words found to name the make (shared by every class name).
    """

    generic_name: str
    custom_name: str
    labels: tuple[str, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    images: tuple[ImageComparison, ...]
    classes: tuple[ClassComparison, ...]
    summary: ComparisonSummary
    make_terms: tuple[str, ...] = ()

    def summary_dict(self) -> dict[str, Any]:
        """Return the aggregates as a JSON-compatible dict (``--json-summary``).

        Returns:
            ``{"generic": ..., "custom": ..., "overall": {...}, "classes": [{...}, ...]}``
            with the fields of :class:`ComparisonSummary` and :class:`ClassComparison`.
        """
        overall = attrs.asdict(self.summary)
        overall["unknown_truth_labels"] = list(self.summary.unknown_truth_labels)
        return {
            "generic": self.generic_name,
            "custom": self.custom_name,
            "overall": overall,
            "classes": [attrs.asdict(row) for row in self.classes],
        }


def _fraction(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _thumbnail(data: bytes, side: int = 160) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
            return buffer.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _image_name(image: ImageInput, index: int) -> str:
    if isinstance(image, str | os.PathLike):
        return str(Path(image))
    return f"image {index + 1}"


@runtime_checkable
class BatchPredictor(Protocol):
    """What the comparison needs of a custom model: predictions for many images.

    :class:`~redditvision.classify.Classifier` is one; so is any object with these two
    methods (a served endpoint's client, a test's fixed answers).
    """

    def predict_many(self, images: Iterable[ImageInput]) -> list[list[Prediction]]:
        """Predict every image, in input order.

        Args:
            images: Encoded image bytes (the comparator passes bytes).

        Returns:
            One list per image, best first, in the user's label names; for
            :func:`~redditvision.metrics.evaluate_comparison` every label scored.

        Raises:
            PredictionError: An image or the model failed (the comparator then retries the
                batch image by image).
        """
        ...

    def close(self) -> None:
        """Release the model; safe to call twice."""
        ...


def _model_of(custom: BatchPredictor) -> TrainedModel | None:
    model = getattr(custom, "model", None)
    return model if isinstance(model, TrainedModel) else None


class VisionComparator(Closeable):
    """Compare a generic labeler with a custom model, image by image.

    Args:
        generic: Keyword-only. A :class:`~redditvision.labelers.GenericLabeler` (Cloud
            Vision or the offline ImageNet labeler).
        custom: Keyword-only. The custom model: any :class:`BatchPredictor`, e.g. a
            :class:`~redditvision.classify.Classifier`.
        top_k: Generic labels kept per image (default 5).
        aliases: More names per class, matched like the class name: e.g. for a class
            ``"z3-4-8"`` the folder names ``["BMW Z4 Convertible 2012"]`` it was built from
            (a label map gives them). Default none.
        vocabulary: The generic and make words (default :data:`DEFAULT_VOCABULARY`: cars);
            :meth:`Vocabulary.from_toml` reads one from a label map's ``[vocabulary]``.
        batch_size: Images read and sent to both sides at a time (default 16, one Cloud
            Vision request).
        custom_name: The custom model's name in reports; default the
            :class:`~redditvision.classify.Classifier`'s model display name or resource.
        known_labels: The classes the custom model can predict (user's names); default a
            Classifier's model labels, else the labels it predicted. A true class outside
            them is reported as unknown to the model.

    Raises:
        ConfigError: ``top_k`` or ``batch_size`` below 1.

    Example:
        >>> comparator = VisionComparator(generic=labeler, custom=classifier)  # doctest: +SKIP
        >>> report = comparator.compare(["z4.jpg"], truth=["z3-4-8"])  # doctest: +SKIP
        >>> report.summary.custom_accuracy  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        generic: GenericLabeler,
        custom: BatchPredictor,
        top_k: int = 5,
        aliases: Mapping[str, Iterable[str]] | None = None,
        vocabulary: Vocabulary = DEFAULT_VOCABULARY,
        batch_size: int = 16,
        custom_name: str | None = None,
        known_labels: Iterable[str] | None = None,
    ) -> None:
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.generic = generic
        self.custom = custom
        self.top_k = top_k
        self.aliases = {label: tuple(names) for label, names in (aliases or {}).items()}
        self.vocabulary = vocabulary
        self.batch_size = batch_size
        model = _model_of(custom)
        if custom_name is None:
            custom_name = (model.display_name or model.resource) if model else type(custom).__name__
        self.custom_name = custom_name
        if known_labels is None and model is not None:
            known_labels = [model.label_map.get(label, label) for label in model.labels]
            known_labels += list(model.label_map.values())
        self.known_labels = frozenset(known_labels or ())

    def __repr__(self) -> str:
        return f"VisionComparator(generic={self.generic.name!r}, custom={self.custom_name!r})"

    def compare(
        self,
        images: Iterable[ImageInput],
        truth: Sequence[str | None] | Mapping[str, str] | None = None,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> ComparisonReport:
        """Label every image with both sides and measure the difference.

        One image that cannot be read or labeled is recorded (``generic.error``,
        ``custom_error``) and the rest go on.

        Args:
            images: Paths, encoded bytes or Pillow images. An empty input gives a report
                with no images and None fractions.
            truth: The true class of each image (user's label names): a sequence in image
                order (None for unknown), or a mapping from the image's path (as given, or
                as :attr:`ImageComparison.name` shows it) to its class; None when unknown.
            on_progress: Called with the number of images just finished, after each batch.

        Returns:
            The report.

        Raises:
            ConfigError: ``truth`` is a sequence whose length differs from the images'.
            ComparisonError: The generic labeler failed for a whole batch (e.g. Cloud
                Vision credentials or quota).
        """
        inputs = list(images)
        names = [_image_name(image, i) for i, image in enumerate(inputs)]
        raw = [
            str(image) if isinstance(image, str | os.PathLike) else name
            for image, name in zip(inputs, names, strict=True)
        ]
        truths = self._truths(names, raw, truth)
        rows: list[tuple[str, str | None, ImageLabels, tuple[Prediction, ...], str | None]] = []
        thumbnails: list[bytes | None] = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            data: list[bytes | None] = []
            read_errors: list[str | None] = []
            for image, name in zip(chunk, names[start:], strict=False):
                try:
                    data.append(read_image_bytes(image))
                    read_errors.append(None)
                except PredictionError as exc:
                    data.append(None)
                    read_errors.append(f"cannot read {name}: {exc.message}")
            readable = [d for d in data if d is not None]
            generic_labels = iter(self._label(readable))
            custom_preds = iter(self._predict(readable))
            for offset, (blob, read_error) in enumerate(zip(data, read_errors, strict=True)):
                index = start + offset
                if blob is None:
                    assert read_error is not None
                    rows.append(
                        (names[index], truths[index], ImageLabels(error=read_error), (), read_error)
                    )
                    thumbnails.append(None)
                    continue
                generic = next(generic_labels)
                predictions, custom_error = next(custom_preds)
                rows.append((names[index], truths[index], generic, predictions, custom_error))
                thumbnails.append(_thumbnail(blob))
            if on_progress is not None:
                on_progress(len(chunk))
        return self._build(rows, thumbnails)

    def _truths(
        self,
        names: list[str],
        raw: list[str],
        truth: Sequence[str | None] | Mapping[str, str] | None,
    ) -> list[str | None]:
        if truth is None:
            return [None] * len(names)
        if isinstance(truth, Mapping):
            return [
                truth.get(name, truth.get(given)) for name, given in zip(names, raw, strict=True)
            ]
        if isinstance(truth, str):
            raise ConfigError("truth must be a sequence of labels or a mapping, not one string")
        if len(truth) != len(names):
            raise ConfigError(
                f"truth has {len(truth)} labels for {len(names)} images; give one per image "
                "(None where unknown) or a mapping from image path to label"
            )
        return list(truth)

    def _label(self, data: list[bytes]) -> list[ImageLabels]:
        if not data:
            return []
        labels = self.generic.label(data, max_results=self.top_k)
        if len(labels) != len(data):
            raise ComparisonError(
                f"generic labeler {self.generic.name!r} answered {len(labels)} results for "
                f"{len(data)} images"
            )
        return labels

    def _predict(self, data: list[bytes]) -> list[tuple[tuple[Prediction, ...], str | None]]:
        if not data:
            return []
        try:
            return [(tuple(p), None) for p in self.custom.predict_many(data)]
        except PredictionError:
            # One bad image fails the model's batch: isolate it, image by image.
            results: list[tuple[tuple[Prediction, ...], str | None]] = []
            for blob in data:
                try:
                    results.append((tuple(self.custom.predict_many([blob])[0]), None))
                except PredictionError as exc:
                    results.append(((), exc.message))
            return results

    def _known_labels(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        known = set(self.known_labels)
        for _, _, _, predictions, _ in rows:
            known |= {p.label for p in predictions}
        return known

    def _build(
        self,
        rows: list[tuple[str, str | None, ImageLabels, tuple[Prediction, ...], str | None]],
        thumbnails: list[bytes | None],
    ) -> ComparisonReport:
        known = self._known_labels(rows)
        truth_labels = {row[1] for row in rows if row[1] is not None}
        labels = tuple(sorted(known | truth_labels))
        vocabulary = _Matcher(labels, self.aliases, self.vocabulary)
        images: list[ImageComparison] = []
        for (name, truth, generic, predictions, custom_error), thumb in zip(
            rows, thumbnails, strict=True
        ):
            texts = [label.label for label in generic.labels]
            if generic.best_guess:
                texts.append(generic.best_guess)
            named = vocabulary.named_classes(texts) if generic.error is None else ()
            match: str | None = None
            if truth is not None and generic.error is None:
                if truth in named:
                    match = GenericMatch.CLASS
                elif named:
                    match = GenericMatch.OTHER_CLASS
                elif vocabulary.is_generic(texts):
                    match = GenericMatch.GENERIC
                else:
                    match = GenericMatch.NONE
            images.append(
                ImageComparison(
                    name=name,
                    truth=truth,
                    generic=generic,
                    custom=predictions,
                    custom_error=custom_error,
                    generic_classes=named,
                    generic_match=match,
                    thumbnail=thumb,
                )
            )
        return self._aggregate(labels, known, tuple(images), vocabulary.make_terms)

    def _aggregate(
        self,
        labels: tuple[str, ...],
        known: set[str],
        images: tuple[ImageComparison, ...],
        make_terms: tuple[str, ...],
    ) -> ComparisonReport:
        position = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        scored = [image for image in images if image.truth is not None and image.custom]
        for image in scored:
            assert image.truth is not None
            assert image.custom_label is not None
            matrix[position[image.truth]][position[image.custom_label]] += 1
        classes: list[ClassComparison] = []
        f1_labels = {image.truth for image in scored} | {image.custom_label for image in scored}
        f1_values: list[float] = []
        for label in labels:
            i = position[label]
            true_positive = matrix[i][i]
            support = sum(matrix[i])
            predicted = sum(row[i] for row in matrix)
            precision = true_positive / predicted if predicted else 0.0
            recall = true_positive / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            if label in f1_labels:
                f1_values.append(f1)
            mine = [image for image in images if image.truth == label]
            judged = [image for image in mine if image.generic_match is not None]
            agreed = [image.agreement for image in mine if image.agreement is not None]
            classes.append(
                ClassComparison(
                    label=label,
                    support=sum(1 for image in mine),
                    predicted=predicted,
                    known_to_model=label in known,
                    precision=precision,
                    recall=recall,
                    f1=f1,
                    generic_names_class=_fraction(
                        sum(image.generic_match == GenericMatch.CLASS for image in judged),
                        len(judged),
                    ),
                    generic_only_generic=_fraction(
                        sum(image.generic_match == GenericMatch.GENERIC for image in judged),
                        len(judged),
                    ),
                    agreement=_fraction(sum(agreed), len(agreed)),
                )
            )
        judged = [image for image in images if image.generic_match is not None]
        agreed = [image.agreement for image in images if image.agreement is not None]
        unknown = tuple(
            sorted({image.truth for image in images if image.truth is not None} - known)
        )
        if unknown:
            logger.warning("true classes the custom model does not know: %s", ", ".join(unknown))

        def share(kind: str) -> float | None:
            return _fraction(sum(image.generic_match == kind for image in judged), len(judged))

        summary = ComparisonSummary(
            images=len(images),
            with_truth=sum(image.truth is not None for image in images),
            generic_errors=sum(image.generic.error is not None for image in images),
            custom_errors=sum(image.custom_error is not None for image in images),
            custom_accuracy=_fraction(
                sum(bool(image.custom_correct) for image in scored), len(scored)
            ),
            custom_macro_f1=sum(f1_values) / len(f1_values) if f1_values else None,
            generic_names_truth=share(GenericMatch.CLASS),
            generic_names_other_class=share(GenericMatch.OTHER_CLASS),
            generic_only_generic=share(GenericMatch.GENERIC),
            generic_none=share(GenericMatch.NONE),
            agreement=_fraction(sum(agreed), len(agreed)),
            unknown_truth_labels=unknown,
        )
        return ComparisonReport(
            generic_name=self.generic.name,
            custom_name=self.custom_name,
            labels=labels,
            confusion_matrix=tuple(tuple(row) for row in matrix),
            images=images,
            classes=tuple(classes),
            summary=summary,
            make_terms=make_terms,
        )

    def close(self) -> None:
        """Close both sides (generic labeler and classifier); safe to call twice."""
        self.generic.close()
        self.custom.close()
