"""The whole job on this machine, from Python: the same as ``redditvision run CONFIG``.

Reads a run config (``examples/bmw-local.toml`` by default), runs collect → download →
label → split → write → train → evaluate → compare with the local backend and offline
generic labels (no account), and prints each step and the evaluation. A second run reuses
every finished step::

    python examples/local_run.py examples/bmw-local.toml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from redditvision.pipeline import RunConfig, run

HERE = Path(__file__).resolve().parent


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
    print(f"accuracy {evaluation.accuracy}, macro F1 {evaluation.macro_f1:.3f}")
    print(f"report: {result.report_html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
