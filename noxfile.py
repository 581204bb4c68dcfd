"""Developer sessions: ``nox -s tests slow lint typecheck docs benchmarks``.

``tests`` (the default) runs every test not marked ``slow``; ``slow`` runs the acceptance
tests that train real models or run the whole job (``@pytest.mark.slow``). CI (``.ci/run``)
runs both, with ``CI=true`` so that a skipped test fails the run.

The sessions that need the package run in one shared virtual environment, ``.nox/dev``,
built by the ``dev`` session from ``requirements-dev.txt`` (which pins the CPU build of
torch), so torch and the Google clients are installed once, not once per session.
"""

from __future__ import annotations

import os
import sys

import nox

nox.options.sessions = ["lint", "typecheck", "docs", "tests"]
nox.options.reuse_venv = "yes"

_BIN = "Scripts" if sys.platform == "win32" else "bin"
DEV_BIN = os.path.join(".nox", "dev", _BIN)
TORCH_CPU = "torch==2.13.0"  # resolves to the 2.13.0+cpu wheel on this project's machines


def _dev(session: nox.Session, tool: str, *args: str) -> None:
    session.run(os.path.join(DEV_BIN, tool), *args, external=True)


@nox.session(python=False)
def dev(session: nox.Session) -> None:
    """Create or update the shared environment .nox/dev with every dependency."""
    if not os.path.exists(os.path.join(DEV_BIN, "python")):
        session.run(sys.executable, "-m", "venv", os.path.join(".nox", "dev"))
    _dev(session, "python", "-m", "pip", "install", "-q", "-U", "pip")
    # The CPU build of torch first, explicitly: left to the resolver, the `local` extra's
    # torch requirement could pull a multi-GB CUDA build.
    _dev(session, "python", "-m", "pip", "install", "-q", TORCH_CPU)
    _dev(session, "python", "-m", "pip", "install", "-q", "-r", "requirements-dev.txt")


@nox.session(python=False, requires=["dev"])
def tests(session: nox.Session) -> None:
    """Run the fast tests (pytest, every test not marked ``slow``)."""
    _dev(session, "python", "-m", "pytest", "-m", "not slow", *session.posargs)


@nox.session(python=False, requires=["dev"])
def slow(session: nox.Session) -> None:
    """Run the slow acceptance tests (marked ``slow``: real training, the whole job)."""
    _dev(session, "python", "-m", "pytest", "-m", "slow", *session.posargs)


@nox.session(python=False, requires=["dev"])
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    paths = ["src", "tests", "examples", "benchmarks", "noxfile.py", "docs/conf.py"]
    _dev(session, "ruff", "check", *paths)
    _dev(session, "ruff", "format", "--check", *paths)


@nox.session(python=False, requires=["dev"])
def typecheck(session: nox.Session) -> None:
    """Check types with mypy --strict over the package and the public-API typing test."""
    _dev(session, "mypy", "--strict", "src/redditvision", "tests/typing")


@nox.session(python=False, requires=["dev"])
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs with warnings as errors."""
    _dev(
        session,
        "sphinx-build",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
    )


@nox.session(python=False, requires=["dev"])
def benchmarks(session: nox.Session) -> None:
    """Run every benchmark and write the table into docs/performance.rst."""
    _dev(session, "python", "-m", "benchmarks", *session.posargs)
