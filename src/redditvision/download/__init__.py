"""The download step: fetch the images of posts safely, concurrently, and only once.

:class:`ImageDownloader` turns :class:`~redditvision.models.ImagePost` objects from the
collect step into verified files and :class:`~redditvision.models.ImageRecord` rows of an
:class:`~redditvision.manifest.ImageManifest`::

    from redditvision import DownloadLimits, ImageDownloader, RecordStatus

    with ImageDownloader("images", limits=DownloadLimits(max_bytes=20_000_000)) as downloader:
        for record in downloader.fetch(posts):
            if record.status is RecordStatus.OK:
                print(record.path, record.width, record.height)

What it guarantees, in order of the flow:

* **Network safety**: http and https only; each hostname is resolved by the downloader
  and refused when any address is loopback, private, link-local (169.254.169.254),
  multicast, reserved or unspecified, on the link and on every redirect hop, at connect
  time (no DNS-rebinding gap); at most ``max_redirects`` hops.
* **Limits and verification** (:class:`DownloadLimits`): size cap while streaming,
  pixel cap from the header, format sniffed from the bytes and verified by Pillow; HTML
  pages, SVG, empty and truncated bodies are refused with a reason.
* **Bounded time and memory**: every item has an overall deadline and a minimum transfer
  rate, enforced while it streams; the decodes running at once share a
  :class:`MemoryBudget` (``DownloadLimits.decode_memory``); one downloader holds an output
  folder at a time (``out_dir/.download.lock``).
* **Deleted images**: imgur's ``removed.png`` redirect and similar placeholders become
  ``missing``; the post's preview (``MediaItem.is_preview``) is fetched instead.
* **Retries** (:data:`DEFAULT_DOWNLOAD_RETRY`): the statuses of
  :data:`redditvision.retry.RETRY_HTTP_STATUSES` (408, 429, 500, 502, 503, 504), resets,
  timeouts and cut-off bodies are transient; ``Retry-After`` is honoured up to a cap;
  other 4xx are final. A failure is recorded, never raised.
* **Content-addressed files**, exact duplicates (SHA-256) and near-duplicate groups
  (perceptual hash), across posts and runs; a manifest that makes each run resumable.
"""

from __future__ import annotations

from redditvision.download._budget import MemoryBudget
from redditvision.download._downloader import DEFAULT_DOWNLOAD_RETRY, ImageDownloader
from redditvision.download._limits import DEFAULT_FORMATS, DEFAULT_PLACEHOLDER_URLS, DownloadLimits
from redditvision.download._verify import sniff_format

__all__ = [
    "DEFAULT_DOWNLOAD_RETRY",
    "DEFAULT_FORMATS",
    "DEFAULT_PLACEHOLDER_URLS",
    "DownloadLimits",
    "ImageDownloader",
    "MemoryBudget",
    "sniff_format",
]
