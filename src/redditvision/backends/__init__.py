"""Training and prediction backends: one protocol, one registry.

Every backend implements :class:`Backend` (train, evaluate, open a predictor, close) and is
registered under a name with :func:`register_backend`; the command line, the pipeline,
Beam and :class:`~redditvision.Classifier` look it up with :func:`get_backend` and build it
with :func:`build_backend` from the shared :class:`BackendOptions`. Backends whose models
are deployed before online prediction also implement :class:`Deployer`, whose one result
type is :class:`Deployment`.

Built in: ``local`` trains on this machine, ``vertex`` on Vertex AI AutoML, and ``automl``
on legacy AutoML v1 (shut down by Google for Vision on 2024-03-31). The names here are
imported on first use: importing this package loads no cloud client.
"""

import typing as _typing

from redditvision._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from redditvision.backends._protocol import (
        Backend as Backend,
    )
    from redditvision.backends._protocol import (
        BackendOptions as BackendOptions,
    )
    from redditvision.backends._protocol import (
        Deployer as Deployer,
    )
    from redditvision.backends._protocol import (
        Deployment as Deployment,
    )
    from redditvision.backends._protocol import (
        PredictionBackend as PredictionBackend,
    )
    from redditvision.backends._protocol import (
        Predictor as Predictor,
    )
    from redditvision.backends._protocol import (
        TargetLimits as TargetLimits,
    )
    from redditvision.backends._protocol import (
        TrainingBackend as TrainingBackend,
    )
    from redditvision.backends._protocol import (
        Undeployment as Undeployment,
    )
    from redditvision.backends._registry import (
        BackendSpec as BackendSpec,
    )
    from redditvision.backends._registry import (
        backend_names as backend_names,
    )
    from redditvision.backends._registry import (
        build_backend as build_backend,
    )
    from redditvision.backends._registry import (
        folder_backend as folder_backend,
    )
    from redditvision.backends._registry import (
        get_backend as get_backend,
    )
    from redditvision.backends._registry import (
        register_backend as register_backend,
    )
    from redditvision.backends._registry import (
        unregister_backend as unregister_backend,
    )

_PROTOCOL = "redditvision.backends._protocol"
_REGISTRY = "redditvision.backends._registry"
_EXPORTS = {
    "Backend": _PROTOCOL,
    "BackendOptions": _PROTOCOL,
    "BackendSpec": _REGISTRY,
    "Deployer": _PROTOCOL,
    "Deployment": _PROTOCOL,
    "PredictionBackend": _PROTOCOL,
    "Predictor": _PROTOCOL,
    "TargetLimits": _PROTOCOL,
    "TrainingBackend": _PROTOCOL,
    "Undeployment": _PROTOCOL,
    "backend_names": _REGISTRY,
    "build_backend": _REGISTRY,
    "folder_backend": _REGISTRY,
    "get_backend": _REGISTRY,
    "register_backend": _REGISTRY,
    "unregister_backend": _REGISTRY,
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
