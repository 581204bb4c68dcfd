"""ImageDownloader: concurrent, guarded, verifying, deduplicating, resumable fetching."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import attrs
import requests
import urllib3.exceptions

from redditvision._closing import Closeable
from redditvision.download._budget import MemoryBudget
from redditvision.download._deadline import DeadlineExceededError, Watch, Watchdog
from redditvision.download._folder import OWNER_NAME, NearIndex, lock_folder
from redditvision.download._http import check_status, translate, translate_raw
from redditvision.download._limits import DownloadLimits
from redditvision.download._netguard import GuardedAdapter, check_url, make_policy
from redditvision.download._verify import (
    EXTENSIONS,
    VerifiedImage,
    is_placeholder_url,
    verify_image,
    warm_up,
)
from redditvision.errors import ConfigError, DownloadError, UnsafeURLError
from redditvision.manifest import MANIFEST_NAME, ImageManifest
from redditvision.models import ImagePost, ImageRecord, MediaItem, RecordStatus
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    is_transient,
    resolve_retry,
)

__all__ = ["DEFAULT_DOWNLOAD_RETRY", "ImageDownloader"]

logger = logging.getLogger(__name__)

DEFAULT_DOWNLOAD_RETRY = RetryPolicy(
    on=is_transient, attempts=4, timeout=120.0, initial=0.5, maximum=10.0, max_retry_after=60.0
)
"""The downloader's own retry policy: 4 attempts within 120 s, backoff 0.5 s doubling up
to 10 s, ``Retry-After`` honoured up to 60 s (a server asking for longer ends the retries
for that item at once; a re-run retries it)."""

_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_DONE = frozenset(
    {RecordStatus.OK, RecordStatus.DUPLICATE, RecordStatus.MISSING, RecordStatus.SKIPPED}
)
_CHUNK = 64 * 1024
_ACCEPT = "image/*,*/*;q=0.5"
_IMAGES = "images"
_PARTIAL = ".partial"


class _PlaceholderError(Exception):
    """The host answered with its "image removed" placeholder."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def _hostname(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@attrs.frozen
class _Task:
    post: ImagePost
    index: int
    item: MediaItem
    # Computed once: the scheduler reads both several times per item.
    key: str = attrs.field(init=False)
    host: str = attrs.field(init=False)

    @key.default
    def _key(self) -> str:
        return f"{self.post.id}:{self.index}"

    @host.default
    def _host(self) -> str:
        return _hostname(self.item.url)


@attrs.frozen(kw_only=True)
class _Outcome:
    status: RecordStatus
    reason: str | None = None
    path: Path | None = None
    sha256: str | None = None
    size: int | None = None
    image: VerifiedImage | None = None
    final_url: str | None = None
    attempts: int = 0
    stored: ImageRecord | None = None
    original: ImageRecord | None = None


@attrs.frozen
class _Body:
    tmp: Path
    sha256: str
    size: int
    final_url: str


class _PostState:
    """Bookkeeping of one post while its items are in flight (for the preview fallback)."""

    def __init__(self, post: ImagePost) -> None:
        self.post = post
        self.pending = 0
        self.any_ok = False
        self.previews: list[_Task] = []


class ImageDownloader(Closeable):
    """Download the images of posts: concurrent, guarded, verified, deduplicated, resumable.

    Each media item of each :class:`~redditvision.models.ImagePost` becomes one
    :class:`~redditvision.models.ImageRecord` and one row of the folder's
    :class:`~redditvision.manifest.ImageManifest` (``out_dir/manifest.sqlite``). Files are
    named by content, ``out_dir/images/ab/<sha256>.<ext>`` (the extension of the sniffed
    format), never by title; they are written under ``out_dir/.partial`` and renamed when
    complete and verified, and the manifest row is committed after the rename. A re-run
    skips what is done (ok, duplicate, missing, skipped, with the file present), retries
    what failed, and after a ``SIGKILL`` at any moment loses nothing and duplicates
    nothing (an orphan file left between rename and commit is adopted by the next run, as
    its name is its content).

    Args:
        out_dir: The output folder (created if needed).
        session: A ``requests.Session`` to use (connection reuse, headers, proxies,
            transport adapters mounted for specific origins). The downloader mounts its
            guarded adapter for ``http://`` and ``https://`` on it; adapters the caller
            mounted for longer prefixes keep precedence. When omitted, one is built with
            ``trust_env=False`` (no proxies from the environment: a proxy would connect
            on our behalf, out of the guard's sight) and closed by :meth:`close`.
        limits: Sizes, pixels, formats, redirects, timeouts (:class:`DownloadLimits`).
        concurrency: Worker threads, i.e. requests in flight (default 16, sized for I/O).
        per_host: Requests in flight per hostname (default 4), to be polite to each host.
        allow_private_networks: Allow loopback, private, link-local and other non-public
            addresses (default False). For tests on 127.0.0.1 and intranets only.
        allowed_networks: Networks allowed although not public (``"10.1.2.0/24"``), a
            narrower opt-in than ``allow_private_networks``.
        near_duplicate_distance: Largest Hamming distance between 64-bit perceptual hashes
            for two images to share a near-duplicate group (default 6). On the 383 BMW
            photos of ``shared/data``, resized and re-encoded copies are at most 8 bits from
            their original (99% within 6), and the closest distinct photos (white studio
            shots) are 6 bits apart; grouping errs on the side of keeping look-alikes
            together, which only costs a split some freedom.
        retry: The retry policy for each item (:data:`DEFAULT`:
            :data:`DEFAULT_DOWNLOAD_RETRY`; None for one attempt).
        lock_timeout: Seconds to wait for another downloader (in this or another
            process) to release the output folder (default 0: refuse at once; None:
            wait as long as it takes). One downloader per folder at a time: the lock
            (``out_dir/.download.lock``, an OS file lock through ``filelock``) is taken
            here and released by :meth:`close`, and the operating system releases it
            when the process dies, even by ``SIGKILL``, so no stale lock is left. While
            it is held no other process can own files in ``out_dir/.partial``, so the
            leftovers of killed runs are removed safely.

    Raises:
        ConfigError: ``concurrency`` or ``per_host`` below 1, ``near_duplicate_distance``
            outside 0..64, or a bad network in ``allowed_networks``.
        DownloadError: Another downloader holds the folder past ``lock_timeout``
            (``transient``; the message names the folder and, when known, the process).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        session: requests.Session | None = None,
        limits: DownloadLimits = DownloadLimits(),  # noqa: B008 - frozen, immutable default
        concurrency: int = 16,
        per_host: int = 4,
        allow_private_networks: bool = False,
        allowed_networks: Iterable[str | IPv4Network | IPv6Network] = (),
        near_duplicate_distance: int = 6,
        retry: RetryArg = DEFAULT,
        lock_timeout: float | None = 0.0,
    ) -> None:
        if concurrency < 1 or per_host < 1:
            raise ConfigError(
                f"concurrency ({concurrency}) and per_host ({per_host}) must be at least 1"
            )
        if not 0 <= near_duplicate_distance <= 64:
            raise ConfigError(
                f"near_duplicate_distance {near_duplicate_distance} is outside 0..64 "
                "(bits of a 64-bit perceptual hash)"
            )
        try:
            policy = make_policy(allow_private_networks, allowed_networks)
        except ValueError as exc:
            raise ConfigError(f"allowed_networks: {exc}") from exc
        self.out_dir = Path(out_dir)
        self.limits = limits
        self.concurrency = concurrency
        self.per_host = per_host
        self.near_duplicate_distance = near_duplicate_distance
        self._retry = resolve_retry(retry, DEFAULT_DOWNLOAD_RETRY)
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["User-Agent"] = limits.user_agent
            session.headers["Accept"] = _ACCEPT
        adapter = GuardedAdapter(
            policy, pool_connections=max(10, concurrency), pool_maxsize=max(per_host, 4)
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        # On our own session the Accept header is a session default; an injected session
        # gets it per request (requests merges those headers on every call, which costs
        # CPU, and the caller's session headers are left alone).
        self._headers = None if self._own_session else {"Accept": _ACCEPT}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = lock_folder(self.out_dir, lock_timeout)
        try:
            self._images = self.out_dir.resolve() / _IMAGES
            self._partial = self.out_dir.resolve() / _PARTIAL
            self._partial.mkdir(exist_ok=True)
            self.manifest = ImageManifest(self.out_dir / MANIFEST_NAME)
        except BaseException:
            self._lock.release()
            raise
        self._near: NearIndex | None = None
        self._made_dirs: set[Path] = set()
        self._recent: OrderedDict[str, ImageRecord] = OrderedDict()
        self._tmp_names = itertools.count()
        self._fetch_lock = threading.Lock()
        self._watchdog = Watchdog()
        self.memory_budget = MemoryBudget(limits.decode_memory)
        """The budget every decode of this downloader reserves from (``peak`` etc.)."""
        self._closed = False
        self._clean_partial()

    # -- lifecycle -----------------------------------------------------------------------

    def _clean_partial(self) -> None:
        # Called with the folder lock held: no live process owns any of these.
        for leftover in self._partial.glob("*.part"):
            leftover.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the manifest and, when the downloader built it, the session (safe twice)."""
        if self._closed:
            return
        self._closed = True
        if self._own_session:
            self._session.close()
        self._watchdog.close()
        self.manifest.close()
        (self.out_dir / OWNER_NAME).unlink(missing_ok=True)
        self._lock.release()

    def __repr__(self) -> str:
        return f"ImageDownloader({str(self.out_dir)!r}, concurrency={self.concurrency})"

    # -- the run -------------------------------------------------------------------------

    def fetch(
        self,
        posts: Iterable[ImagePost],
        *,
        retry: RetryArg = DEFAULT,
        timeout: float | None = None,
    ) -> Iterator[ImageRecord]:
        """Download every media item of ``posts``, yielding records as they complete.

        Posts are read lazily, a bounded window ahead (four times ``concurrency`` items),
        so memory does not grow with the number of posts; records come in completion
        order. Items already done in the manifest are not fetched again: their stored
        record is yielded. A post's preview items (``MediaItem.is_preview``) are fallbacks:
        fetched only when none of its other items ended ok (deleted, placeholder, failed),
        else recorded as skipped. No single item's failure raises: it is recorded.

        Args:
            posts: Posts from the collect step (any iterable, e.g. a generator).
            retry: Retry policy per item; :data:`DEFAULT` for the downloader's.
            timeout: Connect and read timeout in seconds for each request; None for the
                limits' ``connect_timeout`` and ``read_timeout``.

        Yields:
            One record per media item, its row already committed to the manifest.

        Raises:
            ConfigError: The downloader is closed, or another ``fetch`` of it is running.
        """
        if self._closed:
            raise ConfigError("the ImageDownloader is closed")
        if not self._fetch_lock.acquire(blocking=False):
            raise ConfigError("one ImageDownloader runs one fetch at a time")
        try:
            policy = resolve_retry(retry, self._retry)
            warm_up()
            timeouts = (
                (timeout, timeout)
                if timeout is not None
                else (self.limits.connect_timeout, self.limits.read_timeout)
            )
            yield from self._run(iter(posts), policy, timeouts)
        finally:
            self._fetch_lock.release()

    def _near_index(self) -> NearIndex:
        if self._near is None:
            index = NearIndex(self.near_duplicate_distance)
            for phash, group in self.manifest.phashes():
                index.add(phash, group)
            self._near = index
        return self._near

    def _run(
        self,
        posts: Iterator[ImagePost],
        policy: RetryPolicy | None,
        timeouts: tuple[float, float],
    ) -> Iterator[ImageRecord]:
        lookahead = 4 * self.concurrency
        # Shared with the workers, under `lock`: the tasks waiting per host (a dict in
        # round-robin order), requests in flight per host, workers running, and whether
        # the run is stopping. A worker that finishes an item takes the next one itself,
        # so a slot never waits for this (consumer) thread to wake up and commit: with
        # the consumer handing out every task, about 24 of 32 slots were busy on average
        # in the 500-photo benchmark.
        lock = threading.Lock()
        waiting: dict[str, deque[_Task]] = {}
        n_waiting = 0
        active: dict[str, int] = {}
        workers = 0
        stopping = False
        # The consumer's own: tasks enqueued and not yet committed, post bookkeeping.
        outstanding = 0
        states: dict[str, _PostState] = {}
        in_flight_keys: set[str] = set()
        ready: deque[ImageRecord] = deque()
        finished: queue.SimpleQueue[tuple[_Task, _Outcome | BaseException]] = queue.SimpleQueue()
        exhausted = False
        # On a manifest that was empty when the run began nothing can be done yet: skip
        # a query per item (a key repeated in the input is then fetched again).
        fresh = len(self.manifest) == 0

        def enqueue(task: _Task) -> None:
            nonlocal n_waiting, outstanding
            with lock:
                waiting.setdefault(task.host, deque()).append(task)
                n_waiting += 1
            in_flight_keys.add(task.key)
            outstanding += 1

        def take() -> _Task | None:
            """The next task of a host under its cap (call with `lock` held)."""
            nonlocal n_waiting
            for host in waiting:
                if active.get(host, 0) < self.per_host:
                    tasks = waiting.pop(host)
                    task = tasks.popleft()
                    if tasks:
                        waiting[host] = tasks  # to the back: hosts take turns
                    n_waiting -= 1
                    active[host] = active.get(host, 0) + 1
                    return task
            return None

        def work(task: _Task) -> None:
            """A worker: download items until none can be taken, hand each to the consumer."""
            nonlocal workers
            next_task: _Task | None = task
            while next_task is not None:
                task = next_task
                result: _Outcome | BaseException
                try:
                    result = self._download(task, policy, timeouts, not fresh)
                except BaseException as exc:  # noqa: BLE001 - the consumer raises it
                    result = exc
                with lock:
                    active[task.host] -= 1
                    if not active[task.host]:
                        del active[task.host]
                    next_task = None if stopping else take()
                    if next_task is None:
                        workers -= 1
                finished.put((task, result))

        def settle(state: _PostState) -> None:
            """All non-preview items of a post are done: fetch or skip its previews."""
            for task in state.previews:
                if state.any_ok:
                    stored = None if fresh else self._done(task.key)
                    if stored is None:
                        skipped = _Outcome(
                            status=RecordStatus.SKIPPED,
                            reason="preview not needed: the post's own image was fetched",
                        )
                        stored = self._record(task, skipped)
                    ready.append(stored)
                    in_flight_keys.discard(task.key)
                else:
                    enqueue(task)
            state.previews = []

        def intake(post: ImagePost) -> None:
            state = _PostState(post)
            has_originals = any(not item.is_preview for item in post.media)
            for index, item in enumerate(post.media):
                task = _Task(post, index, item)
                if task.key in in_flight_keys:
                    continue
                if item.is_preview and has_originals:
                    in_flight_keys.add(task.key)
                    state.previews.append(task)
                    continue
                state.pending += 1
                enqueue(task)
            if state.pending:
                states[post.id] = state
            else:
                settle(state)

        def submit(executor: ThreadPoolExecutor) -> None:
            """Start workers while there are idle slots and tasks under their host's cap."""
            nonlocal workers
            while True:
                with lock:
                    if workers >= self.concurrency:
                        return
                    task = take()
                    if task is None:
                        return
                    workers += 1
                executor.submit(work, task)

        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="redditvision-download")
        try:
            while True:
                while not exhausted and outstanding < lookahead and len(ready) < lookahead:
                    try:
                        post = next(posts)
                    except StopIteration:
                        exhausted = True
                        break
                    intake(post)
                submit(executor)
                while ready:
                    yield ready.popleft()
                if not outstanding:
                    if exhausted:
                        return
                    continue
                # Everything that completed meanwhile is committed in one transaction.
                done = [finished.get()]
                while True:
                    try:
                        done.append(finished.get_nowait())
                    except queue.Empty:
                        break
                with self.manifest.transaction():
                    for task, result in done:
                        outstanding -= 1
                        if isinstance(result, BaseException):
                            raise result
                        outcome = result
                        record = outcome.stored or self._commit(task, outcome)
                        in_flight_keys.discard(task.key)
                        ready.append(record)
                        state = states.get(task.post.id)
                        if state is not None and not task.item.is_preview:
                            state.pending -= 1
                            state.any_ok = state.any_ok or record.status in (
                                RecordStatus.OK,
                                RecordStatus.DUPLICATE,
                            )
                            if state.pending == 0:
                                del states[task.post.id]
                                settle(state)
        finally:
            with lock:
                stopping = True  # workers finish the item in hand and take no other
            executor.shutdown(wait=True, cancel_futures=True)
            # Files of outcomes never committed stay under their content address; the
            # next run adopts them.

    def _done(self, key: str, *, snapshot: bool = False) -> ImageRecord | None:
        # Worker threads read committed rows on their own connection (private API of
        # our own manifest module).
        record = self.manifest._snapshot_get(key) if snapshot else self.manifest.get(key)
        if record is None or record.status not in _DONE:
            return None
        if record.status in (RecordStatus.OK, RecordStatus.DUPLICATE) and (
            record.path is None or not record.path.is_file()
        ):
            return None  # the file was deleted: fetch again
        return record

    # -- one item, in a worker thread ----------------------------------------------------

    def _download(
        self,
        task: _Task,
        policy: RetryPolicy | None,
        timeouts: tuple[float, float],
        check_done: bool,
    ) -> _Outcome:
        if check_done:
            stored = self._done(task.key, snapshot=True)
            if stored is not None:
                return _Outcome(status=stored.status, stored=stored)
        attempts = 0
        deadline = time.monotonic() + self.limits.deadline

        def attempt() -> _Body:
            nonlocal attempts
            attempts += 1
            url = task.item.url
            with self._watchdog.watch(deadline) as watch:
                remaining = watch.remaining()
                if remaining <= 0:
                    raise self._late(url, 0)
                # No single wait may outlast the deadline either.
                bounded = (min(timeouts[0], remaining), min(timeouts[1], remaining))
                try:
                    body = self._get(url, bounded, watch)
                except Exception as exc:
                    if watch.expired or isinstance(exc, DeadlineExceededError):
                        raise self._late(url, watch.received) from exc
                    raise
                if watch.expired:  # the cut connection looked like a clean end
                    self._discard(body)
                    raise self._late(url, watch.received)
                return body

        body: _Body | None = None
        try:
            check_url(task.item.url)
            body = attempt() if policy is None else policy.call(attempt)
            if body.sha256 in self.limits.placeholder_sha256:
                raise _PlaceholderError(f"{body.final_url} (a known placeholder picture)")
            image = verify_image(body.tmp, self.limits, self.memory_budget)
        except _PlaceholderError as exc:
            self._discard(body)
            return _Outcome(
                status=RecordStatus.MISSING,
                reason=f"deleted image: the host serves a placeholder ({exc.where})",
                attempts=attempts,
            )
        except UnsafeURLError as exc:
            self._discard(body)
            return _Outcome(status=RecordStatus.FAILED, reason=exc.message, attempts=attempts)
        except DownloadError as exc:
            self._discard(body)
            return _Outcome(status=RecordStatus.FAILED, reason=str(exc), attempts=attempts)
        except Exception as exc:  # one bad item never sinks a run
            logger.exception("unexpected error downloading %s", task.item.url)
            self._discard(body)
            return _Outcome(
                status=RecordStatus.FAILED,
                reason=f"unexpected {type(exc).__name__}: {exc}",
                attempts=attempts,
            )
        # Rename to the content address here, in the worker: the consumer thread only
        # touches the manifest. Same bytes give the same name, so a race is harmless.
        ext = EXTENSIONS.get(image.format, image.format.lower())
        final = self._images / body.sha256[:2] / f"{body.sha256}.{ext}"
        if final.parent not in self._made_dirs:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(final.parent)
        os.replace(body.tmp, final)
        original = self.manifest._snapshot_find_sha256(body.sha256)
        return _Outcome(
            original=original,
            status=RecordStatus.OK,
            path=final,
            sha256=body.sha256,
            size=body.size,
            image=image,
            final_url=body.final_url,
            attempts=attempts,
        )

    @staticmethod
    def _discard(body: _Body | None) -> None:
        if body is not None:
            body.tmp.unlink(missing_ok=True)

    def _late(self, url: str, received: int) -> DownloadError:
        return DownloadError(
            f"{url} did not finish within the deadline of {self.limits.deadline:g} s "
            f"(DownloadLimits.deadline; {received:,} bytes received); not retried",
            service="http",
        )

    def _get(self, url: str, timeouts: tuple[float, float], watch: Watch) -> _Body:
        """One attempt: follow redirects by hand (each hop checked), stream to a file.

        The body is read with ``read1`` (whatever has arrived, up to a chunk), so the
        deadline and the transfer rate are checked however slowly the bytes come.
        """
        limits = self.limits
        current = url
        hops = 0
        while True:
            check_url(current)
            if is_placeholder_url(current, limits):
                raise _PlaceholderError(current)
            try:
                response = self._session.get(
                    current,
                    stream=True,
                    allow_redirects=False,
                    timeout=timeouts,
                    headers=self._headers,
                )
            except requests.RequestException as exc:
                raise translate(exc, current) from exc
            if response.status_code in _REDIRECT_STATUS and "location" in response.headers:
                target = self._session.get_redirect_target(response) or ""
                response.close()
                hops += 1
                if hops > limits.max_redirects:
                    raise DownloadError(
                        f"more than {limits.max_redirects} redirects from {url} "
                        "(DownloadLimits.max_redirects)",
                        service="http",
                        status=response.status_code,
                    )
                current = urljoin(current, target)
                continue
            break
        with response:
            check_status(response, current)
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limits.max_bytes:
                raise DownloadError(
                    f"{current} announces {int(length):,} bytes, over the limit of "
                    f"{limits.max_bytes:,} (DownloadLimits.max_bytes)",
                    service="http",
                )
            tmp = self._partial / f"{os.getpid()}-{next(self._tmp_names)}.part"
            digest = hashlib.sha256()
            size = 0
            started = time.monotonic()
            min_rate = limits.min_bytes_per_second
            raw = response.raw
            try:
                with tmp.open("wb") as handle:
                    while True:
                        try:
                            chunk = raw.read1(_CHUNK, decode_content=True)
                        except (urllib3.exceptions.HTTPError, OSError) as exc:
                            raise translate_raw(exc, current) from exc
                        if not chunk:
                            break
                        size += len(chunk)
                        watch.received = size
                        if size > limits.max_bytes:
                            raise DownloadError(
                                f"{current} sent more than {limits.max_bytes:,} bytes "
                                "(DownloadLimits.max_bytes); aborted",
                                service="http",
                            )
                        digest.update(chunk)
                        handle.write(chunk)
                        now = time.monotonic()
                        if now >= watch.deadline:
                            watch.expired = True
                            raise DeadlineExceededError
                        elapsed = now - started
                        if min_rate and elapsed >= limits.rate_grace and size < min_rate * elapsed:
                            raise DownloadError(
                                f"{current} sent {size:,} bytes in {elapsed:.1f} s, "
                                f"{size / elapsed:,.0f} bytes/s, slower than the minimum of "
                                f"{min_rate:,} bytes/s (DownloadLimits.min_bytes_per_second); "
                                "aborted",
                                service="http",
                            )
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            encoded = response.headers.get("Content-Encoding", "identity") != "identity"
            if length is not None and length.isdigit() and not encoded and size < int(length):
                tmp.unlink(missing_ok=True)
                raise DownloadError(
                    f"{current} was cut off after {size:,} of {int(length):,} bytes",
                    service="http",
                    transient=True,
                )
        return _Body(tmp=tmp, sha256=digest.hexdigest(), size=size, final_url=current)

    # -- committing, in the consumer's thread --------------------------------------------

    def _record(self, task: _Task, outcome: _Outcome, **fields: object) -> ImageRecord:
        post = task.post
        record = ImageRecord(
            post_id=post.id,
            index=task.index,
            url=task.item.url,
            status=outcome.status,
            reason=outcome.reason,
            subreddit=post.subreddit,
            title=post.title,
            author=post.author,
            flair_text=post.flair_text,
            permalink=post.permalink,
            **fields,  # type: ignore[arg-type]
        )
        self.manifest.put(record, final_url=outcome.final_url, attempts=outcome.attempts)
        return record

    def _commit(self, task: _Task, outcome: _Outcome) -> ImageRecord:
        if outcome.status is not RecordStatus.OK:
            return self._record(task, outcome)
        assert outcome.path is not None
        assert outcome.sha256 is not None
        assert outcome.image is not None
        image = outcome.image
        common = {
            "sha256": outcome.sha256,
            "phash": image.phash,
            "width": image.width,
            "height": image.height,
            "format": image.format,
            "size_bytes": outcome.size,
        }
        # The worker looked up rows committed before it finished; rows committed since
        # are among the recent ones, remembered here (more than can be in flight).
        original = self._recent.get(outcome.sha256) or outcome.original
        if (
            original is not None
            and original.key != task.key
            and original.path is not None
            and original.path.is_file()
        ):
            return self._record(
                task,
                attrs.evolve(
                    outcome,
                    status=RecordStatus.DUPLICATE,
                    reason=f"same bytes as {original.key} (post {original.post_id})",
                ),
                path=original.path,
                duplicate_of=original.key,
                near_duplicate_group=original.near_duplicate_group,
                **common,
            )
        near = self._near_index()
        group = near.match(image.phash)
        if group is None:
            group = task.key
        near.add(image.phash, group)
        record = self._record(
            task,
            outcome,
            path=outcome.path,
            near_duplicate_group=group,
            **common,
        )
        self._recent[outcome.sha256] = record
        while len(self._recent) > 8 * self.concurrency + 64:
            self._recent.popitem(last=False)
        return record
