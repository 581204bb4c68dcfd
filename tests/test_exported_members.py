"""The public surface is exactly what ``redditvision.__all__`` lists."""

from __future__ import annotations

import importlib.metadata

import redditvision


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {name for name in dir(redditvision) if not name.startswith("_")}
    # Submodules are importable but are not names of the API surface.
    modules = {name for name in public if type(getattr(redditvision, name)).__name__ == "module"}
    assert set(redditvision.__all__) - {"__version__"} == public - modules


def test_all_has_no_duplicates() -> None:
    # ruff (RUF022) keeps the list sorted; duplicates would hide a removed name.
    assert len(redditvision.__all__) == len(set(redditvision.__all__))


def test_every_exported_name_has_a_docstring() -> None:
    for name in redditvision.__all__:
        obj = getattr(redditvision, name)
        if name in {"__version__", "DEFAULT"}:
            continue
        assert (obj.__doc__ or "").strip(), name


def test_version_comes_from_package_metadata() -> None:
    assert redditvision.__version__ == importlib.metadata.version("redditvision")
