"""Deployment on Vertex AI: endpoints, ``DeployModel`` and ``UndeployModel``, resumed by name.

``EndpointService.CreateEndpoint`` + ``DeployModel`` with automatic resources, recorded in a
state file before waiting (a re-run returns the same deployment instead of a second
endpoint); ``UndeployModel`` and ``DeleteEndpoint`` when done. Implements
:class:`~redditvision.backends.Deployer`.
"""

from __future__ import annotations

from google.cloud import aiplatform_v1 as aip

from redditvision.backends._lro import is_operation
from redditvision.backends._protocol import Deployment, Undeployment
from redditvision.backends._state import RunState
from redditvision.backends.vertex._client import VertexClient
from redditvision.backends.vertex._limits import RUN_LABEL, SERVICE
from redditvision.backends.vertex._training import resource_id
from redditvision.errors import ConfigError, PredictionError
from redditvision.models import TrainedModel

__all__ = ["DeploymentMixin", "VertexDeployment"]

VertexDeployment = Deployment
"""A model deployed to a Vertex AI endpoint: the shared
:class:`~redditvision.backends.Deployment` (``endpoint`` and ``deployed_model_id`` set)."""


class DeploymentMixin(VertexClient):
    """Deployment methods of :class:`~redditvision.backends.vertex.VertexAutoMLBackend`."""

    def _deploy_state(self, model: str) -> RunState:
        return RunState.for_run(
            self.state_dir, SERVICE, self.project, self.location, "deploy", model
        )

    def deploy(
        self,
        model: TrainedModel | str,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
    ) -> Deployment:
        """Create an endpoint and deploy ``model`` to it with automatic resources.

        Resumable like training: the endpoint and deploy operation names are recorded, so
        running it again returns the same deployment instead of a second endpoint.

        Args:
            model: The model or its resource name.
            min_replicas: Replicas always up (default 1; each is billed per node
                hour).
            max_replicas: Upper bound of autoscaling (default: ``min_replicas``).

        Returns:
            The deployment (``created_endpoint`` is True).

        Raises:
            PredictionError: The model does not exist, or the deploy failed (server's
                message).
        """
        resource = model.resource if isinstance(model, TrainedModel) else model
        min_replica_count = min_replicas or 1
        max_replica_count = max(max_replicas or min_replica_count, min_replica_count)
        self._rpc(
            self.model_client.get_model,
            f"deploying model {resource}",
            error=PredictionError,
            retry=self.retry,
            request={"name": resource},
        )
        state = self._deploy_state(resource)
        run_id = state.path.stem.rsplit("-", 1)[-1]
        display = f"redditvision-{resource_id(resource)}"

        def send_endpoint() -> str:
            future = self._rpc(
                self.endpoint_client.create_endpoint,
                f"creating an endpoint for {resource}",
                error=PredictionError,
                request=aip.CreateEndpointRequest(
                    parent=self.parent,
                    endpoint=aip.Endpoint(display_name=display, labels={RUN_LABEL: run_id}),
                ),
            )
            return str(future.operation.name)

        endpoint = self._create_once(
            state,
            "endpoint",
            send_endpoint,
            lambda: self._find_labelled(
                self.endpoint_client.list_endpoints, "endpoint", run_id, error=PredictionError
            ),
            error=PredictionError,
        )
        if is_operation(endpoint):
            operation = self._wait_operation(
                self.endpoint_client, endpoint, "endpoint", error=PredictionError, state=state
            )
            endpoint = str(aip.Endpoint.deserialize(operation.response.value).name)
            state.set("endpoint", endpoint)

        def send_deploy() -> str:
            deployed = aip.DeployedModel(
                model=resource,
                display_name=display,
                automatic_resources=aip.AutomaticResources(
                    min_replica_count=min_replica_count, max_replica_count=max_replica_count
                ),
            )
            future = self._rpc(
                self.endpoint_client.deploy_model,
                f"deploying {resource} to {endpoint}",
                error=PredictionError,
                request=aip.DeployModelRequest(
                    endpoint=endpoint, deployed_model=deployed, traffic_split={"0": 100}
                ),
            )
            return str(future.operation.name)

        def find_deployed() -> str | None:
            current = self._rpc(
                self.endpoint_client.get_endpoint,
                f"reading endpoint {endpoint}",
                error=PredictionError,
                retry=self.retry,
                request={"name": endpoint},
            )
            for deployed in current.deployed_models:
                if deployed.model == resource:
                    return str(deployed.id)
            return None

        deployed_id = self._create_once(
            state, "deploy", send_deploy, find_deployed, error=PredictionError
        )
        if is_operation(deployed_id):
            operation = self._wait_operation(
                self.endpoint_client, deployed_id, "deploy", error=PredictionError, state=state
            )
            response = aip.DeployModelResponse.deserialize(operation.response.value)
            deployed_id = str(response.deployed_model.id)
            state.set("deploy", deployed_id)
        return Deployment(
            backend=SERVICE,
            endpoint=endpoint,
            deployed_model_id=deployed_id,
            model=resource,
            created_endpoint=True,
        )

    def undeploy(self, deployment: Deployment, *, delete_endpoint: bool | None = None) -> None:
        """Undeploy a deployed model and, when this backend created it, delete the endpoint.

        Args:
            deployment: What :meth:`deploy` returned (or one built from an endpoint name and
                deployed model id).
            delete_endpoint: Delete the endpoint afterwards (default
                ``deployment.created_endpoint``).

        Raises:
            PredictionError: The service refused (the message names the endpoint, which
                may still be billed). An endpoint that no longer exists is not an error:
                there is nothing left to undeploy.
            ConfigError: The deployment names no endpoint.
        """
        if deployment.endpoint is None:
            raise ConfigError(f"a Vertex AI deployment names an endpoint; got {deployment!r}")
        try:
            endpoint = self._rpc(
                self.endpoint_client.get_endpoint,
                f"reading endpoint {deployment.endpoint}",
                error=PredictionError,
                retry=self.retry,
                request={"name": deployment.endpoint},
            )
        except PredictionError as exc:
            if exc.status != "NOT_FOUND":
                raise
            self._report("undeploy", f"{deployment.endpoint} no longer exists")
            if deployment.model:
                self._deploy_state(deployment.model).clear()
            return
        if any(d.id == deployment.deployed_model_id for d in endpoint.deployed_models):
            future = self._rpc(
                self.endpoint_client.undeploy_model,
                f"undeploying {deployment.deployed_model_id} from {deployment.endpoint}",
                error=PredictionError,
                request=aip.UndeployModelRequest(
                    endpoint=deployment.endpoint,
                    deployed_model_id=deployment.deployed_model_id,
                ),
            )
            self._wait_operation(
                self.endpoint_client, future.operation.name, "undeploy", error=PredictionError
            )
            self._report("undeploy", f"undeployed {deployment.deployed_model_id}")
        delete = deployment.created_endpoint if delete_endpoint is None else delete_endpoint
        if delete:
            future = self._rpc(
                self.endpoint_client.delete_endpoint,
                f"deleting endpoint {deployment.endpoint}",
                error=PredictionError,
                request={"name": deployment.endpoint},
            )
            self._wait_operation(
                self.endpoint_client, future.operation.name, "delete", error=PredictionError
            )
            self._report("undeploy", f"deleted {deployment.endpoint}")
        if deployment.model:
            self._deploy_state(deployment.model).clear()

    def undeploy_endpoint(
        self,
        endpoint: str,
        *,
        deployed_model_id: str | None = None,
        delete_endpoint: bool | None = None,
    ) -> tuple[list[Deployment], bool]:
        """Undeploy one or every model of an endpoint, and delete it when asked.

        Args:
            endpoint: ``projects/P/locations/L/endpoints/E``.
            deployed_model_id: The deployed model to take down, or None for all of them.
            delete_endpoint: Delete the endpoint once empty; default: when it carries the
                ``redditvision-run`` label (:meth:`deploy` created it).

        Returns:
            The deployments taken down, and whether the endpoint was deleted.

        Raises:
            PredictionError: The endpoint or deployed model does not exist, or the service
                refused.
        """
        current = self._rpc(
            self.endpoint_client.get_endpoint,
            f"reading endpoint {endpoint}",
            error=PredictionError,
            retry=self.retry,
            request={"name": endpoint},
        )
        targets = [
            d
            for d in current.deployed_models
            if deployed_model_id is None or d.id == deployed_model_id
        ]
        if deployed_model_id is not None and not targets:
            raise PredictionError(
                f"endpoint {endpoint} has no deployed model {deployed_model_id}; deployed: "
                f"{', '.join(d.id for d in current.deployed_models) or 'none'}",
                service=SERVICE,
                status="NOT_FOUND",
            )
        done = []
        for deployed in targets:
            deployment = Deployment(
                backend=SERVICE,
                endpoint=endpoint,
                deployed_model_id=str(deployed.id),
                model=str(deployed.model),
            )
            self.undeploy(deployment, delete_endpoint=False)
            done.append(deployment)
        left = len(current.deployed_models) - len(targets)
        delete = RUN_LABEL in current.labels if delete_endpoint is None else delete_endpoint
        deleted = False
        if delete and left == 0:
            future = self._rpc(
                self.endpoint_client.delete_endpoint,
                f"deleting endpoint {endpoint}",
                error=PredictionError,
                request={"name": endpoint},
            )
            self._wait_operation(
                self.endpoint_client, future.operation.name, "delete", error=PredictionError
            )
            deleted = True
        return done, deleted

    def undeploy_target(
        self,
        target: str,
        *,
        deployed_model_id: str | None = None,
        delete_endpoint: bool | None = None,
    ) -> Undeployment:
        """Undeploy one or every model of an endpoint (:class:`~redditvision.backends.Deployer`).

        Args:
            target: ``projects/P/locations/L/endpoints/E``.
            deployed_model_id: The deployed model to take down, or None for all of them.
            delete_endpoint: Delete the endpoint once empty; default: when :meth:`deploy`
                created it (it carries the ``redditvision-run`` label).

        Returns:
            The deployed model ids taken down, and whether the endpoint was deleted.

        Raises:
            ConfigError: ``target`` is not an endpoint resource name.
            PredictionError: The endpoint or deployed model does not exist, or the service
                refused.
        """
        if "/endpoints/" not in target:
            raise ConfigError(
                f"Vertex AI undeploys from an endpoint (projects/P/locations/L/endpoints/E), "
                f"got {target!r}: pass --endpoint"
            )
        done, deleted = self.undeploy_endpoint(
            target, deployed_model_id=deployed_model_id, delete_endpoint=delete_endpoint
        )
        return Undeployment(
            backend=SERVICE,
            target=target,
            undeployed=tuple(d.deployed_model_id or "" for d in done),
            endpoint_deleted=deleted,
        )
