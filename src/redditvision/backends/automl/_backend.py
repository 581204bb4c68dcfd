"""The legacy AutoML v1 backend: training, evaluation and clean-up over the shared plumbing."""

from __future__ import annotations

import functools
import logging
import time

from google.cloud import automl_v1

from redditvision.backends._lro import check_budget, create_once, is_operation
from redditvision.backends._state import RunState
from redditvision.backends.automl._deployment import DeploymentMixin
from redditvision.backends.automl._evaluation import evaluation_from_automl
from redditvision.backends.automl._limits import (
    IMPORT_FORMATS,
    MODEL_TYPE_BUDGETS,
    SERVICE,
    automl_display_name,
)
from redditvision.errors import ConfigError, TrainingError
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    TrainedModel,
    TrainingBudget,
)
from redditvision.retry import DEFAULT, RetryArg

__all__ = ["LegacyAutoMLBackend"]

logger = logging.getLogger("redditvision.backends.automl")


class LegacyAutoMLBackend(DeploymentMixin):
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
        state.set("dataset_display_name", display_name)
        dataset = automl_v1.Dataset(
            display_name=display_name,
            image_classification_dataset_metadata=automl_v1.ImageClassificationDatasetMetadata(
                classification_type=automl_v1.ClassificationType.MULTICLASS
            ),
        )

        def send() -> str:
            created = self._create(
                lambda: self.client.create_dataset(
                    parent=self.parent, dataset=dataset, retry=None, timeout=self.timeout
                ),
                TrainingError,
                f"creating dataset {display_name}",
            )
            return str(created.operation.name)

        def find(since: float) -> str | None:
            # A create whose answer was lost: the dataset by name, else its operation.
            return self._find_dataset(display_name) or self._find_lost_operation(
                "create_dataset_details", since, (), TrainingError
            )

        value = create_once(
            state,
            "dataset_operation",
            send,
            find,
            error=TrainingError,
            service=SERVICE,
            step="dataset",
            pending="dataset_attempted_at",
            report=self.progress,
        )
        if is_operation(value):
            done = self._wait_step(state, value, "dataset", "dataset")
            value = str(automl_v1.Dataset.deserialize(done.response.value).name)
        state.set("dataset", value)
        return value

    def _ensure_import(self, state: RunState, dataset: str, uri: str) -> None:
        if state.get("import_done"):
            return
        config = automl_v1.InputConfig(gcs_source=automl_v1.GcsSource(input_uris=[uri]))

        def send() -> str:
            created = self._create(
                lambda: self.client.import_data(
                    name=dataset, input_config=config, retry=None, timeout=self.timeout
                ),
                TrainingError,
                f"importing {uri} into {dataset}",
            )
            return str(created.operation.name)

        operation = create_once(
            state,
            "import_operation",
            send,
            lambda since: self._find_lost_operation(
                "import_data_details", since, self._recorded_operations(state), TrainingError
            ),
            error=TrainingError,
            service=SERVICE,
            step="import",
            pending="import_attempted_at",
            report=self.progress,
        )
        self._wait_step(state, operation, "import", "import")
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
        check_budget(
            budget.milli_node_hours,
            model_type=self.model_type,
            budgets=MODEL_TYPE_BUDGETS,
            service="AutoML v1",
            field="ImageClassificationModelMetadata.train_budget_milli_node_hours",
        )

    def _import_uri(self, data: LabeledDataset | DatasetLocation) -> str:
        if not isinstance(data, DatasetLocation):
            raise ConfigError(
                "legacy AutoML trains from a written dataset: write it with "
                "GcsDatasetWriter and pass the DatasetLocation (import format automl_csv)"
            )
        (fmt,) = IMPORT_FORMATS
        if data.import_format == fmt:
            uri = data.import_file_uri
        elif fmt in data.extra_import_files:
            uri = data.extra_import_files[fmt]
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
        state = RunState.for_run(self.state_dir, SERVICE, self.parent, uri, base)
        token = str(state.get("token") or time.strftime("%Y%m%d%H%M%S", time.gmtime()))
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
            state.set("model_display_name", model_display)

            def find_model(since: float) -> str | None:
                # An earlier create's answer was lost, or the process died while sending
                # it: look for the model, then for its training operation.
                return self._find_model(model_display) or self._find_lost_operation(
                    "create_model_details", since, self._recorded_operations(state), TrainingError
                )

            value = create_once(
                state,
                "model_operation",
                lambda: self._create_model(dataset, model_display, budget),
                find_model,
                error=TrainingError,
                service=SERVICE,
                step="training",
                pending="model_attempted_at",
                report=self.progress,
            )
            if is_operation(value):
                done = self._wait_step(state, value, "training", "model")
                value = automl_v1.Model.deserialize(done.response.value).name
            model_name = value
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

    def _create_model(self, dataset: str, display_name: str, budget: TrainingBudget) -> str:
        model = automl_v1.Model(
            display_name=display_name,
            dataset_id=dataset.rsplit("/", 1)[-1],
            image_classification_model_metadata=automl_v1.ImageClassificationModelMetadata(
                train_budget_milli_node_hours=budget.milli_node_hours,
                model_type=self.model_type,
            ),
        )
        created = self._create(
            lambda: self.client.create_model(
                parent=self.parent, model=model, retry=None, timeout=self.timeout
            ),
            TrainingError,
            f"creating model {display_name}",
        )
        return str(created.operation.name)

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
                created = self._create(
                    functools.partial(method, name=resource, retry=None, timeout=self.timeout),
                    TrainingError,
                    f"deleting {resource}",
                )
            except TrainingError as exc:
                if exc.status == "NOT_FOUND":
                    continue
                raise
            self._wait(str(created.operation.name), "delete", TrainingError)
