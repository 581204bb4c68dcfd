r"""Ask a Vertex AI model about images through online prediction (the seed's REST call).

With ``--endpoint`` the model is already deployed and only predictions are requested.
Otherwise the model is deployed to a new endpoint first and undeployed when the script
ends, so nothing keeps billing by accident. Images over the 1.5 MB online limit are
re-encoded. One JSON line per image, best label first::

    python examples/predict_online.py --project my-project \
        --model projects/my-project/locations/us-central1/models/123 photo1.jpg photo2.jpg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from redditvision import Classifier, RedditVisionError, TrainedModel, VertexAutoMLBackend


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--location", default="us-central1", help="region")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="model resource name (deployed for this run)")
    target.add_argument("--endpoint", help="endpoint resource name with a deployed model")
    parser.add_argument("--threshold", type=float, default=0.0, help="confidenceThreshold")
    parser.add_argument("--top", type=int, default=3, help="maxPredictions")
    parser.add_argument("images", nargs="+", type=Path)
    args = parser.parse_args(argv)

    backend = VertexAutoMLBackend.from_env(project=args.project, location=args.location)
    with backend:
        if args.endpoint:
            for image in args.images:
                answers = backend.predict_endpoint(
                    args.endpoint,
                    image.read_bytes(),
                    confidence_threshold=args.threshold,
                    max_predictions=args.top,
                )
                ranked = [{"label": label, "score": score} for label, score in answers]
                print(json.dumps({"image": str(image), "predictions": ranked}))
            return 0
        model = TrainedModel(backend="vertex", resource=args.model)
        with Classifier(model, backend=backend) as classifier:
            results = classifier.predict_many(
                args.images, confidence_threshold=args.threshold, max_predictions=args.top
            )
        for image, predictions in zip(args.images, results, strict=True):
            rows = [{"label": p.label, "score": round(p.score, 4)} for p in predictions]
            print(json.dumps({"image": str(image), "predictions": rows}))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except RedditVisionError as exc:  # the library's one root error: one line, as the CLI
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None  # 2: bad input
