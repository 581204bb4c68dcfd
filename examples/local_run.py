"""The whole job on this machine, from Python: the same as ``redditvision run CONFIG``.

Reads a run config (``examples/bmw-local.toml`` by default), runs collect → download →
label → split → write → train → evaluate → compare with the local backend and offline
generic labels (no account), and prints each step and the evaluation. A second run reuses
every finished step::

    python examples/local_run.py examples/bmw-local.toml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from redditvision import RedditVisionError
from redditvision.pipeline import RunConfig, run

HERE = Path(__file__).resolve().parent


def shown(path: Path) -> str:
    """``path`` without ``..``: relative to the working directory when inside it."""
    resolved = path.resolve()
    return str(
        resolved.relative_to(Path.cwd()) if resolved.is_relative_to(Path.cwd()) else resolved
    )


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, nargs="?", default=HERE / "bmw-local.toml")
    parser.add_argument("--out", type=Path, help="override the config's output folder")
    args = parser.parse_args(argv)

    config = RunConfig.from_toml(args.config, output=args.out)
    result = run(config, on_step=lambda step, message: print(f"{step:>9} {message}"))
    evaluation = result.evaluation
    for metrics in evaluation.per_label:
        print(
            f"{metrics.label:>12}  P {metrics.precision:.3f}  R {metrics.recall:.3f}",
            f"F1 {metrics.f1:.3f}",
        )
    accuracy = "n/a" if evaluation.accuracy is None else f"{evaluation.accuracy:.3f}"
    print(f"accuracy {accuracy}, macro F1 {evaluation.macro_f1:.3f}")
    if result.report_html is not None:
        print(f"report: {shown(result.report_html)}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except RedditVisionError as exc:  # the library's one root error: one line, as the CLI
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None  # 2: bad input
