r"""``python -m redditvision.beam``: the whole job on any Beam runner.

Our options are parsed here; every other argument is a standard Beam pipeline option, so
the same command runs on the DirectRunner (the default) and, with ``--runner
DataflowRunner --project P --region R --temp_location gs://...``, on Dataflow::

    python -m redditvision.beam --listing 'listings/*.json' --model models/bmw \\
        --output out/ --direct_num_workers 2 --direct_running_mode multi_processing
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from redditvision.backends import backend_names, get_backend
from redditvision.beam._compat import require_beam
from redditvision.errors import RedditVisionError

require_beam()

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from redditvision.beam.pipeline import PipelineConfig, build_pipeline  # noqa: E402
from redditvision.reddit import PostFilters  # noqa: E402

__all__ = ["main", "parse_args"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m redditvision.beam",
        description=(
            "Read Reddit submissions, download their images once per URL, deduplicate by "
            "sha256, classify and label them, and write JSON Lines (and BigQuery rows). "
            "Arguments not listed here are Beam pipeline options (--runner, --project, "
            "--region, --temp_location, --direct_num_workers, --setup_file, ...)."
        ),
    )
    source = parser.add_argument_group("input (at least one)")
    source.add_argument(
        "--listing",
        action="append",
        default=[],
        metavar="PATTERN",
        help="saved Reddit listing JSON files (glob, local or gs://); repeatable",
    )
    source.add_argument(
        "--dump",
        action="append",
        default=[],
        metavar="PATTERN",
        help="NDJSON submission dumps (.zst, .gz or plain); repeatable",
    )
    source.add_argument(
        "--subreddit",
        action="append",
        default=[],
        metavar="NAME",
        help="read a subreddit through praw on the workers; repeatable",
    )
    source.add_argument("--sort", default="top", help="subreddit listing sort (default top)")
    source.add_argument("--time-filter", default="all", help="for top/controversial")
    source.add_argument(
        "--limit",
        type=int,
        default=1000,
        help="submissions per subreddit (Reddit caps listings near 1000)",
    )
    source.add_argument("--include-nsfw", action="store_true", help="keep NSFW posts")
    source.add_argument("--min-score", type=int, default=None, help="drop posts below this")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        default=None,
        help="model folder (local or gs://), or a Vertex AI model resource "
        "name with --backend vertex; omit to skip classification",
    )
    model.add_argument("--backend", choices=backend_names(), default=backend_names()[0])
    model.add_argument("--vertex-project", default=None)
    model.add_argument("--vertex-location", default=None)
    model.add_argument("--batch-size", type=int, default=32, help="pictures per prediction call")
    model.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="local model: torch threads per worker process (1 when processes share cores)",
    )
    model.add_argument("--confidence-threshold", type=float, default=0.0)
    model.add_argument("--max-predictions", type=int, default=None)
    model.add_argument(
        "--generic-labels",
        choices=["imagenet", "cloud_vision"],
        default=None,
        help="also add generic labels (offline ImageNet or Cloud Vision)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output",
        required=True,
        help="output folder or gs:// prefix: images/, results-*.jsonl, dead_letter-*.jsonl",
    )
    out.add_argument(
        "--bigquery-table",
        default=None,
        metavar="PROJECT:DATASET.TABLE",
        help="also append result rows to this BigQuery table",
    )
    net = parser.add_argument_group("download")
    net.add_argument(
        "--allow-private-networks",
        action="store_true",
        help="allow loopback/private addresses (tests and intranets only)",
    )
    net.add_argument(
        "--download-concurrency", type=int, default=16, help="downloader threads per worker"
    )
    return parser


def parse_args(argv: Sequence[str]) -> tuple[PipelineConfig, PipelineOptions]:
    """Split a command line into our job config and Beam's pipeline options.

    Args:
        argv: The arguments, without the program name.

    Returns:
        The config and the pipeline options (built from the arguments we do not know).

    Raises:
        SystemExit: Bad arguments (argparse prints the usage), or no input given.
    """
    parser = _parser()
    args, beam_args = parser.parse_known_args(list(argv))
    if not (args.listing or args.dump or args.subreddit):
        parser.error("give at least one --listing, --dump or --subreddit")
    if get_backend(args.backend).needs_options and (
        args.model is None or args.vertex_project is None
    ):
        parser.error(
            f"--backend {args.backend} needs --model (a model resource name) and --vertex-project"
        )
    filters = PostFilters(include_nsfw=args.include_nsfw, min_score=args.min_score)
    config = PipelineConfig(
        output=args.output,
        listings=args.listing,
        dumps=args.dump,
        subreddits=args.subreddit,
        sort=args.sort,
        time_filter=args.time_filter,
        limit=args.limit,
        filters=filters,
        model=args.model,
        backend=args.backend,
        vertex_project=args.vertex_project,
        vertex_location=args.vertex_location,
        generic_labels=args.generic_labels,
        bigquery_table=args.bigquery_table,
        allow_private_networks=args.allow_private_networks,
        download_concurrency=args.download_concurrency,
        classify_batch=args.batch_size,
        torch_threads=args.torch_threads,
        confidence_threshold=args.confidence_threshold,
        max_predictions=args.max_predictions,
    )
    return config, PipelineOptions(beam_args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pipeline and wait for it to finish.

    Args:
        argv: The arguments, without the program name; default ``sys.argv[1:]``.

    Returns:
        0 when the pipeline finished; 2 on a redditvision error (printed as one line).
    """
    import apache_beam as beam

    config, options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with beam.Pipeline(options=options) as pipeline:
            build_pipeline(pipeline, config)
    except RedditVisionError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
