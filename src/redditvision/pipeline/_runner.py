""":func:`run`: walk the ordered steps, reusing what an earlier run finished."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from redditvision.backends._state import RunState
from redditvision.errors import ConfigError
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


def _walk(ctx: StepContext, state: RunState, steps: Sequence[Step]) -> list[StepResult]:
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
    return results


def check_inputs(config: RunConfig) -> None:
    """Check that every input file and folder the config names exists.

    Args:
        config: The run's config.

    Raises:
        ConfigError: A listing, dump, image folder, rules file, label map or CSV is
            missing; the message names the source and the path.
    """
    names = config.source_names()
    several = len(names) > 1
    for number, (name, source) in enumerate(zip(names, config.sources, strict=True), start=1):
        where = f"[[source]] #{number} ({name})" if several else "[source]"
        labels = config.labels_for(source)
        section = where if source.own_labels() is not None else "[labels]"
        wanted: list[tuple[str, Path, bool]] = [
            *((f"{where} listings", path, False) for path in source.listings),
            *((f"{where} dumps", path, False) for path in source.dumps),
        ]
        if source.images is not None:
            wanted.append((f"{where} images", source.images, True))
        for key in ("rules", "label_map", "csv"):
            path = getattr(labels, key)
            if path is not None:
                wanted.append((f"{section} {key}", path, False))
        for what, path, folder in wanted:
            if folder and not path.is_dir():
                raise ConfigError(
                    f"{what}: folder {path} does not exist; pass a folder of label folders"
                )
            if not folder and not path.is_file():
                raise ConfigError(f"{what}: file {path} does not exist; check the path")


def _missing_parents(folder: Path) -> Path | None:
    """The outermost folder of ``folder`` and its parents that does not exist yet, or None."""
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _remove_empty(created: Path | None) -> None:
    """Remove ``created`` (made by this run) when no file was written under it."""
    if created is None or not created.is_dir():
        return
    if any(path.is_file() or path.is_symlink() for path in created.rglob("*")):
        return
    shutil.rmtree(created, ignore_errors=True)


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
        ConfigError: An input file or folder is missing (checked before the first
            step), or ``run-state.json`` exists but is not a state file (move it away to
            start afresh).
        MissingDependencyError: The backend's extra is not installed (checked before
            the first step: the local backend needs ``pip install 'redditvision[local]'``).
        RedditVisionError: A step failed (its subclass says which kind); what finished
            before stays in the output folder for the re-run. A run that fails before
            writing any file removes the output folder it created.
    """
    ctx = StepContext(
        config=config,
        clients=clients or RunClients(),
        say=on_step or (lambda _step, _message: None),
        progress=on_progress or (lambda _step, _done, _total: None),
    )
    check_inputs(config)
    output = config.output
    created = _missing_parents(output)
    try:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the output folder {output}: {exc.strerror or exc}; pass a "
                "writable folder"
            ) from exc
        state = RunState(output / "run-state.json")
        # Build the backend before the first step: a missing extra (torch for the local
        # backend, the Google clients for a cloud one) or missing credentials stop the
        # run here, not after collecting and downloading.
        ctx.backend()
        results = _walk(ctx, state, steps)
    except BaseException:
        _remove_empty(created)
        raise
    if config.model.path is not None:
        downloaded = ctx.outputs.get("download", {}).get("sources", {})
        collected = ctx.outputs.get("collect", {}).get("sources", {})
        return RunResult(
            output=output,
            steps=tuple(results),
            classified=ctx.outputs["classify"],
            sources={
                name: {"posts": collected[name]["posts"], "records": downloaded.get(name, {})}
                for name in config.source_names()
                if name in collected
            },
        )
    compared = ctx.outputs.get("compare")
    # In config order (the recorded outputs of a reused step come back with sorted keys).
    labeled = ctx.outputs["label"]["sources"]
    sources = {name: dict(labeled[name]) for name in config.source_names()}
    collected = ctx.outputs.get("collect", {}).get("sources", {})
    downloaded = ctx.outputs.get("download", {}).get("sources", {})
    for name, counts in sources.items():
        if name in collected:
            counts["posts"] = collected[name]["posts"]
            counts["records"] = downloaded.get(name, {})
    return RunResult(
        output=output,
        steps=tuple(results),
        dataset=ctx.location(),
        model=ctx.model(),
        evaluation=ctx.evaluation(),
        report_html=None if compared is None else Path(compared["report_html"]),
        comparison=None if compared is None else compared["summary"],
        audit=ctx.outputs.get("audit"),
        sources=sources,
    )
