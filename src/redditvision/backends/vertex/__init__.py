"""Vertex AI AutoML image classification behind ``AutoMLTrainer`` and ``Classifier``.

:class:`VertexAutoMLBackend` drives the GAPIC clients of ``google.cloud.aiplatform_v1``,
one module per concern:

* ``_limits`` - schema URIs, training limits, import formats, model types and budgets, the
  1.5 MB online limit (no Google client imported);
* ``_client`` - the clients, :meth:`VertexAutoMLBackend.from_env` and ``from_options``,
  the RPC helper (retry around ``retry=None`` calls, errors through
  :func:`~redditvision._google.map_google_errors`);
* ``_training`` - ``CreateDataset``, ``ImportData``, ``CreateTrainingPipeline`` with a
  filter split on the ``aiplatform.googleapis.com/ml_use`` label, and polling
  ``GetTrainingPipeline`` (it is not a long-running operation);
* ``_evaluation`` - ``ListModelEvaluations`` and ``ListModelEvaluationSlices`` as the
  shared :class:`~redditvision.models.Evaluation`;
* ``_deployment`` - ``CreateEndpoint``, ``DeployModel``, ``UndeployModel``,
  ``DeleteEndpoint`` (the :class:`~redditvision.backends.Deployer` protocol);
* ``_prediction`` - ``Predict`` with base64 ``content`` under the 1.5 MB online limit;
* ``_batch`` - ``CreateBatchPredictionJob`` over a JSONL instances file.

Resume instead of repeat: every create records the resource or operation name in a
:class:`~redditvision.backends._state.RunState` file before waiting, and labels the resource
with ``redditvision-run=<run id>``; a re-run resumes polling the recorded name, and a create
whose answer was lost is looked up by that label instead of being sent again
(:mod:`redditvision.backends._lro`). Creates are never retried blindly; idempotent reads are
retried with :data:`DEFAULT_RETRY`; polling uses :data:`DEFAULT_POLL`.

The public names are imported on first use, so importing this package loads no Google
client (the registry reads :data:`LIMITS` from ``_limits``).

Sources: Vertex AI docs "Prepare image training data" (import file, ML_USE, limits), the
``AutoMlImageClassificationInputs`` reference (model types and budget ranges), "Get online
predictions from an AutoML image model" (1.5 MB limit, parameters).
"""

import typing as _typing

from redditvision._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from redditvision.backends._lro import (
        DEFAULT_POLL as DEFAULT_POLL,
    )
    from redditvision.backends.vertex._backend import (
        VertexAutoMLBackend as VertexAutoMLBackend,
    )
    from redditvision.backends.vertex._batch import (
        VertexBatchPrediction as VertexBatchPrediction,
    )
    from redditvision.backends.vertex._client import (
        DEFAULT_RETRY as DEFAULT_RETRY,
    )
    from redditvision.backends.vertex._deployment import (
        VertexDeployment as VertexDeployment,
    )
    from redditvision.backends.vertex._evaluation import (
        evaluation_from_metrics as evaluation_from_metrics,
    )
    from redditvision.backends.vertex._limits import (
        AUTOML_IMAGE_CLASSIFICATION_DEFINITION as AUTOML_IMAGE_CLASSIFICATION_DEFINITION,
    )
    from redditvision.backends.vertex._limits import (
        IMAGE_DATASET_METADATA_SCHEMA as IMAGE_DATASET_METADATA_SCHEMA,
    )
    from redditvision.backends.vertex._limits import (
        IMAGE_SINGLE_LABEL_IMPORT_SCHEMA as IMAGE_SINGLE_LABEL_IMPORT_SCHEMA,
    )
    from redditvision.backends.vertex._limits import (
        IMPORT_FORMATS as IMPORT_FORMATS,
    )
    from redditvision.backends.vertex._limits import (
        LIMITS as LIMITS,
    )
    from redditvision.backends.vertex._limits import (
        ML_USE_LABEL as ML_USE_LABEL,
    )
    from redditvision.backends.vertex._limits import (
        MODEL_TYPE_BUDGETS as MODEL_TYPE_BUDGETS,
    )
    from redditvision.backends.vertex._limits import (
        ONLINE_PREDICTION_LIMIT_BYTES as ONLINE_PREDICTION_LIMIT_BYTES,
    )
    from redditvision.backends.vertex._limits import (
        RUN_LABEL as RUN_LABEL,
    )
    from redditvision.backends.vertex._limits import (
        batch_instances as batch_instances,
    )
    from redditvision.backends.vertex._limits import (
        image_uris_from_import_csv as image_uris_from_import_csv,
    )
    from redditvision.backends.vertex._limits import (
        normalize_model_type as normalize_model_type,
    )
    from redditvision.backends.vertex._prediction import (
        VertexPredictor as VertexPredictor,
    )
    from redditvision.backends.vertex._prediction import (
        fit_online_limit as fit_online_limit,
    )

_LIMITS = "redditvision.backends.vertex._limits"
_EXPORTS = {
    "AUTOML_IMAGE_CLASSIFICATION_DEFINITION": _LIMITS,
    "DEFAULT_POLL": "redditvision.backends._lro",
    "DEFAULT_RETRY": "redditvision.backends.vertex._client",
    "IMAGE_DATASET_METADATA_SCHEMA": _LIMITS,
    "IMAGE_SINGLE_LABEL_IMPORT_SCHEMA": _LIMITS,
    "IMPORT_FORMATS": _LIMITS,
    "LIMITS": _LIMITS,
    "ML_USE_LABEL": _LIMITS,
    "MODEL_TYPE_BUDGETS": _LIMITS,
    "ONLINE_PREDICTION_LIMIT_BYTES": _LIMITS,
    "RUN_LABEL": _LIMITS,
    "VertexAutoMLBackend": "redditvision.backends.vertex._backend",
    "VertexBatchPrediction": "redditvision.backends.vertex._batch",
    "VertexDeployment": "redditvision.backends.vertex._deployment",
    "VertexPredictor": "redditvision.backends.vertex._prediction",
    "batch_instances": _LIMITS,
    "evaluation_from_metrics": "redditvision.backends.vertex._evaluation",
    "fit_online_limit": "redditvision.backends.vertex._prediction",
    "image_uris_from_import_csv": _LIMITS,
    "normalize_model_type": _LIMITS,
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
