r"""Serve a local model over Vertex AI's REST shapes and ask it about images, offline.

Starts the server on a free loopback port in the background, then asks it about each image
with ``Classifier.from_endpoint`` - the same client that works against a Vertex AI
endpoint's REST URL - and prints one JSON line per image. ``--forever`` serves in the
foreground instead, until Ctrl-C or SIGTERM (as ``redditvision serve`` does)::

    python examples/serve_model.py --model models/bmw photo1.jpg photo2.jpg
    python examples/serve_model.py --model models/bmw --forever --port 8080
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from redditvision import Classifier, RedditVisionError


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="local model folder")
    parser.add_argument("--forever", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--top", type=int, default=3, help="maxPredictions")
    parser.add_argument("images", nargs="*", type=Path)
    args = parser.parse_args(argv)

    try:
        from redditvision.serve import BackgroundServer, create_app, serve

        with Classifier(args.model) as local:
            if args.forever:
                serve(local, port=args.port or 8080, on_ready=lambda url: print(url, flush=True))
                return 0
            with BackgroundServer(create_app(local), port=args.port) as server:
                while not local_ready(server.url):
                    time.sleep(0.1)
                with Classifier.from_endpoint(server.url) as remote:
                    for image, ranked in zip(
                        args.images,
                        remote.predict_many(args.images, max_predictions=args.top),
                        strict=True,
                    ):
                        rows = [{"label": p.label, "score": round(p.score, 4)} for p in ranked]
                        print(json.dumps({"image": str(image), "predictions": rows}))
    except RedditVisionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


def local_ready(url: str) -> bool:
    """Whether the server at ``url`` has loaded its model (``GET /health`` is 200)."""
    import httpx

    return httpx.get(url + "/health").status_code == 200


if __name__ == "__main__":
    raise SystemExit(main())
