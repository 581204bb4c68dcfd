"""Sphinx configuration for the redditvision docs (built with warnings as errors)."""

from __future__ import annotations

from importlib.metadata import version as _version

project = "redditvision"
author = "redditvision developers"
copyright = "2026, redditvision developers"
release = _version("redditvision")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_click",
]

html_theme = "furo"
html_title = f"redditvision {release}"
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
suppress_warnings = ["ref.python"]
# CLI help text holds `--option` and `command`: keep "--" as typed (no en dash) and render
# single backticks as code, not italics.
smartquotes = False
default_role = "literal"

try:  # the [beam] extra is optional: document redditvision.beam without Apache Beam
    import apache_beam  # noqa: F401
except ImportError:
    autodoc_mock_imports = ["apache_beam"]
