"""Legacy AutoML v1 (``google.cloud.automl_v1``) behind :class:`~redditvision.AutoMLTrainer`.

.. warning::

   Google shut the legacy AutoML API down for Vision (AutoML Vision image classification)
   on 2024-03-31. Its successor is AutoML image classification in Vertex AI:
   use :class:`~redditvision.backends.vertex.VertexAutoMLBackend` for new work. This
   backend is kept for projects that still hold AutoML v1 resources, for other AutoML v1
   deployments that speak the same API, and because the design names it; every
   construction warns with :class:`AutoMLShutdownWarning`.

One module per concern: ``_limits`` (limits, import format, model types, display names;
no Google client imported), ``_client`` (clients, ``from_env``/``from_options``, RPC and
polling plumbing), ``_backend`` (dataset, import, training, evaluation, clean-up),
``_deployment`` (deploy, undeploy, the predictor), ``_evaluation`` (``ModelEvaluation``
messages as an :class:`~redditvision.models.Evaluation`).

Every create (dataset, import, model, deploy) records its operation name in a state file
(:mod:`redditvision.backends._state`) before waiting, through the shared
:func:`~redditvision.backends._lro.create_once`; a re-run resumes polling it. A create
whose answer was lost is looked up by display name and among the location's operations,
never re-sent blindly. Reads are retried with :data:`DEFAULT_AUTOML_RETRY`; operations are
polled with :data:`DEFAULT_AUTOML_POLL`. The public names are imported on first use, so
importing this package loads no Google client.
"""

import typing as _typing

from redditvision._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from redditvision.backends.automl._backend import (
        LegacyAutoMLBackend as LegacyAutoMLBackend,
    )
    from redditvision.backends.automl._client import (
        DEFAULT_AUTOML_POLL as DEFAULT_AUTOML_POLL,
    )
    from redditvision.backends.automl._client import (
        DEFAULT_AUTOML_RETRY as DEFAULT_AUTOML_RETRY,
    )
    from redditvision.backends.automl._deployment import (
        LegacyAutoMLPredictor as LegacyAutoMLPredictor,
    )
    from redditvision.backends.automl._evaluation import (
        evaluation_from_automl as evaluation_from_automl,
    )
    from redditvision.backends.automl._limits import (
        AUTOML_SHUTDOWN_NOTICE as AUTOML_SHUTDOWN_NOTICE,
    )
    from redditvision.backends.automl._limits import (
        IMPORT_FORMATS as IMPORT_FORMATS,
    )
    from redditvision.backends.automl._limits import (
        LIMITS as LIMITS,
    )
    from redditvision.backends.automl._limits import (
        MAX_PREDICT_IMAGE_BYTES as MAX_PREDICT_IMAGE_BYTES,
    )
    from redditvision.backends.automl._limits import (
        MODEL_TYPE_BUDGETS as MODEL_TYPE_BUDGETS,
    )
    from redditvision.backends.automl._limits import (
        AutoMLShutdownWarning as AutoMLShutdownWarning,
    )
    from redditvision.backends.automl._limits import (
        automl_display_name as automl_display_name,
    )
    from redditvision.backends.automl._limits import (
        normalize_model_type as normalize_model_type,
    )

_LIMITS = "redditvision.backends.automl._limits"
_EXPORTS = {
    "AUTOML_SHUTDOWN_NOTICE": _LIMITS,
    "DEFAULT_AUTOML_POLL": "redditvision.backends.automl._client",
    "DEFAULT_AUTOML_RETRY": "redditvision.backends.automl._client",
    "IMPORT_FORMATS": _LIMITS,
    "LIMITS": _LIMITS,
    "MAX_PREDICT_IMAGE_BYTES": _LIMITS,
    "MODEL_TYPE_BUDGETS": _LIMITS,
    "AutoMLShutdownWarning": _LIMITS,
    "LegacyAutoMLBackend": "redditvision.backends.automl._backend",
    "LegacyAutoMLPredictor": "redditvision.backends.automl._deployment",
    "automl_display_name": _LIMITS,
    "evaluation_from_automl": "redditvision.backends.automl._evaluation",
    "normalize_model_type": _LIMITS,
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
