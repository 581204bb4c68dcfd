# mypy: disable-error-code="no-untyped-call"
# (Apache Beam ships py.typed, but most of its transforms are untyped functions.)
"""Composite Beam transforms that wrap redditvision's step functions.

No step is implemented twice: reading uses :mod:`redditvision.reddit`'s sources and media
resolution, downloading uses :class:`~redditvision.download.ImageDownloader`, classifying uses
:class:`~redditvision.classify.Classifier` and generic labels use a
:class:`~redditvision.labelers.GenericLabeler`. The transforms add what a distributed engine
needs: one client per worker (built in ``DoFn.setup``, closed in ``DoFn.teardown``), batching
(``BatchElements``), deduplication across the whole PCollection (``GroupByKey`` on the URL
before fetching and on the sha256 after), files on a filesystem Beam knows (local or
``gs://``) and a ``dead_letter`` output where each failing element lands with its reason.

Every transform with a failure path returns a pair ``(main, dead_letter)`` of PCollections.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from redditvision.beam._compat import require_beam
from redditvision.beam.elements import (
    BIGQUERY_SCHEMA,
    DeadLetter,
    ImageResult,
    MediaTask,
    StoredImage,
    dead_letter_to_row,
    result_to_row,
)
from redditvision.labelers import ImageLabels
from redditvision.models import ImagePost, ImageRecord, RecordStatus, TrainedModel

if TYPE_CHECKING:
    import requests

    from redditvision.classify import Classifier, PredictionBackend
    from redditvision.download import DownloadLimits, ImageDownloader
    from redditvision.labelers import GenericLabeler
    from redditvision.reddit import PostFilters, RedditImageSource

require_beam()

import apache_beam as beam  # noqa: E402  (after the guard, which names the extra)
from apache_beam import pvalue  # noqa: E402
from apache_beam.io import fileio  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.metrics.metric import Metrics  # noqa: E402

__all__ = [
    "CLOUD_VISION_BATCH",
    "DEAD_LETTER",
    "LABELERS",
    "METRICS_NAMESPACE",
    "ClassifyImages",
    "DedupImages",
    "DownloadImages",
    "GenericLabels",
    "ReadSubmissions",
    "ResolveMedia",
    "WriteDeadLetters",
    "WriteResults",
    "cloud_vision_labeler",
    "imagenet_labeler",
    "local_backend",
    "vertex_backend",
]

logger = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
"""Tag of the dead-letter output of every DoFn here."""

_MAIN = "main"


METRICS_NAMESPACE = "redditvision"
"""Namespace of the Beam metrics: counters ``urls_fetched`` (downloader records, one per
distinct URL), ``images_stored``, ``images_classified``, ``images_labeled``, and the distribution
``classify_batch_size``."""


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(METRICS_NAMESPACE, name).inc(n)


def _letter(step: str, key: str, exc: BaseException) -> Any:
    """Return a tagged dead letter for an exception (its class name is the reason)."""
    return pvalue.TaggedOutput(
        DEAD_LETTER, DeadLetter(step=step, key=key, reason=type(exc).__name__, detail=str(exc))
    )


# --------------------------------------------------------------------------- read


def _local_copy(path: str, tmp: str) -> str:
    """Return a local path for a file on any Beam filesystem (copying remote files)."""
    if "://" not in path:
        return path
    target = Path(tmp) / Path(path.rstrip("/")).name
    with contextlib.closing(FileSystems.open(path)) as source, target.open("wb") as out:
        shutil.copyfileobj(source, out, length=1 << 20)
    return str(target)


def _input_letters(errors: Sequence[str], local: str, original: str) -> Iterator[Any]:
    """Turn a file source's input errors into dead letters keyed by file and position.

    Listing sources report ``"{path}: child {n}: {message}"``, dump sources
    ``"{path}:{line}: {message}"``; the key keeps the position with the original path.
    """
    for text in errors:
        rest = text[len(local) :] if text.startswith(local) else ": " + text
        if rest.startswith(": child "):
            position, _, message = rest[2:].partition(": ")
            key = f"{original}: {position}"
        else:
            position, _, message = rest.partition(": ")
            key = original + position
        yield pvalue.TaggedOutput(
            DEAD_LETTER, DeadLetter(step="read", key=key, reason="bad_input", detail=message)
        )


class _ReadFileFn(beam.DoFn):
    """Read one matched listing or dump file with the collect step's offline source."""

    def __init__(self, kind: str, filters: PostFilters | None) -> None:
        super().__init__()
        self._kind = kind
        self._filters = filters

    def process(self, metadata: Any) -> Iterator[Any]:
        from redditvision.reddit import DumpFileSource, ListingFileSource

        path: str = metadata.path
        source_cls = ListingFileSource if self._kind == "listing" else DumpFileSource
        with tempfile.TemporaryDirectory(prefix="redditvision-read-") as tmp:
            try:
                local = _local_copy(path, tmp)
                source = source_cls([local], filters=self._filters)
            except Exception as exc:  # noqa: BLE001 - one unreadable file never sinks the run
                yield _letter("read", path, exc)
                return
            try:
                yield from source.submissions()
            except Exception as exc:  # noqa: BLE001 - a file that is not a listing/dump
                yield _letter("read", path, exc)
            yield from _input_letters(source.errors, str(source.paths[0]), path)


class _ReadSubredditFn(beam.DoFn):
    """Stream one subreddit's listing through praw, one source per worker."""

    def __init__(
        self,
        *,
        sort: str,
        time_filter: str,
        limit: int | None,
        filters: PostFilters | None,
        source_factory: Callable[[], RedditImageSource] | None,
    ) -> None:
        super().__init__()
        self._sort = sort
        self._time_filter = time_filter
        self._limit = limit
        self._filters = filters
        self._source_factory = source_factory
        self._source: RedditImageSource | None = None

    def setup(self) -> None:
        from redditvision.reddit import RedditImageSource

        if self._source_factory is not None:
            self._source = self._source_factory()
        else:
            self._source = RedditImageSource.from_env(filters=self._filters)

    def process(self, subreddit: str) -> Iterator[Any]:
        assert self._source is not None  # set in setup
        try:
            yield from self._source.submissions(
                subreddit, sort=self._sort, time_filter=self._time_filter, limit=self._limit
            )
        except Exception as exc:  # noqa: BLE001 - one subreddit never sinks the run
            yield _letter("read", f"r/{subreddit}", exc)

    def teardown(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None


class ReadSubmissions(beam.PTransform[Any, Any]):
    """Read image posts from saved listings, NDJSON dumps, or subreddits through praw.

    Each input goes through the collect step's own source, so the posts, their resolved
    media and the filters are exactly those of ``redditvision collect``: listing and dump
    files are matched with Beam's file IO (patterns such as ``gs://bucket/dumps/*.zst``
    work on any runner; remote files are copied to a worker-local temporary file) and read
    with :class:`~redditvision.reddit.ListingFileSource` or
    :class:`~redditvision.reddit.DumpFileSource`, one file per element (compressed files
    cannot be split anyway); subreddits are read with
    :class:`~redditvision.reddit.RedditImageSource`, one source per worker, built with
    ``from_env()`` there (so the ``praw_*`` environment variables or a ``praw.ini`` must
    be present on the workers) unless ``source_factory`` is given. For submission JSON
    objects from any other Beam source (``ReadFromBigQuery``, Pub/Sub), use
    :class:`ResolveMedia`.

    Args:
        listings: File patterns of saved Reddit Listing JSON files.
        dumps: File patterns of NDJSON submission dumps (plain, ``.zst``, gzip).
        subreddits: Subreddit names, without ``r/``.
        sort: Listing of the subreddits: ``top`` (default), ``hot``, ``new``, ``rising``,
            ``controversial``.
        time_filter: For ``top`` and ``controversial``: ``all`` (default), ``year``, ...
        limit: Submissions per subreddit (default 1000); Reddit serves at most about
            1000 per listing.
        filters: Which posts and media to keep (default ``PostFilters()``: NSFW, stickied
            and removed posts excluded).
        source_factory: Picklable callable building the praw source on each worker instead
            of ``RedditImageSource.from_env(filters=filters)``.

    Returns:
        From ``expand``: ``(posts, dead_letter)``. A file that is not a listing or dump,
        a malformed dump line (key ``"file:line"``) or a failing subreddit is a dead
        letter with step ``"read"``.

    Raises:
        ValueError: No input was given.
    """

    def __init__(
        self,
        *,
        listings: Sequence[str] = (),
        dumps: Sequence[str] = (),
        subreddits: Sequence[str] = (),
        sort: str = "top",
        time_filter: str = "all",
        limit: int | None = 1000,
        filters: PostFilters | None = None,
        source_factory: Callable[[], RedditImageSource] | None = None,
    ) -> None:
        super().__init__()
        if not (listings or dumps or subreddits):
            raise ValueError("ReadSubmissions needs listings=, dumps= or subreddits=")
        self.listings = tuple(listings)
        self.dumps = tuple(dumps)
        self.subreddits = tuple(subreddits)
        self.sort = sort
        self.time_filter = time_filter
        self.limit = limit
        self.filters = filters
        self.source_factory = source_factory

    def expand(self, pbegin: Any) -> tuple[Any, Any]:
        """Return ``(posts, dead_letter)`` read from every configured input."""
        parts: list[Any] = []
        letters: list[Any] = []
        for kind, patterns in (("listing", self.listings), ("dump", self.dumps)):
            if not patterns:
                continue
            name = kind.capitalize()
            out = (
                pbegin
                | f"{name}Patterns" >> beam.Create(patterns)
                | f"Match{name}s" >> fileio.MatchAll()
                | f"Reshuffle{name}s" >> beam.Reshuffle()
                | f"Read{name}s"
                >> beam.ParDo(_ReadFileFn(kind, self.filters)).with_outputs(DEAD_LETTER, main=_MAIN)
            )
            parts.append(out[_MAIN])
            letters.append(out[DEAD_LETTER])
        if self.subreddits:
            out = (
                pbegin
                | "Subreddits" >> beam.Create(self.subreddits)
                | "ReadSubreddits"
                >> beam.ParDo(
                    _ReadSubredditFn(
                        sort=self.sort,
                        time_filter=self.time_filter,
                        limit=self.limit,
                        filters=self.filters,
                        source_factory=self.source_factory,
                    )
                ).with_outputs(DEAD_LETTER, main=_MAIN)
            )
            parts.append(out[_MAIN])
            letters.append(out[DEAD_LETTER])
        posts = tuple(parts) | "AllPosts" >> beam.Flatten()
        dead = tuple(letters) | "ReadDeadLetters" >> beam.Flatten()
        return posts, dead


# --------------------------------------------------------------------------- resolve


class _ResolveFn(beam.DoFn):
    def __init__(self, filters: PostFilters | None) -> None:
        super().__init__()
        self._filters = filters

    def process(self, data: Mapping[str, Any]) -> Iterator[Any]:
        # The collect step's own converter and filters (the same code every source runs).
        from redditvision.reddit import CollectStats, collect_submission

        stats = CollectStats()
        where = str(data.get("id") or data.get("name") or "?") if isinstance(data, Mapping) else "?"
        post = collect_submission(data, filters=self._filters, stats=stats, where=where)
        for text in stats.errors:
            yield pvalue.TaggedOutput(
                DEAD_LETTER,
                DeadLetter(
                    step="resolve",
                    key=where,
                    reason="ListingFormatError",
                    detail=text.partition(": ")[2],
                ),
            )
        if post is not None:
            yield post


class ResolveMedia(beam.PTransform[Any, Any]):
    """Turn submission JSON objects from any Beam source into posts with their images.

    For submissions read by other means than :class:`ReadSubmissions` (a
    ``ReadFromBigQuery`` of a Reddit export, ``ReadFromText`` of NDJSON and ``json.loads``,
    Pub/Sub). Each object (the ``data`` of a ``t3`` thing) goes through the collect step's
    :func:`~redditvision.reddit.post_from_submission_data` (which calls
    :func:`~redditvision.reddit.resolve_media`) and :class:`~redditvision.reddit.PostFilters`,
    the same code every source runs, so the same JSON gives the same posts.

    Args:
        filters: Which posts and media to keep (default ``PostFilters()``); posts without
            any image are dropped unless ``filters.require_images`` is False.

    Returns:
        From ``expand``: ``(posts, dead_letter)``; an object that is not a submission (no
        id, not a mapping) is a dead letter with step ``"resolve"``.
    """

    def __init__(self, *, filters: PostFilters | None = None) -> None:
        super().__init__()
        self.filters = filters

    def expand(self, submissions: Any) -> tuple[Any, Any]:
        """Return ``(posts, dead_letter)`` for a PCollection of submission dicts."""
        out = submissions | "Resolve" >> beam.ParDo(_ResolveFn(self.filters)).with_outputs(
            DEAD_LETTER, main=_MAIN
        )
        return out[_MAIN], out[DEAD_LETTER]


# --------------------------------------------------------------------------- download


PREVIEWS = "previews"
_OUTCOME = "outcome"


def _split_media(post: ImagePost) -> Iterator[Any]:
    """Key a post's own images by URL; set its preview fallbacks aside by post id.

    Preview items (``MediaItem.is_preview``) are the downloader's per-post fallbacks,
    fetched only when none of the post's own images ended ok; they wait on the outcome of
    the first pass (see :func:`_fallback_tasks`).
    """
    previews = False
    for index, item in enumerate(post.media):
        if item.is_preview:
            previews = True
        else:
            yield item.url, MediaTask(post=post, index=index)
    if previews:
        yield pvalue.TaggedOutput(PREVIEWS, (post.id, post))


def _fallback_tasks(element: tuple[str, Mapping[str, Iterable[Any]]]) -> Iterator[Any]:
    """Yield the preview tasks of a post none of whose own images ended ok."""
    _, joined = element
    posts = list(joined["post"])
    if not posts or any(joined["outcome"]):
        return
    post: ImagePost = posts[0]  # the same submission read twice is one post
    for index, item in enumerate(post.media):
        if item.is_preview:
            yield item.url, MediaTask(post=post, index=index)


def _copy_to(local: Path, dest: str) -> None:
    """Copy a local file to ``dest`` on any Beam filesystem, unless it is already there."""
    if FileSystems.exists(dest):
        return
    with local.open("rb") as source, contextlib.closing(FileSystems.create(dest)) as target:
        shutil.copyfileobj(source, target, length=1 << 20)


def _synthetic_id(task: MediaTask, url: str) -> str:
    """The post id a URL is fetched under: ``{post_id}-{index}-{url digest}``.

    It names the URL, so a manifest key never stands for two URLs, and it names the first
    post that showed it, so :func:`_real_key` can map the downloader's keys back.
    """
    digest = hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{task.post.id}-{task.index}-{digest}"


def _real_key(synthetic_key: str) -> str | None:
    """Map a ``"{synthetic id}:0"`` record key back to ``"{post_id}:{index}"``."""
    synthetic, _, _ = synthetic_key.rpartition(":")
    parts = synthetic.rsplit("-", 2)
    return f"{parts[0]}:{parts[1]}" if len(parts) == 3 and parts[1].isdigit() else None


def _with_provenance(record: ImageRecord, task: MediaTask) -> ImageRecord:
    """Give a record fetched under a synthetic post id the post's own id and provenance.

    ``duplicate_of``, ``near_duplicate_group`` and the reason that names them are mapped
    back to real ``post_id:index`` keys.
    """
    post = task.post
    reason = record.reason
    mapped: dict[str, str | None] = {}
    for name in ("duplicate_of", "near_duplicate_group"):
        value: str | None = getattr(record, name)
        real = _real_key(value) if value is not None else None
        mapped[name] = real if real is not None else value
        if reason is not None and value is not None and real is not None:
            reason = reason.replace(value, real).replace(
                f"post {value.rpartition(':')[0]}", f"post {real.rpartition(':')[0]}"
            )
    return attrs.evolve(
        record,
        reason=reason,
        duplicate_of=mapped["duplicate_of"],
        near_duplicate_group=mapped["near_duplicate_group"],
        post_id=post.id,
        index=task.index,
        url=task.item.url,
        subreddit=post.subreddit,
        title=post.title,
        author=post.author,
        flair_text=post.flair_text,
        permalink=post.permalink,
    )


class _DownloadFn(beam.DoFn):
    """Fetch batches of distinct URLs with one :class:`ImageDownloader` per worker."""

    def __init__(
        self,
        output_dir: str,
        *,
        limits: DownloadLimits | None,
        concurrency: int,
        per_host: int,
        allow_private_networks: bool,
        session_factory: Callable[[], requests.Session] | None,
    ) -> None:
        super().__init__()
        self._images_dir = output_dir
        self._session_factory = session_factory
        self._limits = limits
        self._concurrency = concurrency
        self._per_host = per_host
        self._allow_private = allow_private_networks
        self._tmp: str | None = None
        self._downloader: ImageDownloader | None = None

    def setup(self) -> None:
        from redditvision.download import DownloadLimits, ImageDownloader

        self._tmp = tempfile.mkdtemp(prefix="redditvision-beam-")
        self._downloader = ImageDownloader(
            self._tmp,
            limits=self._limits if self._limits is not None else DownloadLimits(),
            concurrency=self._concurrency,
            per_host=self._per_host,
            allow_private_networks=self._allow_private,
            session=self._session_factory() if self._session_factory is not None else None,
        )
        if "://" not in self._images_dir:
            # Local folders must exist; object stores (gs://) have no folders.
            os.makedirs(self._images_dir, exist_ok=True)

    def process(self, batch: Sequence[tuple[str, Iterable[MediaTask]]]) -> Iterator[Any]:
        assert self._downloader is not None  # set in setup
        groups: dict[str, list[MediaTask]] = {}
        singles: list[ImagePost] = []
        for url, tasks in batch:
            # The same submission may come twice (read from two listings): once per key.
            unique = {task.key: task for task in tasks}
            ordered = [unique[key] for key in sorted(unique)]
            first = ordered[0]
            # One single-item post per distinct URL: the downloader fetches it once and
            # every post that showed it gets the same record (with its own provenance).
            synthetic = _synthetic_id(first, url)
            groups[synthetic] = ordered
            singles.append(attrs.evolve(first.post, id=synthetic, media=(first.item,)))
        seen: set[str] = set()
        try:
            for record in self._downloader.fetch(singles):
                _count("urls_fetched")
                seen.add(record.post_id)
                yield from self._emit(record, groups.get(record.post_id, []))
        except Exception as exc:  # noqa: BLE001 - one bad batch never sinks the bundle
            for synthetic, tasks in groups.items():
                if synthetic not in seen:
                    for task in tasks:
                        yield _letter("download", task.key, exc)

    def _emit(self, record: ImageRecord, tasks: list[MediaTask]) -> Iterator[Any]:
        usable = record.status in (RecordStatus.OK, RecordStatus.DUPLICATE)
        usable = usable and record.path is not None and record.sha256 is not None
        for task in tasks:
            yield pvalue.TaggedOutput(_OUTCOME, (task.post.id, usable))
        if not usable or record.path is None or record.sha256 is None:
            reason = record.reason or record.status.value
            for task in tasks:
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    DeadLetter(
                        step="download",
                        key=task.key,
                        reason=f"{record.status.value}: {reason}",
                        detail=task.item.url,
                    ),
                )
            return
        local = Path(record.path)
        if not local.is_absolute() and self._tmp is not None:
            local = Path(self._tmp) / local
        dest = FileSystems.join(self._images_dir, local.parent.name, local.name)
        try:
            _copy_to(local, dest)
        except Exception as exc:  # noqa: BLE001 - a storage failure is this item's failure
            for task in tasks:
                yield _letter("download", task.key, exc)
            return
        _count("images_stored", len(tasks))
        for task in tasks:
            yield StoredImage(record=_with_provenance(record, task), uri=dest)

    def teardown(self) -> None:
        if self._downloader is not None:
            self._downloader.close()
            self._downloader = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class DownloadImages(beam.PTransform[Any, Any]):
    """Fetch every post's images once per distinct URL, verified, onto a Beam filesystem.

    The media items of all posts are grouped by URL (``GroupByKey``), so a picture posted
    or crossposted in many subreddits is fetched once. Reddit preview items
    (``MediaItem.is_preview``) keep the downloader's fallback rule: a second pass fetches
    them (grouped by URL too) only for posts none of whose own images ended ok, found by
    joining the first pass's outcomes by post id (``CoGroupByKey``); batches of distinct URLs
    (``BatchElements``, up to ``batch_size``) go to one
    :class:`~redditvision.download.ImageDownloader` per worker (built in ``setup`` over a
    worker-local temporary folder, closed in ``teardown``), with all its checks: SSRF guard,
    size and pixel caps, format sniffing, retries. Verified files are copied to
    ``output_dir`` under the downloader's content-addressed names, with
    :class:`apache_beam.io.filesystems.FileSystems`, so ``output_dir`` may be a local folder
    or ``gs://bucket/prefix``.

    Args:
        output_dir: Folder or ``gs://`` prefix for the image files.
        limits: Size, pixel and format limits; default ``DownloadLimits()``.
        concurrency: Downloader threads per worker (default 16).
        per_host: Concurrent requests per host per worker (default 4).
        allow_private_networks: Fetch from loopback and private addresses (tests, intranet
            only; default False).
        batch_size: Most distinct URLs handed to the downloader at once (default 64).
        session_factory: Picklable callable building the downloader's
            ``requests.Session`` on each worker; None (default) lets the downloader build
            its own.

    Returns:
        From ``expand``: ``(images, dead_letter)``; ``images`` holds one
        :class:`~redditvision.beam.StoredImage` per post and media index that was fetched,
        and each failed, missing or refused item is a dead letter with step ``"download"``
        and the downloader's reason.
    """

    def __init__(
        self,
        output_dir: str,
        *,
        limits: DownloadLimits | None = None,
        concurrency: int = 16,
        per_host: int = 4,
        allow_private_networks: bool = False,
        batch_size: int = 64,
        session_factory: Callable[[], requests.Session] | None = None,
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.session_factory = session_factory
        self.limits = limits
        self.concurrency = concurrency
        self.per_host = per_host
        self.allow_private_networks = allow_private_networks
        self.batch_size = batch_size

    def _fetch(self, tasks: Any, name: str) -> Any:
        return (
            tasks
            | f"GroupByUrl{name}" >> beam.GroupByKey()
            | f"BatchUrls{name}"
            >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
            | f"Fetch{name}"
            >> beam.ParDo(
                _DownloadFn(
                    self.output_dir,
                    limits=self.limits,
                    concurrency=self.concurrency,
                    per_host=self.per_host,
                    allow_private_networks=self.allow_private_networks,
                    session_factory=self.session_factory,
                )
            ).with_outputs(DEAD_LETTER, _OUTCOME, main=_MAIN)
        )

    def expand(self, posts: Any) -> tuple[Any, Any]:
        """Return ``(images, dead_letter)`` for a PCollection of posts."""
        split = posts | "SplitMedia" >> beam.FlatMap(_split_media).with_outputs(
            PREVIEWS, main=_MAIN
        )
        first = self._fetch(split[_MAIN], "")
        fallbacks = (
            {"post": split[PREVIEWS], "outcome": first[_OUTCOME]}
            | "JoinOutcomes" >> beam.CoGroupByKey()
            | "PreviewFallbacks" >> beam.FlatMap(_fallback_tasks)
        )
        second = self._fetch(fallbacks, "Previews")
        images = (first[_MAIN], second[_MAIN]) | "AllImages" >> beam.Flatten()
        dead = (first[DEAD_LETTER], second[DEAD_LETTER]) | "DownloadDeadLetters" >> beam.Flatten()
        return images, dead


# --------------------------------------------------------------------------- dedup


def _merge(element: tuple[str, Iterable[StoredImage]]) -> ImageResult:
    sha256, stored = element
    images = sorted(stored, key=lambda s: s.record.key)
    first = images[0].record
    return ImageResult(
        sha256=sha256,
        uri=min(s.uri for s in images),
        width=first.width,
        height=first.height,
        format=first.format,
        size_bytes=first.size_bytes,
        sources=tuple(s.record for s in images),
    )


class DedupImages(beam.PTransform[Any, Any]):
    """Group stored images by sha256 across the whole PCollection: one element per picture.

    Different URLs that serve the same bytes (reposts, re-uploads on another host) become
    one :class:`~redditvision.beam.ImageResult` listing every post that showed it, so the
    picture is classified and labeled once.

    Returns:
        From ``expand``: a PCollection of :class:`~redditvision.beam.ImageResult`, sources
        sorted by record key.
    """

    def expand(self, images: Any) -> Any:
        """Return one :class:`~redditvision.beam.ImageResult` per distinct sha256."""
        return (
            images
            | "KeyBySha256" >> beam.Map(lambda s: (s.record.sha256, s))
            | "GroupBySha256" >> beam.GroupByKey()
            | "Merge" >> beam.Map(_merge)
        )


# --------------------------------------------------------------------------- classify


def _read_uri(uri: str) -> bytes:
    with contextlib.closing(FileSystems.open(uri)) as handle:
        data: bytes = handle.read()
    return data


def _local_model_dir(model: str, tmp: str) -> str:
    """Return a local folder for a model folder given as a local path or ``gs://`` prefix."""
    if "://" not in model:
        return model
    prefix = model.rstrip("/") + "/"
    target = Path(tmp) / "model"
    (match,) = FileSystems.match([prefix + "**"])
    for meta in match.metadata_list:
        relative = meta.path[len(prefix) :]
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(FileSystems.open(meta.path)) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    return str(target)


class _ClassifyFn(beam.DoFn):
    """Predict batches of pictures with one :class:`Classifier` per worker."""

    def __init__(
        self,
        model: TrainedModel | str,
        *,
        backend_factory: Callable[[], PredictionBackend] | None,
        confidence_threshold: float,
        max_predictions: int | None,
    ) -> None:
        super().__init__()
        self._model = model
        self._backend_factory = backend_factory
        self._threshold = confidence_threshold
        self._max = max_predictions
        self._classifier: Classifier | None = None
        self._tmp: str | None = None

    def setup(self) -> None:
        from redditvision.classify import Classifier

        model = self._model
        if isinstance(model, str):
            model = TrainedModel(backend="local", resource=model)
        if model.backend == "local" and "://" in model.resource:
            self._tmp = tempfile.mkdtemp(prefix="redditvision-model-")
            model = attrs.evolve(model, resource=_local_model_dir(model.resource, self._tmp))
        backend = self._backend_factory() if self._backend_factory is not None else None
        # Workers never deploy: N workers would each deploy (and undeploy on teardown).
        self._classifier = Classifier(model, backend=backend, deploy=False)
        self._classifier.predictor  # noqa: B018 - load the model once, here, per worker

    def process(self, batch: Sequence[ImageResult]) -> Iterator[Any]:
        assert self._classifier is not None  # set in setup
        Metrics.distribution(METRICS_NAMESPACE, "classify_batch_size").update(len(batch))
        readable: list[tuple[ImageResult, bytes]] = []
        for result in batch:
            try:
                readable.append((result, _read_uri(result.uri)))
            except Exception as exc:  # noqa: BLE001 - one unreadable file is its own failure
                yield _letter("classify", result.sha256, exc)
        if not readable:
            return
        try:
            answers = self._classifier.predict_many(
                [data for _, data in readable],
                confidence_threshold=self._threshold,
                max_predictions=self._max,
            )
        except Exception:  # noqa: BLE001 - find the culprit one image at a time
            yield from self._one_by_one(readable)
            return
        _count("images_classified", len(readable))
        for (result, _), predictions in zip(readable, answers, strict=True):
            yield attrs.evolve(result, predictions=tuple(predictions))

    def _one_by_one(self, readable: list[tuple[ImageResult, bytes]]) -> Iterator[Any]:
        assert self._classifier is not None
        for result, data in readable:
            try:
                predictions = self._classifier.predict(
                    data, confidence_threshold=self._threshold, max_predictions=self._max
                )
            except Exception as exc:  # noqa: BLE001 - one bad image never sinks the bundle
                yield _letter("classify", result.sha256, exc)
            else:
                _count("images_classified")
                yield attrs.evolve(result, predictions=tuple(predictions))

    def teardown(self) -> None:
        if self._classifier is not None:
            self._classifier.close()
            self._classifier = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class ClassifyImages(beam.PTransform[Any, Any]):
    """Predict each distinct picture's labels with a trained model, in batches.

    Wraps :meth:`redditvision.classify.Classifier.predict_many`. The model is loaded once
    per worker in ``DoFn.setup``: a local model folder (a path, or a ``gs://`` prefix that
    is copied to a worker-local folder first), or any backend's
    :class:`~redditvision.models.TrainedModel` with ``backend_factory`` building that
    backend on the worker (e.g. ``functools.partial(vertex_backend, project=...)`` for a
    Vertex AI endpoint; the model must already be deployed, e.g. with ``redditvision
    deploy``, as workers never deploy). Pictures are batched with ``BatchElements`` (1 to
    ``batch_size``). When a batch fails, its pictures are retried one by one so only the
    culprit lands in the dead-letter output.

    Args:
        model: Local model folder (path or ``gs://`` prefix) or a model handle.
        backend_factory: Picklable callable building the prediction backend on a worker;
            None for the local backend.
        batch_size: Most pictures per prediction call (default 32, the Classifier's own).
        min_batch_size: Fewest pictures per call unless a bundle ends first (default 8,
            the local extractor's batch). ``BatchElements`` starts at this size and grows
            by timing; from 1, the DirectRunner's small bundles gave batches of 1.8
            pictures on average.
        confidence_threshold: Drop predictions below this (default 0.0, as Vertex AI).
        max_predictions: Keep at most this many per picture (default all).

    Returns:
        From ``expand``: ``(results, dead_letter)``; results have ``predictions`` set.
    """

    def __init__(
        self,
        model: TrainedModel | str | os.PathLike[str],
        *,
        backend_factory: Callable[[], PredictionBackend] | None = None,
        batch_size: int = 32,
        min_batch_size: int = 8,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> None:
        super().__init__()
        self.min_batch_size = min_batch_size
        self.model: TrainedModel | str = (
            model if isinstance(model, TrainedModel) else os.fspath(model)
        )
        self.backend_factory = backend_factory
        self.batch_size = batch_size
        self.confidence_threshold = confidence_threshold
        self.max_predictions = max_predictions

    def expand(self, results: Any) -> tuple[Any, Any]:
        """Return ``(results, dead_letter)`` for a PCollection of pictures."""
        out = (
            results
            | "BatchForModel"
            >> beam.BatchElements(
                min_batch_size=min(self.min_batch_size, self.batch_size),
                max_batch_size=self.batch_size,
            )
            | "Predict"
            >> beam.ParDo(
                _ClassifyFn(
                    self.model,
                    backend_factory=self.backend_factory,
                    confidence_threshold=self.confidence_threshold,
                    max_predictions=self.max_predictions,
                )
            ).with_outputs(DEAD_LETTER, main=_MAIN)
        )
        return out[_MAIN], out[DEAD_LETTER]


# --------------------------------------------------------------------------- generic labels

CLOUD_VISION_BATCH = 16
"""Images per Cloud Vision ``batch_annotate_images`` request (the API's limit)."""


def imagenet_labeler(*, num_threads: int | None = None) -> GenericLabeler:
    """Build the offline ImageNet labeler of the local backend (needs ``[local]``).

    Args:
        num_threads: Torch threads per worker process (see :func:`local_backend`); None
            for one per core.

    Returns:
        A :class:`~redditvision.backends.local.ImageNetLabeler`.
    """
    from redditvision.backends.local import EfficientNetLite0Extractor, ImageNetLabeler

    labeler: GenericLabeler = ImageNetLabeler(
        extractor=EfficientNetLite0Extractor(num_threads=num_threads)
    )
    return labeler


def cloud_vision_labeler() -> GenericLabeler:
    """Build a Cloud Vision labeler from Application Default Credentials.

    Returns:
        A :class:`~redditvision.labelers.CloudVisionLabeler` built with ``from_env()``.
    """
    from redditvision.labelers import CloudVisionLabeler

    labeler: GenericLabeler = CloudVisionLabeler.from_env()
    return labeler


LABELERS: dict[str, Callable[[], GenericLabeler]] = {
    "imagenet": imagenet_labeler,
    "cloud_vision": cloud_vision_labeler,
}
"""Labeler names the entry point accepts, and the factories that build them on workers."""


class _LabelFn(beam.DoFn):
    def __init__(self, factory: Callable[[], GenericLabeler], max_results: int) -> None:
        super().__init__()
        self._factory = factory
        self._max_results = max_results
        self._labeler: GenericLabeler | None = None

    def setup(self) -> None:
        self._labeler = self._factory()

    def process(self, batch: Sequence[ImageResult]) -> Iterator[Any]:
        assert self._labeler is not None  # set in setup
        readable: list[tuple[ImageResult, bytes]] = []
        for result in batch:
            try:
                readable.append((result, _read_uri(result.uri)))
            except Exception as exc:  # noqa: BLE001 - one unreadable file is its own failure
                yield _letter("label", result.sha256, exc)
        if not readable:
            return
        try:
            answers = self._labeler.label(
                [data for _, data in readable], max_results=self._max_results
            )
        except Exception as exc:  # noqa: BLE001 - the whole request failed: each is a letter
            for result, _ in readable:
                yield _letter("label", result.sha256, exc)
                yield attrs.evolve(result, generic=ImageLabels(error=str(exc)))
            return
        _count("images_labeled", len(readable))
        for (result, _), labels in zip(readable, answers, strict=True):
            if labels.error is not None:
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    DeadLetter(
                        step="label", key=result.sha256, reason="labeler", detail=labels.error
                    ),
                )
            yield attrs.evolve(result, generic=labels)

    def teardown(self) -> None:
        if self._labeler is not None:
            self._labeler.close()
            self._labeler = None


class GenericLabels(beam.PTransform[Any, Any]):
    """Add generic labels (ImageNet offline, or Cloud Vision) to each distinct picture.

    Wraps :meth:`redditvision.labelers.GenericLabeler.label`, one labeler per worker, in
    batches of up to 16 pictures (Cloud Vision's ``batch_annotate_images`` limit). A picture
    the labeler could not label keeps flowing (``generic.error`` set) and also lands in the
    dead-letter output with step ``"label"``.

    Args:
        labeler: ``"imagenet"`` (default, offline, needs ``[local]``), ``"cloud_vision"``
            (Application Default Credentials on the workers), or a picklable factory
            returning a :class:`~redditvision.labelers.GenericLabeler`.
        max_results: Labels per picture (default 10).

    Returns:
        From ``expand``: ``(results, dead_letter)``; results have ``generic`` set.

    Raises:
        ValueError: ``labeler`` is an unknown name.
    """

    def __init__(
        self,
        labeler: str | Callable[[], GenericLabeler] = "imagenet",
        *,
        max_results: int = 10,
    ) -> None:
        super().__init__()
        if isinstance(labeler, str):
            if labeler not in LABELERS:
                raise ValueError(
                    f"unknown labeler {labeler!r}; use one of {sorted(LABELERS)} or a factory"
                )
            labeler = LABELERS[labeler]
        self.factory = labeler
        self.max_results = max_results

    def expand(self, results: Any) -> tuple[Any, Any]:
        """Return ``(results, dead_letter)`` for a PCollection of pictures."""
        out = (
            results
            | "BatchForLabeler"
            >> beam.BatchElements(
                min_batch_size=CLOUD_VISION_BATCH, max_batch_size=CLOUD_VISION_BATCH
            )
            | "Label"
            >> beam.ParDo(_LabelFn(self.factory, self.max_results)).with_outputs(
                DEAD_LETTER, main=_MAIN
            )
        )
        return out[_MAIN], out[DEAD_LETTER]


# --------------------------------------------------------------------------- write


def _json_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=True)


class WriteResults(beam.PTransform[Any, Any]):
    """Write results as JSON Lines, and as BigQuery rows when a table is given.

    One line per distinct picture, :func:`~redditvision.beam.result_to_row`'s dict, keys
    sorted; files are ``{prefix}-SSSSS-of-NNNNN.jsonl``. With ``bigquery_table``, the same
    rows go to ``WriteToBigQuery`` with :data:`~redditvision.beam.BIGQUERY_SCHEMA`
    (``CREATE_IF_NEEDED``, ``WRITE_APPEND``; Beam needs ``--temp_location`` on ``gs://``).

    Args:
        prefix: Path prefix of the JSON Lines shards (local or ``gs://``).
        bigquery_table: ``PROJECT:DATASET.TABLE`` or ``DATASET.TABLE``, or None.
        num_shards: Output shards; 0 (default) lets the runner decide.

    Returns:
        From ``expand``: the PCollection of written file names.
    """

    def __init__(
        self, prefix: str, *, bigquery_table: str | None = None, num_shards: int = 0
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.bigquery_table = bigquery_table
        self.num_shards = num_shards

    def expand(self, results: Any) -> Any:
        """Write the rows; return the PCollection of JSON Lines file names."""
        rows = results | "ToRows" >> beam.Map(result_to_row)
        if self.bigquery_table:
            _ = rows | "WriteBigQuery" >> beam.io.WriteToBigQuery(
                self.bigquery_table,
                schema=BIGQUERY_SCHEMA,
                create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
                write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
            )
        return (
            rows
            | "RowsToJson" >> beam.Map(_json_line)
            | "WriteJsonLines"
            >> beam.io.WriteToText(
                self.prefix, file_name_suffix=".jsonl", num_shards=self.num_shards
            )
        )


class WriteDeadLetters(beam.PTransform[Any, Any]):
    """Write dead letters as JSON Lines (``step``, ``key``, ``reason``, ``detail``).

    Args:
        prefix: Path prefix of the shards (local or ``gs://``); files are
            ``{prefix}-SSSSS-of-NNNNN.jsonl``.

    Returns:
        From ``expand``: the PCollection of written file names.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def expand(self, letters: Any) -> Any:
        """Write the letters; return the PCollection of file names."""
        return (
            letters
            | "LettersToJson" >> beam.Map(lambda letter: _json_line(dead_letter_to_row(letter)))
            | "WriteLetters" >> beam.io.WriteToText(self.prefix, file_name_suffix=".jsonl")
        )


def local_backend(*, num_threads: int | None = None) -> PredictionBackend:
    """Build the local prediction backend on a worker, with a bound on torch's threads.

    Use ``functools.partial(local_backend, num_threads=1)`` as :class:`ClassifyImages`'s
    ``backend_factory`` when several worker processes share a machine (the DirectRunner's
    ``multi_processing`` mode, Dataflow's one SDK process per vCPU): each process would
    otherwise start one torch thread per core, and the oversubscribed cores slow prediction
    down several times (see :doc:`/beam`).

    Args:
        num_threads: Threads for torch's CPU kernels per worker process; None for one per
            core the process may use.

    Returns:
        A :class:`~redditvision.backends.local.LocalBackend` (needs ``[local]``).
    """
    from redditvision.backends.local import EfficientNetLite0Extractor, LocalBackend

    backend: PredictionBackend = LocalBackend(
        extractor=EfficientNetLite0Extractor(num_threads=num_threads)
    )
    return backend


def vertex_backend(**kwargs: Any) -> PredictionBackend:
    """Build a Vertex AI prediction backend on a worker (``VertexAutoMLBackend.from_env``).

    Use ``functools.partial(vertex_backend, project=..., location=...)`` as
    :class:`ClassifyImages`'s ``backend_factory``.

    Args:
        **kwargs: Passed to ``VertexAutoMLBackend.from_env``.

    Returns:
        The backend.
    """
    from redditvision.backends.vertex import VertexAutoMLBackend

    backend: PredictionBackend = VertexAutoMLBackend.from_env(**kwargs)
    return backend
