"""Generic labelers and the comparison of their labels with a custom model.

:class:`GenericLabeler` is what both the offline ImageNet labeler (local backend) and
:class:`CloudVisionLabeler` implement. :class:`VisionComparator` runs a generic labeler and a
custom :class:`~redditvision.classify.Classifier` over the same images and measures the
difference in a :class:`ComparisonReport`: per image the generic labels, the custom
prediction and the truth; per class and overall the custom model's accuracy and F1, and how
often the generic labels name the true class, another class, or only the make or "car".

:mod:`redditvision.report` renders a report as Markdown, HTML, CSV/JSON Lines and plots.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
from PIL import Image

from redditvision._closing import Closeable
from redditvision._google import translate_google
from redditvision.classify import Classifier, ImageInput, read_image_bytes
from redditvision.errors import ComparisonError, ConfigError, PredictionError
from redditvision.models import GenericLabel, Prediction
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    resolve_retry,
)

if TYPE_CHECKING:
    from google.cloud import vision_v1

__all__ = [
    "DEFAULT_GENERIC_TERMS",
    "VISION_MAX_IMAGES_PER_REQUEST",
    "VISION_MAX_REQUEST_BYTES",
    "ClassComparison",
    "CloudVisionLabeler",
    "ComparisonReport",
    "ComparisonSummary",
    "GenericLabeler",
    "GenericMatch",
    "ImageComparison",
    "ImageLabels",
    "VisionComparator",
    "class_phrases",
]

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ImageLabels:
    """The generic labels of one image, or the error that prevented them.

    Attributes:
        labels: Labels sorted by score, best first (unscored ones last).
        best_guess: The labeler's single best guess (Cloud Vision web detection's
            ``best_guess_labels``), or None.
        error: Why this image has no labels (e.g. the service's per-image
            ``response.error.message``), or None.
    """

    labels: tuple[GenericLabel, ...] = ()
    best_guess: str | None = None
    error: str | None = None


@runtime_checkable
class GenericLabeler(Protocol):
    """A labeler that knows generic classes only ("car", "sports car", "BMW").

    Implementations: :class:`CloudVisionLabeler` and the local backend's
    ``ImageNetLabeler``.

    Attributes:
        name: ``"imagenet"``, ``"cloud_vision"``, ...
    """

    name: str

    def label(self, images: Sequence[bytes], *, max_results: int = 10) -> list[ImageLabels]:
        """Label encoded images.

        Args:
            images: Encoded image bytes.
            max_results: Labels to keep per image (default 10).

        Returns:
            One :class:`ImageLabels` per image, in input order; a failure for one image is
            recorded in its ``error`` and never raised for the whole batch.
        """
        ...

    def close(self) -> None:
        """Release clients; safe to call twice."""
        ...


# -- Cloud Vision ------------------------------------------------------------------------

VISION_MAX_IMAGES_PER_REQUEST = 16
"""Images per ``batch_annotate_images`` request (Cloud Vision content limits: 16)."""

VISION_MAX_REQUEST_BYTES = 7_500_000
"""Encoded image bytes sent in one request by default.

Cloud Vision limits the request object to 10 MB and base64 makes the bytes about 4/3 as
large (Cloud Vision content limits: "JSON request object size 10 MB"; "Image file size
20 MB"), so 7.5 MB of image bytes per request stays under both. Larger images are shrunk.
"""

_GS_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}/.+", re.IGNORECASE)


def _shrink(data: bytes, limit: int) -> bytes:
    """Re-encode ``data`` as a JPEG small enough for ``limit`` bytes.

    The longest side starts at 2048 pixels (Cloud Vision recommends 640x480 for labels, so
    this loses nothing it uses) and shrinks by a quarter until the JPEG fits.

    Raises:
        ComparisonError: Pillow cannot read the image.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ComparisonError(
            f"image of {len(data)} bytes is over the request limit of {limit} bytes and "
            f"cannot be read to shrink it: {exc}"
        ) from exc
    side = min(2048, max(image.size))
    while True:
        copy = image.copy()
        copy.thumbnail((side, side))
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG", quality=85)
        encoded = buffer.getvalue()
        if len(encoded) <= limit or side <= 64:
            return encoded
        side = int(side * 0.75)


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


class CloudVisionLabeler(Closeable):
    """Generic labels from Google Cloud Vision (label detection and web detection).

    Images go to ``ImageAnnotator.BatchAnnotateImages`` in requests of at most
    :data:`VISION_MAX_IMAGES_PER_REQUEST` images and :data:`VISION_MAX_REQUEST_BYTES` bytes.
    Encoded bytes are sent as ``image.content``, shrunk (JPEG, longest side from 2048 px
    down) when one image alone is over the byte budget; ``gs://`` URIs are sent as
    ``image.source.image_uri`` so the service reads them from Cloud Storage itself.

    Label detection gives scored labels ("Car", "Vehicle", "Bmw"); web detection gives web
    entities, which often name the exact model ("BMW Z4"), and a best-guess label. Web
    entity scores are relevance scores that may exceed 1; they are clamped to ``[0, 1]``.

    A per-image failure comes back in ``response.error`` and is recorded in that image's
    :attr:`ImageLabels.error`; it never fails the batch. The batch call is retried with
    :class:`~redditvision.retry.RetryPolicy` (UNAVAILABLE, DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED, ...); the GAPIC call itself gets ``retry=None`` so there is one
    retry layer (the ``label_detection`` helper would not retry at all).

    Args:
        client: Keyword-only. A ``google.cloud.vision_v1.ImageAnnotatorClient``.
        features: Feature type names (``Feature.Type``) to request, default
            ``("LABEL_DETECTION", "WEB_DETECTION")``.
        retry: The policy for the batch call; :data:`~redditvision.retry.DEFAULT` is 5
            attempts within 120 s on transient errors; None for one attempt.
        timeout: Seconds per ``batch_annotate_images`` call (default 60.0).
        max_request_bytes: Encoded image bytes per request (default
            :data:`VISION_MAX_REQUEST_BYTES`).
        owns_client: Close the client's transport in :meth:`close` (default False for an
            injected client; :meth:`from_env` sets True).

    Raises:
        ConfigError: An unknown feature name, or a byte budget below 1 KiB.

    Example:
        >>> with CloudVisionLabeler.from_env() as labeler:  # doctest: +SKIP
        ...     labels = labeler.label([open("z4.jpg", "rb").read()])
    """

    name = "cloud_vision"

    def __init__(
        self,
        *,
        client: vision_v1.ImageAnnotatorClient,
        features: Sequence[str] = ("LABEL_DETECTION", "WEB_DETECTION"),
        retry: RetryArg = DEFAULT,
        timeout: float | None = 60.0,
        max_request_bytes: int = VISION_MAX_REQUEST_BYTES,
        owns_client: bool = False,
    ) -> None:
        from google.cloud import vision_v1

        feature_type: Any = vision_v1.Feature.Type
        types: list[Any] = []
        for feature in features:
            try:
                types.append(feature_type[feature])
            except KeyError as exc:
                known = ", ".join(t.name for t in feature_type if t.value)
                raise ConfigError(
                    f"unknown Cloud Vision feature {feature!r}; use one of: {known}"
                ) from exc
        if max_request_bytes < 1024:
            raise ConfigError(f"max_request_bytes must be at least 1024, got {max_request_bytes}")
        self._client = client
        self._features = tuple(types)
        self._default_retry = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
        self._retry = resolve_retry(retry, self._default_retry)
        self._timeout = timeout
        self._max_request_bytes = max_request_bytes
        self._owns_client = owns_client
        self._closed = False

    @classmethod
    def from_env(cls, *, api_endpoint: str | None = None, **kwargs: Any) -> CloudVisionLabeler:
        """Build a labeler with an ``ImageAnnotatorClient`` from Application Default Credentials.

        Args:
            api_endpoint: Another service endpoint, e.g. ``"eu-vision.googleapis.com"`` to
                keep images in the EU (Cloud Vision's regional endpoints); default the
                global ``vision.googleapis.com``.
            **kwargs: Passed to the constructor (``features``, ``retry``, ``timeout``, ...).

        Returns:
            A labeler that owns (and closes) its client.

        Raises:
            ConfigError: No credentials were found (run ``gcloud auth application-default
                login`` or set ``GOOGLE_APPLICATION_CREDENTIALS``).
        """
        import google.auth.exceptions
        from google.cloud import vision_v1

        try:
            client = vision_v1.ImageAnnotatorClient(
                client_options={"api_endpoint": api_endpoint} if api_endpoint else None
            )
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ConfigError(
                "no Google Cloud credentials for Cloud Vision: run `gcloud auth "
                "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from exc
        return cls(client=client, owns_client=True, **kwargs)

    def __repr__(self) -> str:
        names = ",".join(feature.name for feature in self._features)
        return f"CloudVisionLabeler(features={names})"

    def label(self, images: Sequence[bytes | str], *, max_results: int = 10) -> list[ImageLabels]:
        """Label images with Cloud Vision.

        Args:
            images: Encoded image bytes, or ``gs://bucket/object`` URIs of images already
                in Cloud Storage.
            max_results: Labels kept per image after merging label detection and web
                entities, best first (default 10); also sent as each feature's
                ``max_results``.

        Returns:
            One :class:`ImageLabels` per image, in input order. A per-image error from the
            service, a string that is not a ``gs://`` URI, or an oversized image that
            cannot be shrunk is recorded in that image's ``error``.

        Raises:
            ConfigError: ``max_results`` is below 1.
            ComparisonError: The batch call itself failed after retries (credentials,
                permission, quota), with the gRPC status in ``status``.
        """
        if max_results < 1:
            raise ConfigError(f"max_results must be at least 1, got {max_results}")
        if self._closed:
            raise ComparisonError("this CloudVisionLabeler is closed")
        from google.cloud import vision_v1

        results: list[ImageLabels | None] = [None] * len(images)
        features = [vision_v1.Feature(type_=t, max_results=max_results) for t in self._features]
        batch: list[tuple[int, Any]] = []
        batch_bytes = 0
        for index, item in enumerate(images):
            request_image, size, error = self._request_image(item)
            if error is not None:
                results[index] = ImageLabels(error=error)
                continue
            if batch and (
                len(batch) >= VISION_MAX_IMAGES_PER_REQUEST
                or batch_bytes + size > self._max_request_bytes
            ):
                self._annotate(batch, features, results, max_results)
                batch, batch_bytes = [], 0
            batch.append(
                (index, vision_v1.AnnotateImageRequest(image=request_image, features=features))
            )
            batch_bytes += size
        if batch:
            self._annotate(batch, features, results, max_results)
        return [
            result if result is not None else ImageLabels(error="no answer") for result in results
        ]

    def _request_image(self, item: bytes | str) -> tuple[Any, int, str | None]:
        from google.cloud import vision_v1

        if isinstance(item, str):
            if not _GS_URI.match(item):
                return None, 0, f"{item!r} is not a gs://bucket/object URI; pass the image bytes"
            return vision_v1.Image(source=vision_v1.ImageSource(image_uri=item)), 0, None
        data = item
        if len(data) > self._max_request_bytes:
            try:
                data = _shrink(data, self._max_request_bytes)
            except ComparisonError as exc:
                return None, 0, exc.message
            logger.debug("shrunk an image from %d to %d bytes", len(item), len(data))
        return vision_v1.Image(content=data), len(data), None

    def _annotate(
        self,
        batch: list[tuple[int, Any]],
        features: list[Any],
        results: list[ImageLabels | None],
        max_results: int,
    ) -> None:
        requests = [request for _, request in batch]

        def call() -> Any:
            from google.api_core import exceptions as core_exceptions

            try:
                return self._client.batch_annotate_images(
                    requests=requests, retry=None, timeout=self._timeout
                )
            except (core_exceptions.GoogleAPICallError, core_exceptions.RetryError) as exc:
                raise translate_google(
                    exc,
                    ComparisonError,
                    service="vision",
                    action=f"Cloud Vision batch_annotate_images of {len(requests)} images",
                ) from exc

        response = call_with_retry(self._retry, call)
        if len(response.responses) != len(batch):
            raise ComparisonError(
                f"Cloud Vision answered {len(response.responses)} responses for "
                f"{len(batch)} images",
                service="vision",
            )
        for (index, _), answer in zip(batch, response.responses, strict=True):
            results[index] = self._parse(answer, max_results)

    @staticmethod
    def _parse(answer: Any, max_results: int) -> ImageLabels:
        if answer.error.code:
            from google.rpc import code_pb2

            try:
                code = code_pb2.Code.Name(answer.error.code)
            except ValueError:
                code = str(answer.error.code)
            return ImageLabels(error=f"{code}: {answer.error.message or 'no message'}")
        best: dict[str, GenericLabel] = {}

        def keep(label: GenericLabel) -> None:
            key = label.label.casefold()
            old = best.get(key)
            if old is None or (label.score or 0.0) > (old.score or 0.0):
                best[key] = label

        for annotation in answer.label_annotations:
            if annotation.description:
                keep(
                    GenericLabel(
                        label=annotation.description,
                        score=_clamp01(annotation.score),
                        source="label_detection",
                        mid=annotation.mid or None,
                    )
                )
        web = answer.web_detection
        for entity in web.web_entities:
            if entity.description:
                keep(
                    GenericLabel(
                        label=entity.description,
                        score=_clamp01(entity.score),
                        source="web_entity",
                        mid=entity.entity_id or None,
                    )
                )
        best_guess = next((g.label for g in web.best_guess_labels if g.label), None)
        ordered = sorted(best.values(), key=lambda g: -(g.score or 0.0))[:max_results]
        if best_guess is not None and best_guess.casefold() not in best:
            ordered.append(GenericLabel(label=best_guess, score=None, source="best_guess"))
        return ImageLabels(labels=tuple(ordered), best_guess=best_guess)

    def close(self) -> None:
        """Close the client's transport when this labeler built it; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            transport: Any = self._client.transport
            transport.close()


# -- matching generic labels against classes ---------------------------------------------

DEFAULT_GENERIC_TERMS: tuple[str, ...] = (
    "car",
    "cars",
    "vehicle",
    "automobile",
    "auto",
    "automotive",
    "motor",
    "sedan",
    "saloon",
    "coupe",
    "convertible",
    "cabriolet",
    "roadster",
    "wagon",
    "estate",
    "hatchback",
    "suv",
    "crossover",
    "jeep",
    "minivan",
    "limousine",
    "cab",
    "racer",
    "race",
    "taxicab",
    "taxi",
    "pickup",
    "truck",
    "van",
    "minibus",
    "grille",
    "wheel",
    "rim",
    "tire",
    "tyre",
    "bumper",
    "hood",
    "headlamp",
    "headlight",
)
"""Words that name only a kind of vehicle or a car part, not a model (case-insensitive).

A generic label holding one of these words counts as "only generic" in a comparison when no
label names a class: Cloud Vision's "Car", "Vehicle", "Luxury vehicle", "Tire", ImageNet's
"sports car", "convertible", "station wagon", "radiator grille". The make ("BMW") is found
by itself: the words every class name shares.
"""

_TOKEN = re.compile(r"[0-9a-z]+")
_YEAR = re.compile(r"^(18|19|20)\d\d$")


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.casefold()))


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    width = len(needle)
    return any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))


def class_phrases(name: str, *, drop: Iterable[str] = DEFAULT_GENERIC_TERMS) -> tuple[str, ...]:
    """Return the words of a class name that identify the model, as one phrase.

    The name is split into lower-case words of letters and digits; the generic words
    (``drop``) and years (``2012``) are removed. "BMW Z4 Convertible 2012" gives
    ``("z4",)`` once "bmw" is among ``drop``; "BMW 3 Series Sedan 2012" gives
    ``("3 series",)``. A phrase of digits only, or nothing left, gives ``()``: such a class
    is never matched by words.

    Args:
        name: A class name or alias.
        drop: Words to remove (default :data:`DEFAULT_GENERIC_TERMS`).

    Returns:
        Zero or one phrase (words joined by single spaces).
    """
    dropped = {word.casefold() for word in drop}
    words = _tokens(name)
    kept = [word for word in words if word not in dropped and not _YEAR.match(word)]
    if not kept or all(word.isdigit() for word in kept):
        return ()
    return (" ".join(kept),)


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


class _Vocabulary:
    """Phrases per class and the generic words, built once per comparison."""

    def __init__(
        self,
        classes: Iterable[str],
        aliases: Mapping[str, Iterable[str]],
        generic_terms: Iterable[str],
    ) -> None:
        sources: dict[str, list[str]] = {}
        for name in classes:
            sources.setdefault(name, [name])
        for name, names in aliases.items():
            sources.setdefault(name, [name]).extend(names)
        # The make: words that every long name shares ("bmw" in "BMW Z4 Convertible 2012").
        long_names = [alias for names in aliases.values() for alias in names] or list(sources)
        common: set[str] = set()
        if len(long_names) >= 2:
            common = set(_tokens(long_names[0]))
            for alias in long_names[1:]:
                common &= set(_tokens(alias))
            common = {word for word in common if not word.isdigit()}
        self.make_terms = tuple(sorted(common))
        self.generic_terms = tuple(
            _tokens(term) for term in {*generic_terms, *self.make_terms} if _tokens(term)
        )
        drop = [" ".join(term) for term in self.generic_terms]
        self.phrases: dict[str, tuple[tuple[str, ...], ...]] = {}
        for name, names in sources.items():
            phrases = {
                _tokens(phrase) for source in names for phrase in class_phrases(source, drop=drop)
            }
            self.phrases[name] = tuple(sorted(phrases))

    def named_classes(self, texts: Iterable[str]) -> tuple[str, ...]:
        tokenized = [_tokens(text) for text in texts]
        return tuple(
            sorted(
                name
                for name, phrases in self.phrases.items()
                if any(_contains(words, phrase) for words in tokenized for phrase in phrases)
            )
        )

    def is_generic(self, texts: Iterable[str]) -> bool:
        return any(_contains(_tokens(text), term) for text in texts for term in self.generic_terms)


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


class VisionComparator(Closeable):
    """Compare a generic labeler with a custom model, image by image.

    Args:
        generic: Keyword-only. A :class:`GenericLabeler` (Cloud Vision or the offline
            ImageNet labeler).
        custom: Keyword-only. The custom model's :class:`~redditvision.classify.Classifier`.
        top_k: Generic labels kept per image (default 5).
        aliases: More names per class, matched like the class name: e.g. for a class
            ``"z3-4-8"`` the folder names ``["BMW Z4 Convertible 2012"]`` it was built from
            (a label map gives them). Default none.
        generic_terms: Words that name only a kind of vehicle (default
            :data:`DEFAULT_GENERIC_TERMS`); the make is found by itself as the words every
            class name or alias shares.
        batch_size: Images read and sent to both sides at a time (default 16, one Cloud
            Vision request).

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
        custom: Classifier,
        top_k: int = 5,
        aliases: Mapping[str, Iterable[str]] | None = None,
        generic_terms: Iterable[str] = DEFAULT_GENERIC_TERMS,
        batch_size: int = 16,
    ) -> None:
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.generic = generic
        self.custom = custom
        self.top_k = top_k
        self.aliases = {label: tuple(names) for label, names in (aliases or {}).items()}
        self.generic_terms = tuple(generic_terms)
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"VisionComparator(generic={self.generic.name!r}, custom={self.custom!r})"

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
                    results.append((tuple(self.custom.predict(blob)), None))
                except PredictionError as exc:
                    results.append(((), exc.message))
            return results

    def _known_labels(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        model = self.custom.model
        known = {model.label_map.get(label, label) for label in model.labels}
        known |= set(model.label_map.values())
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
        vocabulary = _Vocabulary(labels, self.aliases, self.generic_terms)
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
        model = self.custom.model
        return ComparisonReport(
            generic_name=self.generic.name,
            custom_name=model.display_name or model.resource,
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
