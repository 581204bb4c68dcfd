"""Deployment and online prediction on legacy AutoML v1 (the ``Deployer`` protocol)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from google.cloud import automl_v1

from redditvision._closing import Closeable
from redditvision._imaging import fit_image_bytes
from redditvision.backends._lro import create_once, forget
from redditvision.backends._protocol import Deployment, Undeployment
from redditvision.backends._state import RunState
from redditvision.backends.automl._client import AutoMLClient
from redditvision.backends.automl._evaluation import fraction
from redditvision.backends.automl._limits import MAX_PREDICT_IMAGE_BYTES, SERVICE
from redditvision.errors import ConfigError, PredictionError, RedditVisionError
from redditvision.models import Prediction, TrainedModel
from redditvision.retry import DEFAULT, RetryArg

__all__ = ["DeploymentMixin", "LegacyAutoMLPredictor"]


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
        backend: DeploymentMixin,
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
                image=automl_v1.Image(
                    image_bytes=fit_image_bytes(image, limit=MAX_PREDICT_IMAGE_BYTES)
                )
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
                    score=fraction(annotation.classification.score),
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


class DeploymentMixin(AutoMLClient):
    """Deployment and prediction of :class:`~redditvision.backends.automl.LegacyAutoMLBackend`."""

    def _get_model(self, resource: str, error_type: type[RedditVisionError]) -> Any:
        return self._call(
            lambda: self.client.get_model(name=resource, retry=None, timeout=self.timeout),
            error_type,
            f"reading model {resource}",
        )

    def deploy(
        self,
        model: TrainedModel | str,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        node_count: int | None = None,
    ) -> Deployment:
        """Deploy ``model`` for online prediction unless it is deployed already.

        The deploy operation is recorded in the state file before waiting, so a re-run
        resumes it (:class:`~redditvision.backends.Deployer`).

        Args:
            model: The model or its resource name.
            min_replicas: Nodes to deploy on, 1-100 (``node_count``; default: the
                backend's ``node_count``).
            max_replicas: Ignored: AutoML v1 deploys on a fixed number of nodes.
            node_count: Same as ``min_replicas`` (the API's name); wins when both are given.

        Returns:
            The deployment (``endpoint`` None: the model itself serves); ``deployed`` is
            True when this call deployed it, False when it was deployed already.

        Raises:
            ConfigError: Nodes outside 1-100.
            PredictionError: The model does not exist (NOT_FOUND, with the server's message)
                or deploying failed.
        """
        resource = model.resource if isinstance(model, TrainedModel) else model
        nodes = node_count or min_replicas or self.node_count
        if not 1 <= nodes <= 100:
            raise ConfigError(f"AutoML v1 deploys on 1-100 nodes, got {nodes}")
        current = self._get_model(resource, PredictionError)
        if current.deployment_state == automl_v1.Model.DeploymentState.DEPLOYED:
            return Deployment(backend=SERVICE, model=resource, deployed=False)
        state = RunState.for_run(self.state_dir, SERVICE, self.parent, resource, "deploy")
        request = automl_v1.DeployModelRequest(
            name=resource,
            image_classification_model_deployment_metadata=(
                automl_v1.ImageClassificationModelDeploymentMetadata(node_count=nodes)
            ),
        )

        def send() -> str:
            created = self._create(
                lambda: self.client.deploy_model(request=request, retry=None, timeout=self.timeout),
                PredictionError,
                f"deploying {resource}",
            )
            return str(created.operation.name)

        operation = create_once(
            state,
            "deploy_operation",
            send,
            None,
            error=PredictionError,
            service=SERVICE,
            step="deploy",
            report=self.progress,
        )
        done = self._poll(operation, "deploy", PredictionError)
        forget(state, ["deploy_operation"])  # it ended: a later deploy starts afresh
        self._raise_if_failed(done, "deploy", PredictionError)
        return Deployment(backend=SERVICE, model=resource, deployed=True)

    def undeploy(self, model: TrainedModel | Deployment | str) -> bool:
        """Undeploy ``model`` and wait; nothing happens when it is not deployed.

        Args:
            model: The model, its deployment or its resource name.

        Returns:
            True when it was deployed and is now undeployed.

        Raises:
            PredictionError: Undeploying failed; the message names the model, which may
                still be deployed (and billed per node hour).
        """
        resource = (
            model
            if isinstance(model, str)
            else model.model
            if isinstance(model, Deployment)
            else model.resource
        )
        current = self._get_model(resource, PredictionError)
        if current.deployment_state != automl_v1.Model.DeploymentState.DEPLOYED:
            return False
        created = self._create(
            lambda: self.client.undeploy_model(name=resource, retry=None, timeout=self.timeout),
            PredictionError,
            f"undeploying {resource} (it may still be deployed and billed)",
        )
        self._report("undeploy", f"undeploying {resource}")
        self._wait(str(created.operation.name), "undeploy", PredictionError)
        return True

    def undeploy_target(
        self,
        target: str,
        *,
        deployed_model_id: str | None = None,
        delete_endpoint: bool | None = None,
    ) -> Undeployment:
        """Undeploy a model (:class:`~redditvision.backends.Deployer`).

        Args:
            target: ``projects/P/locations/L/models/M``.
            deployed_model_id: Ignored (AutoML v1 deploys the model in place).
            delete_endpoint: Ignored (AutoML v1 has no endpoints).

        Returns:
            ``undeployed`` holds the model name when it was deployed.

        Raises:
            ConfigError: ``target`` is not a model resource name.
            PredictionError: Undeploying failed.
        """
        if "/models/" not in target:
            raise ConfigError(
                f"legacy AutoML undeploys a model (projects/P/locations/L/models/M), got "
                f"{target!r}: pass --model"
            )
        done = self.undeploy(target)
        return Undeployment(backend=SERVICE, target=target, undeployed=(target,) if done else ())

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
            deployed_here = self.deploy(model).deployed
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
