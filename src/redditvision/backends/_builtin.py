"""The backends that come with redditvision: one registry line each.

Imported by the registry on first use (not at import time), so that the backend packages
can use the registry themselves without an import cycle; the factories are strings, so no
cloud client is imported until a cloud backend is built.
"""

from __future__ import annotations

from redditvision.backends._registry import register_backend
from redditvision.backends.automl import _limits as automl
from redditvision.backends.local import _limits as local
from redditvision.backends.vertex import _limits as vertex

__all__: list[str] = []

# fmt: off
register_backend("local", "redditvision.backends.local._factory:from_options", limits=local.LIMITS, import_formats=local.IMPORT_FORMATS, data="dataset", model_kind="folder", summary="this machine, offline (the [local] extra)")  # noqa: E501
register_backend("vertex", "redditvision.backends.vertex._backend:VertexAutoMLBackend.from_options", limits=vertex.LIMITS, import_formats=vertex.IMPORT_FORMATS, data="location", model_kind="resource", deploys=True, needs_options=True, summary="Vertex AI AutoML image classification")  # noqa: E501
register_backend("automl", "redditvision.backends.automl._backend:LegacyAutoMLBackend.from_options", limits=automl.LIMITS, import_formats=automl.IMPORT_FORMATS, data="location", model_kind="resource", deploys=True, needs_options=True, summary="legacy AutoML v1 (shut down for Vision on 2024-03-31)")  # noqa: E501
# fmt: on
