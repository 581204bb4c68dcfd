r"""Train an AutoML image classifier on Vertex AI from an import file in Cloud Storage.

Creates the dataset, imports the file, runs the AutoML training pipeline with your budget
(milli node hours; CLOUD accepts 8,000 to 800,000, about US$3.47 per node hour), waits for it,
and prints the evaluation. Every create is recorded in ``--state`` first: if this script
dies or times out, run it again and it resumes polling the same pipeline instead of paying
for a second one::

    python examples/train_vertex.py --project my-project \
        --import-file gs://my-bucket/redditvision/import.csv --budget 8000

Credentials: Application Default Credentials (``gcloud auth application-default login``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from redditvision import (
    AutoMLTrainer,
    DatasetLocation,
    RedditVisionError,
    TrainingBudget,
    VertexAutoMLBackend,
)


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--location", default="us-central1", help="region")
    parser.add_argument("--import-file", required=True, help="gs://.../import.csv or .jsonl")
    parser.add_argument("--budget", type=int, default=8000, help="milli node hours")
    parser.add_argument("--name", default="redditvision", help="display name")
    parser.add_argument("--state", type=Path, default=Path("build/vertex-state"))
    args = parser.parse_args(argv)

    backend = VertexAutoMLBackend.from_env(
        project=args.project, location=args.location, state_dir=args.state
    )
    budget = TrainingBudget(milli_node_hours=args.budget)
    with AutoMLTrainer(backend=backend, budget=budget) as trainer:
        model = trainer.train(
            DatasetLocation.from_import_file(args.import_file), display_name=args.name
        )
        evaluation = trainer.evaluate(model)
    print(f"model {model.resource}")
    for metrics in evaluation.per_label:
        print(
            f"{metrics.label:>16}  precision {metrics.precision:.3f}  recall {metrics.recall:.3f}"
            f"  auPRC {metrics.au_prc if metrics.au_prc is not None else float('nan'):.3f}"
        )
    print(f"micro auPRC {evaluation.au_prc}, macro F1 {evaluation.macro_f1:.3f}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except RedditVisionError as exc:  # the library's one root error: one line, as the CLI
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None  # 2: bad input
