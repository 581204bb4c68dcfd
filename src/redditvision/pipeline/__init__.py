"""The main job as one function, from a subreddit (or saved data) to a model and a report.

The steps, in order (:data:`STEPS`): collect → download → label (and split) → audit →
write → train → evaluate → compare (with ``[model] path``: collect → download → classify).

:func:`run` composes the public clients from a frozen :class:`RunConfig` (read from a TOML
file with :meth:`RunConfig.from_toml`; the schema lives in
:mod:`redditvision.pipeline.config`). It walks :data:`STEPS`, one function per step
(:mod:`redditvision.pipeline.steps`); every step's outputs and a fingerprint of its inputs
go into ``run-state.json``, so a re-run executes no step whose inputs are unchanged. Steps
that are interrupted resume by themselves: downloads from the manifest, uploads by
checksum, cloud training from its state file.

Defaults need no cloud account: the local dataset writer, the local backend and the offline
ImageNet labeler.
"""

from __future__ import annotations

from redditvision.pipeline._context import (
    ProgressCallback,
    RunClients,
    RunResult,
    StepCallback,
    StepContext,
    StepResult,
)
from redditvision.pipeline._runner import run
from redditvision.pipeline.config import (
    AuditConfig,
    BackendConfig,
    CompareConfig,
    DownloadConfig,
    LabelConfig,
    RunConfig,
    SourceConfig,
    SplitConfig,
    WriterConfig,
)
from redditvision.pipeline.steps import STEPS, Step

__all__ = [
    "STEPS",
    "AuditConfig",
    "BackendConfig",
    "CompareConfig",
    "DownloadConfig",
    "LabelConfig",
    "ProgressCallback",
    "RunClients",
    "RunConfig",
    "RunResult",
    "SourceConfig",
    "SplitConfig",
    "Step",
    "StepCallback",
    "StepContext",
    "StepResult",
    "WriterConfig",
    "run",
]
