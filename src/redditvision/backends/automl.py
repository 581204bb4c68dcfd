"""Legacy AutoML v1 (``google.cloud.automl_v1``) behind :class:`~redditvision.AutoMLTrainer`.

.. warning::

   Google shut the legacy AutoML API down for Vision (AutoML Vision image classification)
   on 2024-03-31. Its successor is AutoML image classification in Vertex AI:
   use :class:`~redditvision.backends.vertex.VertexAutoMLBackend` for new work. This
   backend is kept for projects that still hold AutoML v1 resources, for other AutoML v1
   deployments that speak the same API, and because the design names it; every
   construction warns with :class:`AutoMLShutdownWarning`.

What it does, in the API's own terms:

* **dataset**: ``CreateDataset`` with ``ImageClassificationDatasetMetadata`` of
  ``classification_type=MULTICLASS`` (one label per image);
* **import**: ``ImportData`` from the dataset location's AutoML import file, a ``gs://`` CSV
  with rows ``TRAIN|VALIDATION|TEST|UNASSIGNED,gs://bucket/image.jpg,label``;
* **training**: ``CreateModel`` with ``ImageClassificationModelMetadata``
  (``train_budget_milli_node_hours``: 8,000-800,000 for model type ``cloud``, 1,000-100,000
  for the ``mobile-*`` types, per the field's API documentation);
* **evaluation**: ``ListModelEvaluations`` (its ``filter`` argument is required; ``""``
  lists the overall evaluation and one per label), converted to
  :class:`~redditvision.models.Evaluation`;
* **deploy**: ``DeployModel`` with ``ImageClassificationModelDeploymentMetadata.node_count``
  (1-100), and ``UndeployModel``;
* **predict**: ``PredictionService.Predict`` with one image per request and the
  ``score_threshold`` parameter, converted to :class:`~redditvision.models.Prediction`.

Every create (dataset, import, model, deploy) records the display name it uses and then
the operation name in a state file (:mod:`redditvision.backends._state`) before waiting; a
re-run after a crash or a timeout resumes polling that operation instead of creating
again. A create whose answer was lost (``DEADLINE_EXCEEDED``, ``UNAVAILABLE``) is looked
up by display name and among the location's operations, never re-sent blindly. Reads are
retried with the RPC :class:`~redditvision.retry.RetryPolicy`; long-running operations
are polled with a separate polling policy.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from google.api_core import exceptions as core_exceptions
from google.cloud import automl_v1
from PIL import Image, UnidentifiedImageError

from redditvision._closing import Closeable
from redditvision._google import translate_google
from redditvision.backends._state import RunState
from redditvision.errors import (
    ConfigError,
    PredictionError,
    RedditVisionError,
    TrainingError,
)
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    LabelMetrics,
    Prediction,
    ThresholdMetrics,
    TrainedModel,
    TrainingBudget,
)
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    resolve_retry,
)

__all__ = [
    "AUTOML_SHUTDOWN_NOTICE",
    "DEFAULT_AUTOML_POLL",
    "DEFAULT_AUTOML_RETRY",
    "MAX_PREDICT_IMAGE_BYTES",
    "AutoMLShutdownWarning",
    "LegacyAutoMLBackend",
    "LegacyAutoMLPredictor",
    "automl_display_name",
    "evaluation_from_automl",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

SERVICE = "automl"

AUTOML_SHUTDOWN_NOTICE = (
    "Google shut the legacy AutoML API (google-cloud-automl, AutoML v1) down for Vision "
    "image classification on 2024-03-31; use VertexAutoMLBackend (AutoML image "
    "classification in Vertex AI) instead. See docs/backends/automl for the migration."
)
"""The warning text: the service's shutdown date and where to go instead."""

MAX_PREDICT_IMAGE_BYTES = 30 * 1024 * 1024
"""Largest ``image_bytes`` of one online prediction: 30 MB for AutoML Vision classification
(``PredictionServiceClient.predict`` documentation of ``google-cloud-automl``)."""

_MODEL_TYPE_BUDGETS: Mapping[str, tuple[int, int]] = {
    "cloud": (8_000, 800_000),
    "mobile-low-latency-1": (1_000, 100_000),
    "mobile-versatile-1": (1_000, 100_000),
    "mobile-high-accuracy-1": (1_000, 100_000),
    "mobile-core-ml-low-latency-1": (1_000, 100_000),
    "mobile-core-ml-versatile-1": (1_000, 100_000),
    "mobile-core-ml-high-accuracy-1": (1_000, 100_000),
}
# Budget ranges of ImageClassificationModelMetadata.train_budget_milli_node_hours.

_DISPLAY_NAME_MAX = 32  # Dataset/Model.display_name: up to 32 of [A-Za-z0-9_], letter first.
_LOOKUP_SLACK_S = 300.0  # Clock skew allowed when matching a lost create's operation.
_DEFAULT_SCORE_THRESHOLD = 0.5  # AutoML's own default for ``score_threshold``.
_CSV_ML_USES = ("TRAIN", "VALIDATION", "TEST", "UNASSIGNED")


def _normalize_model_type(model_type: str) -> str:
    """Accept Vertex AI spellings too.

    ``CLOUD`` becomes ``cloud`` and ``MOBILE_TF_LOW_LATENCY_1`` ``mobile-low-latency-1``.
    """
    return model_type.strip().lower().replace("_", "-").replace("mobile-tf-", "mobile-")


class AutoMLShutdownWarning(UserWarning):
    """Warns that legacy AutoML v1 no longer serves Vision (shut down on 2024-03-31).

    A ``UserWarning`` (shown by default, unlike ``DeprecationWarning`` in library code) so
    that users of :class:`LegacyAutoMLBackend` see it; filter it with
    ``warnings.filterwarnings("ignore", category=AutoMLShutdownWarning)``.
    """


class _StillRunning(Exception):  # noqa: N818 - a polling signal, not an error
    """Raised by one poll of a long-running operation that is not done yet."""

    def __init__(self, name: str, progress: int | None) -> None:
        super().__init__(f"operation {name} is still running")
        self.name = name
        self.progress = progress


def _is_still_running(exc: BaseException) -> bool:
    return isinstance(exc, _StillRunning)


DEFAULT_AUTOML_RETRY = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
"""RPC retry of idempotent AutoML v1 calls (reads, predict): 5 attempts within 120 s, on
transient statuses (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL,
ABORTED), honouring ``RetryInfo`` up to 120 s."""

DEFAULT_AUTOML_POLL = RetryPolicy(
    on=_is_still_running,
    attempts=3_000,
    timeout=None,
    initial=5.0,
    maximum=120.0,
    multiplier=1.5,
    jitter=2.0,
    max_retry_after=0.0,
)
"""Polling of long-running operations, separate from the RPC retry: first wait 5 s, then
x1.5 up to 120 s per wait, at most 3,000 polls (about 100 hours; training with the
largest budget of 800,000 milli node hours on many nodes ends well within it)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _translate(
    exc: BaseException, error_type: type[RedditVisionError], action: str
) -> RedditVisionError:
    return translate_google(exc, error_type, service=SERVICE, action=action)


def _status_name(code: int) -> str:
    try:
        from grpc import StatusCode

        for status in StatusCode:
            if status.value[0] == code:
                return str(status.name)
    except ImportError:  # pragma: no cover - grpcio comes with google-api-core[grpc]
        pass
    return str(code)


def automl_display_name(name: str, *, suffix: str = "") -> str:
    """Make a display name that AutoML v1 accepts.

    AutoML v1 ``Dataset.display_name`` and ``Model.display_name`` allow up to 32 ASCII
    letters, digits and underscores, starting with a letter.

    Args:
        name: Any name, e.g. the dataset's name ``"r/BMW cars"``.
        suffix: Appended after an underscore (kept whole; the name is shortened instead).

    Returns:
        The name with other characters replaced by ``_``, a leading ``d`` added when it
        does not start with a letter, shortened to 32 characters.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "redditvision"
    if not cleaned[0].isalpha():
        cleaned = f"d{cleaned}"
    tail = f"_{suffix}" if suffix else ""
    return cleaned[: _DISPLAY_NAME_MAX - len(tail)].rstrip("_") + tail


def _fraction(value: float) -> float:
    return max(0.0, min(1.0, float(value)))


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _entry_at(
    entries: Sequence[Any], threshold: float
) -> Any | None:  # ConfidenceMetricsEntry, untyped
    """Return the confidence metrics entry nearest to ``threshold`` (position unlimited)."""
    best = None
    best_gap = float("inf")
    for entry in entries:
        # Entries with a position_threshold are extra curves; the aggregate ones have
        # position_threshold unset (0) or INT32_MAX.
        if entry.position_threshold not in (0, 2**31 - 1):
            continue
        gap = abs(float(entry.confidence_threshold) - threshold)
        if gap < best_gap - 1e-9:
            best, best_gap = entry, gap
    return best


def evaluation_from_automl(
    evaluations: Iterable[Any],
    *,
    labels: Sequence[str] = (),
    label_map: Mapping[str, str] | None = None,
    threshold: float = _DEFAULT_SCORE_THRESHOLD,
) -> Evaluation:
    """Convert AutoML v1 ``ModelEvaluation`` messages into an :class:`Evaluation`.

    AutoML v1 returns one overall evaluation (empty ``annotation_spec_id``) with the
    micro-averaged curve, ``au_prc``, ``log_loss`` and the confusion matrix (only for
    MULTICLASS with at most 10 labels), plus one evaluation per label with that label's
    curve and ``evaluated_example_count`` (its true items).

    Args:
        evaluations: The ``automl_v1.ModelEvaluation`` messages of one model.
        labels: Service labels the model was trained on (``TrainedModel.labels``); labels
            seen only in the evaluations are added. The result orders them sorted.
        label_map: Service label -> the user's label name (default: identity).
        threshold: Confidence threshold for the per-label precision/recall/F1 and the
            micro figures (default 0.5, AutoML's default ``score_threshold``).

    Returns:
        The evaluation. A label missing from the confusion matrix gets a zero row and
        column (and a warning in the log); when the service sent no confusion matrix
        (more than 10 labels) ``confusion_matrix`` is ``()`` and ``accuracy`` comes from
        the top-1 figures at threshold 0, if present.

    Raises:
        TrainingError: There is no overall classification evaluation.
    """
    mapping = dict(label_map or {})
    overall = None
    per_label: dict[str, Any] = {}
    for evaluation in evaluations:
        if "classification_evaluation_metrics" not in evaluation:
            continue
        if not evaluation.annotation_spec_id and not evaluation.display_name:
            overall = evaluation
        else:
            per_label[evaluation.display_name or evaluation.annotation_spec_id] = evaluation
    if overall is None:
        raise TrainingError(
            "the model has no overall classification evaluation (was it trained on an "
            "image classification dataset, and has training finished?)",
            service=SERVICE,
        )
    metrics = overall.classification_evaluation_metrics
    matrix = metrics.confusion_matrix if "confusion_matrix" in metrics else None
    matrix_names = list(matrix.display_name) if matrix is not None else []
    service_labels = sorted({*labels, *per_label, *matrix_names})

    confusion: tuple[tuple[int, ...], ...] = ()
    if matrix is not None and matrix_names:
        index = {name: i for i, name in enumerate(matrix_names)}
        missing = [label for label in service_labels if label not in index]
        if missing:
            logger.warning(
                "labels %s are missing from the confusion matrix of %s; their rows and "
                "columns are zero",
                ", ".join(missing),
                overall.name,
            )
        rows = [list(row.example_count) for row in matrix.row]
        confusion = tuple(
            tuple(
                int(rows[index[true]][index[pred]])
                if true in index
                and pred in index
                and index[true] < len(rows)
                and index[pred] < len(rows[index[true]])
                else 0
                for pred in service_labels
            )
            for true in service_labels
        )

    label_metrics: list[LabelMetrics] = []
    thresholds: list[ThresholdMetrics] = []
    for i, label in enumerate(service_labels):
        user = mapping.get(label, label)
        evaluation = per_label.get(label)
        if evaluation is not None:
            label_m = evaluation.classification_evaluation_metrics
            entry = _entry_at(label_m.confidence_metrics_entry, threshold)
            precision = _fraction(entry.precision) if entry is not None else 0.0
            recall = _fraction(entry.recall) if entry is not None else 0.0
            support = int(evaluation.evaluated_example_count)
            au_prc: float | None = float(label_m.au_prc)
            for curve in label_m.confidence_metrics_entry:
                if curve.position_threshold in (0, 2**31 - 1):
                    thresholds.append(
                        ThresholdMetrics(
                            confidence_threshold=float(curve.confidence_threshold),
                            precision=_fraction(curve.precision),
                            recall=_fraction(curve.recall),
                            f1=_fraction(curve.f1_score),
                            label=user,
                        )
                    )
        elif confusion:
            # No per-label evaluation: read the label's figures off the confusion matrix.
            true_positive = confusion[i][i]
            predicted = sum(row[i] for row in confusion)
            support = sum(confusion[i])
            precision = true_positive / predicted if predicted else 0.0
            recall = true_positive / support if support else 0.0
            au_prc = None
        else:
            precision = recall = 0.0
            support = 0
            au_prc = None
        label_metrics.append(
            LabelMetrics(
                label=user,
                precision=precision,
                recall=recall,
                f1=_f1(precision, recall),
                support=support,
                au_prc=au_prc,
            )
        )

    for curve in metrics.confidence_metrics_entry:
        if curve.position_threshold in (0, 2**31 - 1):
            thresholds.insert(
                sum(1 for t in thresholds if t.label is None),
                ThresholdMetrics(
                    confidence_threshold=float(curve.confidence_threshold),
                    precision=_fraction(curve.precision),
                    recall=_fraction(curve.recall),
                    f1=_fraction(curve.f1_score),
                ),
            )
    micro = _entry_at(metrics.confidence_metrics_entry, threshold)
    micro_precision = _fraction(micro.precision) if micro is not None else 0.0
    micro_recall = _fraction(micro.recall) if micro is not None else 0.0

    accuracy: float | None = None
    total = sum(sum(row) for row in confusion)
    if total:
        accuracy = sum(confusion[i][i] for i in range(len(confusion))) / total
    else:
        top1 = _entry_at(metrics.confidence_metrics_entry, 0.0)
        if top1 is not None and float(top1.confidence_threshold) == 0.0:
            accuracy = _fraction(top1.recall_at1)

    count = len(label_metrics) or 1
    return Evaluation(
        labels=tuple(mapping.get(label, label) for label in service_labels),
        per_label=tuple(label_metrics),
        confusion_matrix=confusion,
        accuracy=accuracy,
        macro_precision=sum(m.precision for m in label_metrics) / count,
        macro_recall=sum(m.recall for m in label_metrics) / count,
        macro_f1=sum(m.f1 for m in label_metrics) / count,
        micro_precision=micro_precision,
        micro_recall=micro_recall,
        micro_f1=_f1(micro_precision, micro_recall),
        au_prc=float(metrics.au_prc),
        log_loss=float(metrics.log_loss) if metrics.log_loss else None,
        thresholds=tuple(thresholds),
        evaluated_items=int(overall.evaluated_example_count),
        source=str(overall.name),
    )


def _fit_image(image: bytes, limit: int) -> bytes:
    """Return ``image`` unchanged when within ``limit`` bytes, else re-encoded as JPEG."""
    if len(image) <= limit:
        return image
    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise PredictionError(
            f"an image of {len(image)} bytes is over the {limit}-byte online prediction "
            f"limit and cannot be decoded to shrink it: {exc}"
        ) from exc
    quality = 90
    while True:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        if len(data) <= limit:
            return data
        if quality > 50:
            quality -= 15
        elif min(picture.size) > 64:
            picture = picture.resize((max(1, picture.width // 2), max(1, picture.height // 2)))
        else:
            raise PredictionError(
                f"an image of {len(image)} bytes cannot be re-encoded under the "
                f"{limit}-byte online prediction limit; send a smaller image"
            )


class LegacyAutoMLPredictor(Closeable):
    """A legacy AutoML v1 model ready to answer online predictions.

    Built by :meth:`LegacyAutoMLBackend.open_predictor`; closing it undeploys the model when
    this predictor deployed it.

    Args:
        backend: The backend whose clients to use.
        model: The deployed model.
        undeploy_on_close: Undeploy the model in :meth:`close`.
        retry: RPC retry for each predict call (:data:`~redditvision.retry.DEFAULT`: the
            backend's policy).
        timeout: Seconds per predict call (default 60.0).
    """

    def __init__(
        self,
        backend: LegacyAutoMLBackend,
        model: TrainedModel,
        *,
        undeploy_on_close: bool = False,
        retry: RetryArg = DEFAULT,
        timeout: float | None = 60.0,
    ) -> None:
        self._backend = backend
        self.model = model
        self.undeploy_on_close = undeploy_on_close
        self._retry = retry
        self._timeout = timeout
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"LegacyAutoMLPredictor(model={self.model.resource!r}, "
            f"undeploy_on_close={self.undeploy_on_close})"
        )

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images, one ``Predict`` call per image.

        Args:
            images: Encoded images (JPEG, PNG, GIF, ...); one over 30 MB
                (:data:`MAX_PREDICT_IMAGE_BYTES`) is re-encoded as JPEG to fit.
            confidence_threshold: Sent as ``params["score_threshold"]``; the service
                returns only labels scored at least this (default 0.0: all labels,
                whereas AutoML's own default is 0.5).
            max_predictions: Keep at most this many per image, best first (the v1 API has
                no such parameter for classification, so the cut is made here).

        Returns:
            One list per image, in input order, sorted by score descending, labels in the
            user's names.

        Raises:
            PredictionError: The predictor is closed, an image cannot be fitted under the
                limit, or the service refused (after retries for transient statuses such as
                RESOURCE_EXHAUSTED).
        """
        if self._closed:
            raise PredictionError(f"the predictor of {self.model.resource} is closed")
        results = []
        for image in images:
            payload = automl_v1.ExamplePayload(
                image=automl_v1.Image(image_bytes=_fit_image(image, MAX_PREDICT_IMAGE_BYTES))
            )
            request = automl_v1.PredictRequest(
                name=self.model.resource,
                payload=payload,
                params={"score_threshold": f"{confidence_threshold:g}"},
            )
            response = self._backend._call(
                functools.partial(
                    self._backend.prediction_client.predict,
                    request=request,
                    retry=None,
                    timeout=self._timeout,
                ),
                PredictionError,
                f"predicting with {self.model.resource}",
                retry=self._retry,
            )
            predictions = [
                Prediction(
                    label=self.model.label_map.get(
                        annotation.display_name, annotation.display_name
                    ),
                    score=_fraction(annotation.classification.score),
                    model_label=annotation.display_name,
                )
                for annotation in response.payload
                if "classification" in annotation
                and annotation.classification.score >= confidence_threshold
            ]
            predictions.sort(key=lambda prediction: prediction.score, reverse=True)
            if max_predictions is not None:
                predictions = predictions[:max_predictions]
            results.append(predictions)
        return results

    def close(self) -> None:
        """Undeploy the model when this predictor deployed it; safe to call twice.

        Raises:
            PredictionError: Undeploying failed (the model may still be deployed and cost
                money: the message names it).
        """
        if self._closed:
            return
        self._closed = True
        if self.undeploy_on_close:
            self._backend.undeploy(self.model)


class LegacyAutoMLBackend(Closeable):
    """Train, evaluate, deploy and predict on legacy AutoML v1 (shut down for Vision).

    Google shut AutoML Vision down on 2024-03-31 (see :data:`AUTOML_SHUTDOWN_NOTICE`);
    construction warns with :class:`AutoMLShutdownWarning`. Use
    :class:`~redditvision.backends.vertex.VertexAutoMLBackend` for new work.

    Args:
        client: ``automl_v1.AutoMlClient``; keyword-only, like every argument.
        prediction_client: ``automl_v1.PredictionServiceClient``.
        project: Google Cloud project id.
        location: AutoML location (default ``"us-central1"``; AutoML v1 also had ``"eu"``).
        state_dir: Folder of the state files that make a re-run resume (default:
            :func:`~redditvision.backends._state.default_state_dir`,
            ``$REDDITVISION_STATE_DIR`` or ``.redditvision/state``).
        retry: RPC retry of idempotent calls (default :data:`DEFAULT_AUTOML_RETRY`);
            ``None`` for single attempts. Creates are never retried.
        poll: Polling policy of long-running operations (default
            :data:`DEFAULT_AUTOML_POLL`).
        model_type: ``ImageClassificationModelMetadata.model_type``: ``"cloud"`` (default)
            or a ``mobile-*`` type; the Vertex AI spellings (``"CLOUD"``,
            ``"MOBILE_TF_LOW_LATENCY_1"``...) are accepted too, so one ``--model-type``
            serves both backends.
        node_count: Nodes to deploy on, 1-100 (default 1).
        timeout: Seconds per RPC (default 60.0).
        progress: Called as ``progress(step, message)`` while working, e.g.
            ``("training", "running, 40%")`` (percent from
            ``OperationMetadata.progress_percent`` when the service sends it); steps are
            ``"dataset"``, ``"import"``, ``"training"``, ``"deploy"``, ``"undeploy"``,
            ``"delete"``. The same is logged at INFO. Same signature as the Vertex AI
            backend's, so one callback serves both.
        owns_clients: Close the clients' transports on :meth:`close` (default False: the
            caller owns injected clients; :meth:`from_env` sets True).

    Raises:
        ConfigError: Unknown ``model_type`` or ``node_count`` outside 1-100.
    """

    name = "automl"

    def __init__(
        self,
        *,
        client: automl_v1.AutoMlClient,
        prediction_client: automl_v1.PredictionServiceClient,
        project: str,
        location: str = "us-central1",
        state_dir: str | Path | None = None,
        retry: RetryArg = DEFAULT,
        poll: RetryPolicy | None = None,
        model_type: str = "cloud",
        node_count: int = 1,
        timeout: float | None = 60.0,
        progress: Callable[[str, str], None] | None = None,
        owns_clients: bool = False,
    ) -> None:
        warnings.warn(AUTOML_SHUTDOWN_NOTICE, AutoMLShutdownWarning, stacklevel=2)
        model_type = _normalize_model_type(model_type)
        if model_type not in _MODEL_TYPE_BUDGETS:
            raise ConfigError(
                f"unknown AutoML v1 model_type {model_type!r}; use one of "
                f"{', '.join(_MODEL_TYPE_BUDGETS)}"
            )
        if not 1 <= node_count <= 100:
            raise ConfigError(f"node_count must be between 1 and 100, got {node_count}")
        self.client = client
        self.prediction_client = prediction_client
        self.project = project
        self.location = location
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.retry = resolve_retry(retry, DEFAULT_AUTOML_RETRY)
        self.poll = poll or DEFAULT_AUTOML_POLL
        self.model_type = model_type
        self.node_count = node_count
        self.timeout = timeout
        self.progress = progress
        self._owns_clients = owns_clients
        self._closed = False

    @classmethod
    def from_env(
        cls,
        project: str,
        location: str = "us-central1",
        *,
        api_endpoint: str | None = None,
        insecure: bool = False,
        state_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> LegacyAutoMLBackend:
        """Build the backend with clients made the ecosystem's way.

        Credentials are Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``
        or ``gcloud auth application-default login``).

        Args:
            project: Google Cloud project id.
            location: ``"us-central1"`` (default) or ``"eu"``.
            api_endpoint: ``host:port`` to talk to instead of ``automl.googleapis.com``
                (``eu-automl.googleapis.com`` for location ``"eu"``).
            insecure: Plaintext gRPC without credentials to ``api_endpoint`` (a local fake
                or emulator only; ``client_options`` with anonymous credentials would still
                open TLS).
            state_dir: See the class.
            **kwargs: Other arguments of the class (``retry``, ``poll``, ``node_count``,
                ``progress``...).

        Returns:
            The backend; it closes the clients' channels on :meth:`close`.

        Raises:
            ConfigError: ``insecure`` without ``api_endpoint``, or no credentials found.
        """
        endpoint = api_endpoint or (
            "eu-automl.googleapis.com" if location == "eu" else "automl.googleapis.com"
        )
        if insecure:
            if api_endpoint is None:
                raise ConfigError("insecure=True needs api_endpoint (a local fake or emulator)")
            import grpc

            def _transport(client_class: Any) -> Any:
                transport_class = client_class.get_transport_class("grpc")
                return transport_class(channel=grpc.insecure_channel(endpoint))

            client = automl_v1.AutoMlClient(transport=_transport(automl_v1.AutoMlClient))
            prediction_client = automl_v1.PredictionServiceClient(
                transport=_transport(automl_v1.PredictionServiceClient)
            )
        else:
            from google.auth import exceptions as auth_exceptions

            options = {"api_endpoint": endpoint}
            try:
                client = automl_v1.AutoMlClient(client_options=options)
                prediction_client = automl_v1.PredictionServiceClient(client_options=options)
            except auth_exceptions.DefaultCredentialsError as exc:
                raise ConfigError(
                    "no Google Cloud credentials found: run `gcloud auth "
                    "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
                ) from exc
        kwargs.setdefault("owns_clients", True)
        return cls(
            client=client,
            prediction_client=prediction_client,
            project=project,
            location=location,
            state_dir=state_dir,
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"LegacyAutoMLBackend(project={self.project!r}, location={self.location!r}, "
            f"model_type={self.model_type!r})"
        )

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{location}``."""
        return f"projects/{self.project}/locations/{self.location}"

    # -- plumbing ------------------------------------------------------------------------

    def _call(
        self,
        fn: Callable[[], T],
        error_type: type[RedditVisionError],
        action: str,
        *,
        retry: RetryArg = DEFAULT,
    ) -> T:
        """Call an idempotent RPC with the RPC retry, translating Google errors."""

        def attempt() -> T:
            try:
                return fn()
            except (core_exceptions.GoogleAPIError, core_exceptions.RetryError) as exc:
                raise _translate(exc, error_type, action) from exc

        return call_with_retry(resolve_retry(retry, self.retry), attempt)

    def _create(self, fn: Callable[[], T], error_type: type[RedditVisionError], action: str) -> T:
        """Send a create once (never retried), translating Google errors."""
        try:
            return fn()
        except (core_exceptions.GoogleAPIError, core_exceptions.RetryError) as exc:
            raise _translate(exc, error_type, action) from exc

    @staticmethod
    def _lost_answer(error: RedditVisionError) -> bool:
        """Tell whether a create's outcome is unknown (the server may have done it)."""
        return error.status in {"DEADLINE_EXCEEDED", "UNAVAILABLE", "INTERNAL", "UNKNOWN"}

    def _report(self, step: str, message: str) -> None:
        logger.info("automl %s: %s", step, message)
        if self.progress is not None:
            self.progress(step, message)

    def _get_operation(self, name: str, error_type: type[RedditVisionError]) -> Any:
        operations = self.client.transport.operations_client
        return self._call(
            lambda: operations.get_operation(name, retry=None, timeout=self.timeout),
            error_type,
            f"reading operation {name}",
        )

    def _poll(self, name: str, stage: str, error_type: type[RedditVisionError]) -> Any:
        """Poll operation ``name`` with the polling policy until it is done.

        Returns:
            The finished ``operations_pb2.Operation`` (with a response or an error).

        Raises:
            error_type: The operation cannot be read, or it is still running after the
                polling policy gave up (transient: a re-run resumes it).
        """

        def poll_once() -> Any:
            operation = self._get_operation(name, error_type)
            progress: int | None = None
            if operation.metadata.value:
                metadata = automl_v1.OperationMetadata.deserialize(operation.metadata.value)
                progress = int(metadata.progress_percent) if metadata.progress_percent else None
            if not operation.done:
                percent = f", {progress}%" if progress is not None else ""
                self._report(stage, f"running{percent} ({name})")
                raise _StillRunning(name, progress)
            self._report(stage, f"done ({name})")
            return operation

        self._report(stage, f"waiting for {name}")
        try:
            operation = self.poll.call(poll_once)
        except _StillRunning as exc:
            raise error_type(
                f"{stage} operation {name} is still running after the polling policy's "
                f"{self.poll.attempts} polls; run again to resume waiting for it",
                service=SERVICE,
                transient=True,
            ) from exc
        return operation

    def _wait(self, name: str, stage: str, error_type: type[RedditVisionError]) -> Any:
        """Poll operation ``name`` until done and raise its error when it ended with one.

        Returns:
            The finished ``operations_pb2.Operation`` with a response.

        Raises:
            error_type: As :meth:`_poll`, or the operation ended with an error (its status
                and message).
        """
        operation = self._poll(name, stage, error_type)
        self._raise_if_failed(operation, stage, error_type)
        return operation

    @staticmethod
    def _raise_if_failed(operation: Any, stage: str, error_type: type[RedditVisionError]) -> None:
        if operation.HasField("error"):
            status = _status_name(operation.error.code)
            raise error_type(
                f"{stage} operation {operation.name} failed: {operation.error.message or status}",
                service=SERVICE,
                status=status,
            )

    def _wait_step(self, state: RunState, operation: str, stage: str, key: str) -> Any:
        """Wait for a training step's operation; forget it when it ended with an error.

        A failed operation is final, so its record is dropped: the next run creates the
        step afresh (after the user fixed the cause) instead of polling the failure again.
        Any other error (still running, operation unreadable) keeps the record.
        """
        done = self._poll(operation, stage, TrainingError)
        if done.HasField("error"):
            state.discard([f"{key}_operation", f"{key}_attempted_at"])
            self._raise_if_failed(done, stage, TrainingError)
        return done

    def _find_lost_operation(
        self, detail: str, since: float, known: Iterable[str], error_type: type[RedditVisionError]
    ) -> str | None:
        """Find the operation of a create whose answer was lost, among the location's."""
        operations = self.client.transport.operations_client
        found = self._call(
            lambda: list(
                operations.list_operations(self.parent, "", retry=None, timeout=self.timeout)
            ),
            error_type,
            f"listing operations of {self.parent}",
        )
        skip = set(known)
        candidates = []
        for operation in found:
            if operation.name in skip or not operation.metadata.value:
                continue
            metadata = automl_v1.OperationMetadata.deserialize(operation.metadata.value)
            if detail not in metadata:
                continue
            created = metadata.create_time
            created_s = created.timestamp() if created is not None else 0.0
            if created_s >= since - _LOOKUP_SLACK_S:
                candidates.append(operation.name)
        if len(candidates) > 1:
            raise error_type(
                f"the answer to a create was lost and {len(candidates)} matching operations "
                f"exist ({', '.join(candidates)}); check them in the console and remove the "
                "state file entry to start over",
                service=SERVICE,
            )
        return candidates[0] if candidates else None

    # -- dataset and import --------------------------------------------------------------

    @staticmethod
    def _recorded_operations(state: RunState) -> list[str]:
        keys = ("dataset_operation", "import_operation", "model_operation")
        return [str(state.get(key)) for key in keys if state.get(key)]

    def _find_dataset(self, display_name: str) -> str | None:
        datasets = self._call(
            lambda: list(
                self.client.list_datasets(parent=self.parent, retry=None, timeout=self.timeout)
            ),
            TrainingError,
            f"listing datasets of {self.parent}",
        )
        names = [d.name for d in datasets if d.display_name == display_name]
        return names[0] if names else None

    def _ensure_dataset(self, state: RunState, display_name: str) -> str:
        if state.get("dataset"):
            return str(state.get("dataset"))
        operation = state.get("dataset_operation")
        if not operation:
            attempted = state.get("dataset_attempted_at")
            if attempted:
                # A previous create's answer was lost: look before creating again.
                existing = self._find_dataset(display_name)
                if existing:
                    state.set("dataset", existing)
                    return existing
            state.set("dataset_display_name", display_name)
            state.set("dataset_attempted_at", time.time())
            dataset = automl_v1.Dataset(
                display_name=display_name,
                image_classification_dataset_metadata=automl_v1.ImageClassificationDatasetMetadata(
                    classification_type=automl_v1.ClassificationType.MULTICLASS
                ),
            )
            try:
                created = self._create(
                    lambda: self.client.create_dataset(
                        parent=self.parent, dataset=dataset, retry=None, timeout=self.timeout
                    ),
                    TrainingError,
                    f"creating dataset {display_name}",
                )
                operation = created.operation.name
            except TrainingError as exc:
                if not self._lost_answer(exc):
                    state.discard(["dataset_attempted_at"])
                    raise
                logger.warning("creating dataset %s: %s; looking it up by name", display_name, exc)
                existing = self._find_dataset(display_name)
                if existing:
                    state.set("dataset", existing)
                    return existing
                operation = self._find_lost_operation(
                    "create_dataset_details",
                    float(state.get("dataset_attempted_at") or 0),
                    (),
                    TrainingError,
                )
                if operation is None:
                    raise
            state.set("dataset_operation", operation)
        done = self._wait_step(state, str(operation), "dataset", "dataset")
        dataset_name = automl_v1.Dataset.deserialize(done.response.value).name
        state.set("dataset", dataset_name)
        return str(dataset_name)

    def _ensure_import(self, state: RunState, dataset: str, uri: str) -> None:
        if state.get("import_done"):
            return
        operation = state.get("import_operation")
        if not operation and state.get("import_attempted_at"):
            # An earlier import's answer was lost: resume its operation if it exists.
            operation = self._find_lost_operation(
                "import_data_details",
                float(state.get("import_attempted_at")),
                self._recorded_operations(state),
                TrainingError,
            )
            if operation:
                state.set("import_operation", operation)
        if not operation:
            state.set("import_attempted_at", time.time())
            config = automl_v1.InputConfig(gcs_source=automl_v1.GcsSource(input_uris=[uri]))
            try:
                created = self._create(
                    lambda: self.client.import_data(
                        name=dataset, input_config=config, retry=None, timeout=self.timeout
                    ),
                    TrainingError,
                    f"importing {uri} into {dataset}",
                )
                operation = created.operation.name
            except TrainingError as exc:
                if not self._lost_answer(exc):
                    raise
                operation = self._find_lost_operation(
                    "import_data_details",
                    float(state.get("import_attempted_at") or 0),
                    self._recorded_operations(state),
                    TrainingError,
                )
                if operation is None:
                    raise
            state.set("import_operation", operation)
        self._wait_step(state, str(operation), "import", "import")
        state.set("import_done", True)

    # -- training ------------------------------------------------------------------------

    def _find_model(self, display_name: str) -> str | None:
        models = self._call(
            lambda: list(
                self.client.list_models(parent=self.parent, retry=None, timeout=self.timeout)
            ),
            TrainingError,
            f"listing models of {self.parent}",
        )
        names = [m.name for m in models if m.display_name == display_name]
        return names[0] if names else None

    def _check_budget(self, budget: TrainingBudget) -> None:
        low, high = _MODEL_TYPE_BUDGETS[self.model_type]
        if not low <= budget.milli_node_hours <= high:
            raise ConfigError(
                f"budget of {budget.milli_node_hours} milli node hours is outside "
                f"{low:,}-{high:,} for AutoML v1 model type {self.model_type!r} "
                "(ImageClassificationModelMetadata.train_budget_milli_node_hours)"
            )

    def _import_uri(self, data: LabeledDataset | DatasetLocation) -> str:
        if not isinstance(data, DatasetLocation):
            raise ConfigError(
                "legacy AutoML trains from a written dataset: write it with "
                "GcsDatasetWriter and pass the DatasetLocation (import format automl_csv)"
            )
        if data.import_format == "automl_csv":
            uri = data.import_file_uri
        elif "automl_csv" in data.extra_import_files:
            uri = data.extra_import_files["automl_csv"]
        else:
            raise ConfigError(
                f"the dataset at {data.uri} has no AutoML v1 import file (format "
                f"{data.import_format!r}); write it with the automl_csv format "
                "(rows TRAIN|VALIDATION|TEST|UNASSIGNED,gs://...,label)"
            )
        if not uri.startswith("gs://"):
            raise ConfigError(
                f"AutoML v1 imports from Cloud Storage only, got {uri}; write the dataset "
                "to a gs:// bucket"
            )
        return uri

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget,
        display_name: str | None = None,
    ) -> TrainedModel:
        """Create the dataset, import the images, train a model and wait for it.

        Each step's operation name is recorded in the run's state file before waiting, so a
        re-run with the same dataset location and display name resumes where this one
        stopped (a crash, a timeout, Ctrl-C) instead of paying for a second training.

        Args:
            data: The written dataset; its AutoML v1 import file (``automl_csv``, rows
                ``TRAIN|VALIDATION|TEST|UNASSIGNED,gs://...,label``) must be on ``gs://``.
            budget: ``milli_node_hours`` is sent as ``train_budget_milli_node_hours``
                (8,000-800,000 for ``cloud``; 1,000-100,000 for ``mobile-*``).
                ``early_stopping`` is AutoML v1's own behaviour (training stops when the
                model converges) and cannot be turned off.
            display_name: Base of the dataset and model display names (default: the
                dataset location's last path part); made AutoML-safe (32 characters of
                ``[A-Za-z0-9_]``).

        Returns:
            The model handle (``backend="automl"``, ``resource`` the model's name).

        Raises:
            ConfigError: Not a ``gs://`` AutoML v1 dataset location, or budget out of range.
            TrainingError: A create, the import or the training failed (the server's
                message and status are kept), or training is still running after the
                polling policy (transient: run again to resume).
        """
        uri = self._import_uri(data)
        assert isinstance(data, DatasetLocation)
        self._check_budget(budget)
        base = display_name or data.uri.rstrip("/").rsplit("/", 1)[-1] or "redditvision"
        state = RunState.for_run(self.state_dir, "automl", self.parent, uri, base)
        token = str(state.get("token") or _now().strftime("%Y%m%d%H%M%S"))
        state.set("token", token)
        dataset_display = str(
            state.get("dataset_display_name") or automl_display_name(base, suffix=token)
        )
        model_display = str(
            state.get("model_display_name") or automl_display_name(base, suffix=f"m{token}")
        )
        dataset = self._ensure_dataset(state, dataset_display)
        self._ensure_import(state, dataset, uri)

        model_name = state.get("model")
        if not model_name:
            operation = state.get("model_operation")
            if not operation and state.get("model_attempted_at"):
                # An earlier create's answer was lost, or the process died while sending
                # it: look for the model, then for its training operation, before creating.
                model_name = self._find_model(model_display)
                if model_name:
                    state.set("model", model_name)
                else:
                    operation = self._find_lost_operation(
                        "create_model_details",
                        float(state.get("model_attempted_at")),
                        self._recorded_operations(state),
                        TrainingError,
                    )
                    if operation:
                        state.set("model_operation", operation)
            if not model_name and not operation:
                operation = self._create_model(state, dataset, model_display, budget)
            if not model_name:
                done = self._wait_step(state, str(operation), "training", "model")
                model_name = automl_v1.Model.deserialize(done.response.value).name
                state.set("model", model_name)
        model = self._call(
            lambda: self.client.get_model(name=model_name, retry=None, timeout=self.timeout),
            TrainingError,
            f"reading model {model_name}",
        )
        metadata = model.image_classification_model_metadata
        return TrainedModel(
            backend=self.name,
            resource=str(model_name),
            labels=tuple(data.labels),
            label_map=dict(data.label_map),
            display_name=model.display_name or model_display,
            metadata={
                "dataset": dataset,
                "model_type": metadata.model_type or self.model_type,
                "train_budget_milli_node_hours": int(metadata.train_budget_milli_node_hours),
                "train_cost_milli_node_hours": int(metadata.train_cost_milli_node_hours),
                "stop_reason": metadata.stop_reason,
                "state_file": str(state.path),
            },
        )

    def _create_model(
        self, state: RunState, dataset: str, display_name: str, budget: TrainingBudget
    ) -> str:
        state.set("model_display_name", display_name)
        state.set("model_attempted_at", time.time())
        model = automl_v1.Model(
            display_name=display_name,
            dataset_id=dataset.rsplit("/", 1)[-1],
            image_classification_model_metadata=automl_v1.ImageClassificationModelMetadata(
                train_budget_milli_node_hours=budget.milli_node_hours,
                model_type=self.model_type,
            ),
        )
        try:
            created = self._create(
                lambda: self.client.create_model(
                    parent=self.parent, model=model, retry=None, timeout=self.timeout
                ),
                TrainingError,
                f"creating model {display_name}",
            )
            operation = str(created.operation.name)
        except TrainingError as exc:
            if not self._lost_answer(exc):
                state.discard(["model_attempted_at"])
                raise
            logger.warning("creating model %s: %s; looking for its operation", display_name, exc)
            found = self._find_lost_operation(
                "create_model_details",
                float(state.get("model_attempted_at") or 0),
                self._recorded_operations(state),
                TrainingError,
            )
            if found is None:
                raise
            operation = found
        state.set("model_operation", operation)
        return operation

    # -- evaluation ----------------------------------------------------------------------

    def evaluate(
        self,
        model: TrainedModel,
        data: LabeledDataset | None = None,
        *,
        retry: RetryArg = DEFAULT,
    ) -> Evaluation:
        """Read the evaluation AutoML computed on the model's TEST images.

        Args:
            model: The model (``resource`` a model name).
            data: Ignored: the service evaluates on its own test split.
            retry: RPC retry (default: the backend's).

        Returns:
            The evaluation (see :func:`evaluation_from_automl`).

        Raises:
            TrainingError: The model does not exist or has no evaluation.
        """
        evaluations = self._call(
            lambda: list(
                self.client.list_model_evaluations(
                    parent=model.resource, filter="", retry=None, timeout=self.timeout
                )
            ),
            TrainingError,
            f"listing evaluations of {model.resource}",
            retry=retry,
        )
        return evaluation_from_automl(evaluations, labels=model.labels, label_map=model.label_map)

    # -- deployment and prediction -------------------------------------------------------

    def _get_model(self, resource: str, error_type: type[RedditVisionError]) -> Any:
        return self._call(
            lambda: self.client.get_model(name=resource, retry=None, timeout=self.timeout),
            error_type,
            f"reading model {resource}",
        )

    def deploy(self, model: TrainedModel | str, *, node_count: int | None = None) -> bool:
        """Deploy ``model`` for online prediction unless it is deployed already.

        The deploy operation is recorded in the state file before waiting, so a re-run
        resumes it.

        Args:
            model: The model or its resource name.
            node_count: Nodes, 1-100 (default: the backend's ``node_count``).

        Returns:
            True when this call deployed it, False when it was deployed already.

        Raises:
            PredictionError: The model does not exist (NOT_FOUND, with the server's message)
                or deploying failed.
        """
        resource = model.resource if isinstance(model, TrainedModel) else model
        nodes = node_count or self.node_count
        current = self._get_model(resource, PredictionError)
        if current.deployment_state == automl_v1.Model.DeploymentState.DEPLOYED:
            return False
        state = RunState.for_run(self.state_dir, "automl", self.parent, resource, "deploy")
        operation = state.get("deploy_operation")
        if not operation:
            request = automl_v1.DeployModelRequest(
                name=resource,
                image_classification_model_deployment_metadata=(
                    automl_v1.ImageClassificationModelDeploymentMetadata(node_count=nodes)
                ),
            )
            created = self._create(
                lambda: self.client.deploy_model(request=request, retry=None, timeout=self.timeout),
                PredictionError,
                f"deploying {resource}",
            )
            operation = created.operation.name
            state.set("deploy_operation", operation)
        done = self._poll(str(operation), "deploy", PredictionError)
        state.discard(["deploy_operation"])  # it ended: a later deploy starts afresh
        self._raise_if_failed(done, "deploy", PredictionError)
        return True

    def undeploy(self, model: TrainedModel | str) -> None:
        """Undeploy ``model`` and wait; nothing happens when it is not deployed.

        Args:
            model: The model or its resource name.

        Raises:
            PredictionError: Undeploying failed; the message names the model, which may
                still be deployed (and billed per node hour).
        """
        resource = model.resource if isinstance(model, TrainedModel) else model
        current = self._get_model(resource, PredictionError)
        if current.deployment_state != automl_v1.Model.DeploymentState.DEPLOYED:
            return
        created = self._create(
            lambda: self.client.undeploy_model(name=resource, retry=None, timeout=self.timeout),
            PredictionError,
            f"undeploying {resource} (it may still be deployed and billed)",
        )
        self._report("undeploy", f"undeploying {resource}")
        self._wait(str(created.operation.name), "undeploy", PredictionError)

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> LegacyAutoMLPredictor:
        """Open a predictor for ``model``, deploying it first when needed.

        Args:
            model: The model.
            deploy: Deploy the model when it is not deployed (the predictor then undeploys
                it on close). With False, an undeployed model is an error.

        Returns:
            The predictor.

        Raises:
            PredictionError: The model does not exist, is not deployed (``deploy=False``),
                or deploying failed.
        """
        if deploy:
            deployed_here = self.deploy(model)
        else:
            current = self._get_model(model.resource, PredictionError)
            if current.deployment_state != automl_v1.Model.DeploymentState.DEPLOYED:
                raise PredictionError(
                    f"model {model.resource} is not deployed; deploy it first "
                    "(redditvision deploy) or open the predictor with deploy=True"
                )
            deployed_here = False
        return LegacyAutoMLPredictor(
            self, model, undeploy_on_close=deployed_here, timeout=self.timeout
        )

    def delete(self, model: TrainedModel, *, dataset: bool = False) -> None:
        """Delete the model (and, if asked, its dataset) and wait; missing ones are fine.

        Args:
            model: The model.
            dataset: Also delete ``model.metadata["dataset"]``.

        Raises:
            TrainingError: Deleting failed.
        """
        targets = [(self.client.delete_model, model.resource)]
        if dataset and model.metadata.get("dataset"):
            targets.append((self.client.delete_dataset, str(model.metadata["dataset"])))
        for method, resource in targets:
            try:
                created = method(name=resource, retry=None, timeout=self.timeout)
            except core_exceptions.NotFound:
                continue
            except (core_exceptions.GoogleAPIError, core_exceptions.RetryError) as exc:
                raise _translate(exc, TrainingError, f"deleting {resource}") from exc
            self._wait(str(created.operation.name), "delete", TrainingError)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the clients' transports when this backend owns them; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if not self._owns_clients:
            return
        for client in (self.client, self.prediction_client):
            client.transport.close()  # type: ignore[no-untyped-call]  # GAPIC transport
