""":func:`run`: walk the ordered steps, reusing what an earlier run finished."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from redditvision.backends._state import RunState
from redditvision.pipeline._context import (
    ProgressCallback,
    RunClients,
    RunResult,
    StepCallback,
    StepContext,
    StepResult,
)
from redditvision.pipeline.config import RunConfig
from redditvision.pipeline.steps import STEPS, Step, fingerprint

__all__ = ["run"]


def _recorded(state: RunState, step: str, digest: str) -> Mapping[str, Any] | None:
    entry = state.get(step)
    if isinstance(entry, dict) and entry.get("fingerprint") == digest:
        outputs = entry.get("outputs")
        return outputs if isinstance(outputs, dict) else None
    return None


def run(
    config: RunConfig,
    *,
    clients: RunClients | None = None,
    on_step: StepCallback | None = None,
    on_progress: ProgressCallback | None = None,
    steps: Sequence[Step] = STEPS,
) -> RunResult:
    """Run the main job; a re-run resumes and redoes nothing finished.

    Each step's outputs and the fingerprint of its inputs are recorded in
    ``OUTPUT/run-state.json`` (written atomically with ``fsync``); a step whose
    fingerprint matches the recorded one is not executed again: its recorded outputs are
    reused (status ``"reused"``, 0.0 seconds). Each step's inputs include the outputs of
    the step it reads, so a changed step makes every later one run again.

    Args:
        config: What to run.
        clients: Pre-built collaborators (tests, notebooks); None builds them from the
            environment (praw.ini, Application Default Credentials).
        on_step: Called with ``(step, message)`` as steps start and finish.
        on_progress: Called with ``(step, done, total)`` during long steps.
        steps: The steps to walk (default :data:`~redditvision.pipeline.STEPS`).

    Returns:
        The steps' results, the dataset location, the model, its evaluation and the report.

    Raises:
        ConfigError: ``run-state.json`` exists but is not a state file (move it away to
            start afresh).
        RedditVisionError: A step failed (its subclass says which kind); what finished
            before stays in the output folder for the re-run.
    """
    ctx = StepContext(
        config=config,
        clients=clients or RunClients(),
        say=on_step or (lambda _step, _message: None),
        progress=on_progress or (lambda _step, _done, _total: None),
    )
    output = config.output
    output.mkdir(parents=True, exist_ok=True)
    state = RunState(output / "run-state.json")
    results: list[StepResult] = []
    for step in steps:
        if not step.applies(ctx):
            results.append(StepResult(name=step.name, status="skipped", seconds=0.0))
            continue
        digest = fingerprint(step.name, step.inputs(ctx))
        outputs = _recorded(state, step.name, digest)
        if outputs is not None:
            ctx.say(step.name, "reused (finished by an earlier run)")
            results.append(StepResult(name=step.name, status="reused", seconds=0.0, detail=outputs))
        else:
            ctx.say(step.name, "started")
            started = time.perf_counter()
            outputs = dict(step.run(ctx))
            state.set(step.name, {"fingerprint": digest, "outputs": outputs})
            seconds = time.perf_counter() - started
            ctx.say(step.name, f"done in {seconds:.1f} s")
            results.append(
                StepResult(name=step.name, status="ran", seconds=seconds, detail=outputs)
            )
        ctx.outputs[step.name] = outputs
    compared = ctx.outputs.get("compare")
    return RunResult(
        output=output,
        steps=tuple(results),
        dataset=ctx.location(),
        model=ctx.model(),
        evaluation=ctx.evaluation(),
        report_html=None if compared is None else Path(compared["report_html"]),
        comparison=None if compared is None else compared["summary"],
    )
