"""Classify new Reddit posts with a trained model: download, predict, summarize, one HTML page.

:func:`classify_posts` takes posts (from :class:`~redditvision.reddit.RedditImageSource`,
a saved listing or a dump), downloads their images with the same
:class:`~redditvision.download.ImageDownloader` and manifest as the ``download`` step
(resumable), asks a :class:`~redditvision.classify.Classifier` (a local model folder, or a
REST endpoint through :meth:`Classifier.from_endpoint
<redditvision.classify.Classifier.from_endpoint>`), and writes into the output folder:

* ``predictions.jsonl`` - one object per media item: post id, permalink, title, author,
  image URL, sha256, the top label and its score, every label's score (the user's label
  names), or the reason the item has no prediction;
* ``summary.json`` - counts per label, a low-confidence bucket (top score under a threshold
  the user sets) and the reasons of what could not be classified;
* ``index.html`` - the posts grouped by predicted label, with thumbnails and links.

A re-run predicts only items not predicted yet (by manifest key and sha256); downloaded
items are not fetched again (the downloader's manifest).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import requests
from PIL import Image

from redditvision.classify import Classifier
from redditvision.download import ImageDownloader
from redditvision.errors import ConfigError, PredictionError, StorageError
from redditvision.models import ImagePost, ImageRecord, RecordStatus

__all__ = [
    "HTML_FILE",
    "PREDICTIONS_FILE",
    "SUMMARY_FILE",
    "ClassifiedItem",
    "PostClassification",
    "classify_posts",
    "write_html",
]

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
"""One JSON object per media item (see :class:`ClassifiedItem`)."""
SUMMARY_FILE = "summary.json"
"""Counts per label, the low-confidence bucket and the reasons of unclassified items."""
HTML_FILE = "index.html"
"""The posts grouped by predicted label."""
THUMBNAILS = "thumbnails"
"""Folder of the page's thumbnails (160 px JPEG, named by the image's sha256)."""
THUMBNAIL_PIXELS = 160
"""Longest side of a thumbnail on the page, in pixels."""

REDDIT = "https://www.reddit.com"

ProgressFn = Callable[[str, int], None]
"""Called as ``progress(stage, count)``: ``("downloaded", 1)``, ``("predicted", n)``."""


@attrs.frozen(kw_only=True)
class ClassifiedItem:
    """One media item of a post and its prediction, or the reason it has none.

    Attributes:
        key: ``"{post_id}:{index}"`` (the manifest's key).
        post_id: The submission id.
        index: Position of the media item in the post.
        subreddit: The subreddit.
        permalink: The post's full URL (``https://www.reddit.com/r/...``).
        title: The post's title.
        author: The author, or None when deleted.
        image_url: The image URL fetched.
        sha256: Hex SHA-256 of the image, or None when not downloaded.
        image: The image file relative to the output folder, or None.
        label: The top label (the user's name), or None when not classified.
        score: The top label's score in ``[0, 1]``, or None.
        scores: Every label's score, best first.
        low_confidence: The top score is under the run's threshold.
        reason: Why there is no prediction (download failure, skipped preview, unreadable
            image), else None.
        generic: Generic labels ``[{"label", "score"}]`` when a generic labeler ran.
    """

    key: str
    post_id: str
    index: int
    subreddit: str = ""
    permalink: str = ""
    title: str = ""
    author: str | None = None
    image_url: str = ""
    sha256: str | None = None
    image: str | None = None
    label: str | None = None
    score: float | None = None
    scores: Mapping[str, float] = attrs.field(factory=dict)
    low_confidence: bool = False
    reason: str | None = None
    generic: tuple[Mapping[str, Any], ...] = ()

    @property
    def classified(self) -> bool:
        """Whether the item has a prediction."""
        return self.label is not None

    def to_json(self) -> dict[str, Any]:
        """The ``predictions.jsonl`` object of this item.

        Returns:
            Every attribute by name; ``scores`` as an object in rank order.
        """
        data = attrs.asdict(self, recurse=False)
        data["scores"] = dict(self.scores)
        data["generic"] = [dict(g) for g in self.generic]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClassifiedItem:
        """Read back one ``predictions.jsonl`` object.

        Args:
            data: The object.

        Returns:
            The item.

        Raises:
            KeyError: ``key``, ``post_id`` or ``index`` is missing.
            TypeError: A field has the wrong type.
        """
        fields = {f.name for f in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["scores"] = dict(values.get("scores") or {})
        values["generic"] = tuple(values.get("generic") or ())
        return cls(**values)


@attrs.frozen(kw_only=True)
class PostClassification:
    """What :func:`classify_posts` did and wrote.

    Attributes:
        out_dir: The output folder.
        predictions_file: ``out_dir/predictions.jsonl``.
        summary_file: ``out_dir/summary.json``.
        html_file: ``out_dir/index.html``, or None when not written.
        items: Every media item seen so far (this run and earlier ones), in key order.
        predicted: Items predicted in this run.
        reused: Items whose earlier prediction was kept.
        threshold: The low-confidence threshold.
        summary: The ``summary.json`` content.
    """

    out_dir: Path
    predictions_file: Path
    summary_file: Path
    html_file: Path | None
    items: tuple[ClassifiedItem, ...]
    predicted: int
    reused: int
    threshold: float
    summary: Mapping[str, Any]


def _permalink(permalink: str) -> str:
    if permalink.startswith(("http://", "https://")):
        return permalink
    return REDDIT + (permalink if permalink.startswith("/") else "/" + permalink)


def _load(path: Path) -> dict[str, ClassifiedItem]:
    found: dict[str, ClassifiedItem] = {}
    if not path.is_file():
        return found
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = ClassifiedItem.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("%s line %d ignored: %s", path, number, exc)
                continue
            found[item.key] = item
    return found


def _base(record: ImageRecord, out_dir: Path) -> dict[str, Any]:
    image: str | None = None
    if record.path is not None:
        try:
            image = Path(record.path).resolve().relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            image = str(record.path)
    return {
        "key": record.key,
        "post_id": record.post_id,
        "index": record.index,
        "subreddit": record.subreddit,
        "permalink": _permalink(record.permalink),
        "title": record.title,
        "author": record.author,
        "image_url": record.url,
        "sha256": record.sha256,
        "image": image,
    }


def _reason(record: ImageRecord) -> str:
    if record.status is RecordStatus.DUPLICATE and record.path is None:
        return f"duplicate of {record.duplicate_of}"
    return f"{record.status.value}: {record.reason or 'no reason recorded'}"


class _Run:
    """One classify run's state: the predictions file, the batch, the counters."""

    def __init__(
        self,
        classifier: Classifier,
        out_dir: Path,
        *,
        threshold: float,
        generic: Any,
        progress: ProgressFn | None,
    ) -> None:
        self.classifier = classifier
        self.out_dir = out_dir
        self.threshold = threshold
        self.generic = generic
        self.progress = progress
        self.items = _load(out_dir / PREDICTIONS_FILE)
        self.by_sha = {
            item.sha256: item for item in self.items.values() if item.classified and item.sha256
        }
        self.pending: list[tuple[dict[str, Any], Path]] = []
        self.waiting: list[dict[str, Any]] = []
        self.predicted = 0
        self.reused = 0
        self.stream = (out_dir / PREDICTIONS_FILE).open("a", encoding="utf-8")

    def close(self) -> None:
        self.stream.close()

    def write(self, item: ClassifiedItem) -> None:
        self.items[item.key] = item
        if item.classified and item.sha256:
            self.by_sha[item.sha256] = item
        self.stream.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")

    def take(self, record: ImageRecord) -> None:
        base = _base(record, self.out_dir)
        earlier = self.items.get(record.key)
        if earlier is not None and earlier.classified and earlier.sha256 == record.sha256:
            self.reused += 1
            return
        if record.status not in (RecordStatus.OK, RecordStatus.DUPLICATE) or record.path is None:
            self.write(ClassifiedItem(**base, reason=_reason(record)))
            return
        same = self.by_sha.get(record.sha256 or "")
        if same is not None:
            # The same bytes were predicted before (a repost, a duplicate): same answer.
            self.write(
                attrs.evolve(same, **base, low_confidence=(same.score or 0.0) < self.threshold)
            )
            self.reused += 1
            return
        if any(pending["sha256"] == record.sha256 for pending, _ in self.pending):
            self.waiting.append(base)  # the same bytes are in this batch already
            return
        self.pending.append((base, Path(record.path)))
        if len(self.pending) >= self.classifier.batch_size:
            self.flush()

    def _item(self, base: dict[str, Any], ranked: Sequence[Any], generic: Any) -> ClassifiedItem:
        top = ranked[0] if ranked else None
        return ClassifiedItem(
            **base,
            label=top.label if top is not None else None,
            score=top.score if top is not None else None,
            scores={p.label: p.score for p in ranked},
            low_confidence=top is None or top.score < self.threshold,
            reason=None if top is not None else "the model returned no label",
            generic=tuple(
                {"label": g.label, "score": g.score} for g in (generic.labels if generic else ())
            ),
        )

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        readable: list[tuple[dict[str, Any], bytes]] = []
        for base, path in batch:
            try:
                readable.append((base, path.read_bytes()))
            except OSError as exc:
                self.write(ClassifiedItem(**base, reason=f"cannot read {path}: {exc.strerror}"))
        if not readable:
            return
        images = [data for _, data in readable]
        try:
            ranked = self.classifier.predict_many(images)
        except PredictionError:
            # One unreadable image must not sink the batch: ask one at a time.
            ranked = []
            for base, data in readable:
                try:
                    ranked.append(self.classifier.predict(data))
                except PredictionError as exc:
                    ranked.append([])
                    base["reason"] = f"prediction failed: {exc.message}"
        generic = self.generic.label(images) if self.generic is not None else [None] * len(images)
        for (base, _), row, labels in zip(readable, ranked, generic, strict=True):
            if "reason" in base:
                self.write(ClassifiedItem(**base))
                continue
            self.write(self._item(base, row, labels))
            self.predicted += 1
        waiting, self.waiting = self.waiting, []
        for base in waiting:
            same = self.by_sha.get(base["sha256"])
            if same is None:
                self.write(ClassifiedItem(**base, reason="prediction failed for the same image"))
            else:
                self.write(attrs.evolve(same, **base))
                self.reused += 1
        self.stream.flush()
        if self.progress is not None:
            self.progress("predicted", len(readable))


def _summary(items: Sequence[ClassifiedItem], threshold: float, run: _Run) -> dict[str, Any]:
    classified = [item for item in items if item.classified]
    confident = Counter(item.label for item in classified if not item.low_confidence)
    low = [item for item in classified if item.low_confidence]
    reasons = Counter((item.reason or "").split(":", 1)[0] for item in items if not item.classified)
    return {
        "items": len(items),
        "posts": len({item.post_id for item in items}),
        "classified": len(classified),
        "predicted_this_run": run.predicted,
        "reused": run.reused,
        "labels": dict(confident.most_common()),
        "low_confidence": {
            "threshold": threshold,
            "count": len(low),
            "labels": dict(Counter(item.label for item in low).most_common()),
        },
        "not_classified": {
            "count": len(items) - len(classified),
            "reasons": dict(reasons.most_common()),
        },
        "model": run.classifier.model.resource,
        "backend": run.classifier.backend.name,
    }


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def classify_posts(
    posts: Iterable[ImagePost],
    classifier: Classifier,
    out_dir: str | os.PathLike[str],
    *,
    downloader: ImageDownloader | None = None,
    session: requests.Session | None = None,
    allow_private_networks: bool = False,
    low_confidence: float = 0.5,
    generic: Any = None,
    html: bool = True,
    progress: ProgressFn | None = None,
) -> PostClassification:
    """Download the images of ``posts``, predict each with ``classifier``, write the results.

    Every media item ends with a prediction or a recorded reason (failed download, skipped
    fallback preview, unreadable image); none raises. Items predicted by an earlier run in
    the same folder keep their prediction and are not sent again; the downloader's
    manifest keeps fetched images from being fetched again.

    Args:
        posts: The posts (any iterable; read lazily).
        classifier: The model: ``Classifier(folder)`` or ``Classifier.from_endpoint(url)``.
        out_dir: The output folder (created): ``images/``, ``manifest.sqlite``,
            ``predictions.jsonl``, ``summary.json``, ``index.html``.
        downloader: The downloader to use (default one built on ``out_dir``).
        session: A ``requests.Session`` for the default downloader (mounted adapters keep
            precedence, as :class:`~redditvision.download.ImageDownloader` says).
        allow_private_networks: For the default downloader: fetch from loopback and
            private addresses (tests, intranets only).
        low_confidence: Items whose top score is under this go to the low-confidence
            bucket (default 0.5), in ``[0, 1]``.
        generic: A :class:`~redditvision.labelers.GenericLabeler` whose top labels are kept
            beside each prediction (default none).
        html: Write ``index.html`` (default True).
        progress: Called as ``progress(stage, count)`` (``"downloaded"``, ``"predicted"``).

    Returns:
        What was done and written.

    Raises:
        ConfigError: ``low_confidence`` is outside ``[0, 1]``.
        StorageError: The output folder cannot be written.
        PredictionError: The model cannot be opened or failed on a whole batch for a
            reason other than one image.
    """
    if not 0.0 <= low_confidence <= 1.0:
        raise ConfigError(f"low_confidence must be in [0, 1], got {low_confidence}")
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    owned = downloader is None
    if downloader is None:
        downloader = ImageDownloader(
            folder, session=session, allow_private_networks=allow_private_networks
        )
    run = _Run(classifier, folder, threshold=low_confidence, generic=generic, progress=progress)
    try:
        for record in downloader.fetch(posts):
            if progress is not None:
                progress("downloaded", 1)
            run.take(record)
        run.flush()
    finally:
        run.close()
        if owned:
            downloader.close()
    items = tuple(sorted(run.items.values(), key=lambda item: (item.post_id, item.index)))
    # Compact: one line per item, the latest answer.
    _write_atomic(
        folder / PREDICTIONS_FILE,
        "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items),
    )
    summary = _summary(items, low_confidence, run)
    _write_atomic(folder / SUMMARY_FILE, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    html_file = write_html(items, folder, summary=summary) if html else None
    return PostClassification(
        out_dir=folder,
        predictions_file=folder / PREDICTIONS_FILE,
        summary_file=folder / SUMMARY_FILE,
        html_file=html_file,
        items=items,
        predicted=run.predicted,
        reused=run.reused,
        threshold=low_confidence,
        summary=summary,
    )


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("redditvision")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "(source tree)"


def _thumbnail(out_dir: Path, item: ClassifiedItem) -> str | None:
    """The item's thumbnail as a ``data:`` URI (cached under ``thumbnails/``), or None."""
    import base64

    if item.image is None or item.sha256 is None:
        return None
    cached = out_dir / THUMBNAILS / f"{item.sha256}.jpg"
    if not cached.is_file():
        source = out_dir / item.image
        try:
            with Image.open(source) as opened:
                opened.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                picture = opened.convert("RGB")
            picture.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=80)
            cached.parent.mkdir(exist_ok=True)
            cached.write_bytes(buffer.getvalue())
        except (OSError, ValueError) as exc:
            logger.info("no thumbnail for %s: %s", item.key, exc)
            return None
    return "data:image/jpeg;base64," + base64.b64encode(cached.read_bytes()).decode("ascii")


def write_html(
    items: Sequence[ClassifiedItem], out_dir: str | os.PathLike[str], *, summary: Mapping[str, Any]
) -> Path:
    """Write ``index.html``: the posts grouped by predicted label, with thumbnails and links.

    Groups: each label (confident predictions, most items first), then the low-confidence
    bucket, then the items without a prediction and their reasons. The page extends the
    report layout (``redditvision/report/templates/base.html``: its styles, sortable tables
    and Content-Security-Policy) and is one file: thumbnails are inlined as ``data:`` URIs
    and no outside request is allowed; every text is escaped (Jinja2 autoescape).

    Args:
        items: The classified items.
        out_dir: The output folder (the page is written there; thumbnails are cached in
            its ``thumbnails/``).
        summary: The ``summary.json`` content (shown at the top).

    Returns:
        The page's path.

    Raises:
        StorageError: The page cannot be written.
    """
    import jinja2

    from redditvision.report.html import CSP

    folder = Path(out_dir)
    # This page's template, and the report layout it extends (base.html, report.css, ...).
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("redditvision", "templates"),
                jinja2.PackageLoader("redditvision.report", "templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    groups: dict[str, list[ClassifiedItem]] = {}
    for item in items:
        if item.classified and not item.low_confidence:
            groups.setdefault(str(item.label), []).append(item)
    ordered = sorted(groups.items(), key=lambda pair: (-len(pair[1]), pair[0]))
    sections: list[dict[str, Any]] = [
        {"title": label, "kind": "label", "items": sorted(rows, key=lambda i: -(i.score or 0))}
        for label, rows in ordered
    ]
    low = [item for item in items if item.classified and item.low_confidence]
    if low:
        sections.append(
            {
                "title": f"low confidence (under {summary['low_confidence']['threshold']:g})",
                "kind": "low",
                "items": sorted(low, key=lambda i: -(i.score or 0)),
            }
        )
    unclassified = [item for item in items if not item.classified]
    if unclassified:
        sections.append({"title": "not classified", "kind": "none", "items": unclassified})
    thumbnails = {item.key: _thumbnail(folder, item) for item in items if item.classified}
    page = env.get_template("predict_posts.html").render(
        title=f"Classified posts: {summary['classified']} of {summary['items']} images",
        csp=CSP,
        version=_version(),
        sections=sections,
        summary=summary,
        thumbnails=thumbnails,
    )
    path = folder / HTML_FILE
    _write_atomic(path, page)
    return path
