"""Upload a dataset to Cloud Storage with ``transfer_manager``; the import file goes last."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from redditvision._closing import Closeable
from redditvision._google import is_transient_google, translate_google
from redditvision._import_formats import IMPORT_FILE_NAMES, render_import_file
from redditvision.errors import ConfigError, DatasetError, StorageError
from redditvision.models import DatasetLocation, LabeledDataset
from redditvision.retry import DEFAULT, RetryArg, RetryPolicy, call_with_retry, resolve_retry
from redditvision.storage._common import (
    ProgressCallback,
    UploadResult,
    _Item,
    _label_map_json,
    _prepare,
    logger,
)

if TYPE_CHECKING:
    from google.cloud import storage

__all__ = ["DEFAULT_STORAGE_RETRY", "GcsDatasetWriter"]

DEFAULT_STORAGE_RETRY = RetryPolicy(on=is_transient_google, attempts=5, timeout=300.0)
"""Retry of idempotent Cloud Storage calls: 5 attempts within 300 s, on 408/429/5xx and
connection errors (the google-cloud-storage retry is turned off underneath: one layer)."""

_GCS_FORMATS = ("vertex_csv", "vertex_jsonl", "automl_csv")


class GcsDatasetWriter(Closeable):
    """Uploads a dataset to a Cloud Storage bucket and writes its import file.

    Object names are ``{prefix}/{label}/{sha256}.{ext}`` with the content type from the
    extension. A run lists the objects under the prefix once, skips those whose MD5
    matches, uploads the rest in batches through
    ``transfer_manager.upload_many`` (threads) with ``if_generation_match=0``, and only
    then writes ``label_map.json`` and the import file. A run that is killed, or whose
    connection drops, leaves no import file pointing at missing images; running it again
    uploads only what is missing.

    Args:
        client: The ``google.cloud.storage.Client`` (injected; see :meth:`from_env`).
        bucket: Bucket name, without ``gs://``.
        prefix: Object name prefix, without leading or trailing ``/`` (default
            ``"redditvision"``); ``""`` writes at the bucket root.
        retry: Policy for idempotent calls (listing, conditional uploads, the import
            file); :data:`~redditvision.retry.DEFAULT` is :data:`DEFAULT_STORAGE_RETRY`,
            ``None`` disables retries.
        max_workers: Upload threads (default 8; transfer_manager's own default is 8).
        batch_size: Images per ``upload_many`` call (default 64); progress is reported
            and transient failures retried per batch.
        timeout: Seconds per HTTP request (default 60).
    """

    def __init__(
        self,
        *,
        client: storage.Client,
        bucket: str,
        prefix: str = "redditvision",
        retry: RetryArg = DEFAULT,
        max_workers: int = 8,
        batch_size: int = 64,
        timeout: float | None = 60.0,
    ) -> None:
        bucket = bucket.removeprefix("gs://").strip("/")
        if not bucket or "/" in bucket:
            raise ConfigError(
                f"bucket {bucket!r} is not a bucket name; give the name alone, e.g. my-bucket, "
                "and the folder with prefix="
            )
        self._client = client
        self._bucket_name = bucket
        self._prefix = prefix.strip("/")
        self._retry = resolve_retry(retry, DEFAULT_STORAGE_RETRY)
        self._max_workers = max_workers
        self._batch_size = max(1, batch_size)
        self._timeout = timeout
        self._owns_client = False
        self._closed = False

    @classmethod
    def from_env(
        cls,
        *,
        bucket: str,
        prefix: str = "redditvision",
        project: str | None = None,
        retry: RetryArg = DEFAULT,
    ) -> GcsDatasetWriter:
        """Build a writer with a client from Application Default Credentials.

        ``google.cloud.storage.Client`` honours ``STORAGE_EMULATOR_HOST`` (with its
        ``http://`` scheme, e.g. ``http://127.0.0.1:9023``): it then talks to the
        emulator with anonymous credentials.

        Args:
            bucket: Bucket name.
            prefix: Object name prefix (default ``"redditvision"``).
            project: Google Cloud project, default from the environment.
            retry: Retry policy (see the class).

        Returns:
            The writer; it closes its client on :meth:`close`.

        Raises:
            ConfigError: No credentials were found (run ``gcloud auth
                application-default login`` or set ``GOOGLE_APPLICATION_CREDENTIALS``).
        """
        from google.auth import exceptions as auth_exceptions
        from google.cloud import storage

        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator and not emulator.startswith(("http://", "https://")):
            raise ConfigError(
                f"STORAGE_EMULATOR_HOST={emulator!r} needs a scheme, e.g. http://{emulator}"
            )
        try:
            client = storage.Client(project=project)
        except auth_exceptions.DefaultCredentialsError as exc:
            raise ConfigError(
                "no Google Cloud credentials found; run `gcloud auth application-default "
                "login` or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from exc
        writer = cls(client=client, bucket=bucket, prefix=prefix, retry=retry)
        writer._owns_client = True
        return writer

    @property
    def uri(self) -> str:
        """The dataset root, ``gs://bucket/prefix``."""
        return f"gs://{self._bucket_name}/{self._prefix}".rstrip("/")

    def __repr__(self) -> str:
        return f"GcsDatasetWriter(uri={self.uri!r})"

    def close(self) -> None:
        """Close the client when this writer built it (:meth:`from_env`); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            self._client.close()

    def write(
        self,
        dataset: LabeledDataset,
        *,
        import_format: str = "vertex_csv",
        extra_formats: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        retry: RetryArg = DEFAULT,
        timeout: float | None = None,
    ) -> UploadResult:
        """Upload the images that are not there yet, then write the import file(s).

        Args:
            dataset: The dataset (split it first so the import file carries ML use).
            import_format: ``"vertex_csv"`` (default), ``"vertex_jsonl"`` or
                ``"automl_csv"``.
            extra_formats: More import formats to write beside it.
            progress: Called with (done, total) images after each batch.
            retry: Retry policy for this call (default: the writer's).
            timeout: Seconds per HTTP request for this call (default: the writer's).

        Returns:
            Counts, bytes and the :class:`~redditvision.models.DatasetLocation`.

        Raises:
            DatasetError: Empty dataset or unknown import format.
            StorageError: The bucket does not exist or may not be written (not
                transient); or the service stayed unreachable through the retries
                (``transient=True``; run again to resume: what was uploaded stays).
        """
        from google.api_core import exceptions as core_exceptions
        from google.cloud.storage import transfer_manager

        formats = [import_format, *[f for f in extra_formats if f != import_format]]
        for fmt in formats:
            if fmt not in _GCS_FORMATS:
                raise DatasetError(
                    f"import format {fmt!r} cannot be written to Cloud Storage; choose one of "
                    f"{', '.join(_GCS_FORMATS)}"
                )
        policy = resolve_retry(retry, self._retry)
        request_timeout = timeout if timeout is not None else self._timeout
        items, failed = _prepare(dataset, self._prefix)
        bucket = self._client.bucket(self._bucket_name)
        existing = self._list_existing(policy, request_timeout)
        total = len(items)
        done = 0
        skipped = 0
        pending: dict[str, _Item] = {}
        replace: list[tuple[_Item, int]] = []
        for item in items:
            if item.name in pending:
                done += 1
                continue
            present = existing.get(item.name)
            if present is None:
                pending[item.name] = item
            elif present[0] == item.md5:
                skipped += 1
                done += 1
            else:
                replace.append((item, present[1]))
        logger.info(
            "%s: %d images, %d already there, %d to upload",
            self.uri,
            total,
            skipped,
            len(pending) + len(replace),
        )
        if progress is not None:
            progress(done, total)
        state = {"uploaded": 0, "bytes": 0, "skipped": skipped}
        bad: dict[str, tuple[str, str]] = {}

        def upload_batch(batch: list[_Item]) -> None:
            todo = [item for item in batch if item.name in pending]
            pairs = []
            for item in todo:
                blob = bucket.blob(item.name)
                blob.content_type = item.content_type
                pairs.append((str(item.image.path), blob))
            results = transfer_manager.upload_many(
                pairs,
                upload_kwargs={"if_generation_match": 0, "retry": None, "timeout": request_timeout},
                worker_type=transfer_manager.THREAD,
                max_workers=self._max_workers,
                raise_exception=False,
            )
            first_transient: BaseException | None = None
            for item, result in zip(todo, results, strict=True):
                if result is None:
                    state["uploaded"] += 1
                    state["bytes"] += item.size
                elif isinstance(result, core_exceptions.PreconditionFailed):
                    # Content-addressed: another run created the same object meanwhile.
                    state["skipped"] += 1
                elif is_transient_google(result):
                    first_transient = first_transient or result
                    continue
                else:
                    error = translate_google(
                        result, StorageError, service="storage", action=f"uploading {item.name}"
                    )
                    bucket_error = self._bucket_error(result)
                    if bucket_error is not None:
                        raise bucket_error from result
                    bad[item.name] = (str(item.image.path), str(error))
                del pending[item.name]
            if first_transient is not None:
                raise translate_google(
                    first_transient,
                    StorageError,
                    service="storage",
                    action=f"uploading to {self.uri} ({len([i for i in todo if i.name in pending])}"
                    " image(s) left in this batch; run again to resume)",
                ) from first_transient

        queue = list(pending.values())
        for start in range(0, len(queue), self._batch_size):
            batch = queue[start : start + self._batch_size]
            call_with_retry(policy, upload_batch, batch)
            done += len(batch)
            if progress is not None:
                progress(done, total)
        for item, generation in replace:
            self._replace(bucket, item, generation, policy, request_timeout)
            state["uploaded"] += 1
            state["bytes"] += item.size
            done += 1
            if progress is not None:
                progress(done, total)
        failed.extend(bad.values())
        failed_names = set(bad)
        written = [item for item in items if item.name not in failed_names]
        if not written:
            raise StorageError(
                f"no image of the dataset could be written to {self.uri}: "
                f"{'; '.join(f'{p}: {r}' for p, r in failed[:5])}",
                service="storage",
            )
        location = self._write_import_files(dataset, written, formats, policy, request_timeout)
        return UploadResult(
            location=location,
            uploaded=state["uploaded"],
            skipped_unchanged=state["skipped"],
            bytes=state["bytes"],
            failed=tuple(failed),
        )

    def upload(
        self,
        dataset: LabeledDataset,
        *,
        import_format: str = "vertex_csv",
        extra_formats: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        retry: RetryArg = DEFAULT,
        timeout: float | None = None,
    ) -> UploadResult:
        """Deprecated alias of :meth:`write` (the same operation under its old name).

        Returns:
            What :meth:`write` returns.
        """
        warnings.warn(
            "GcsDatasetWriter.upload() is deprecated; call write(), which returns the same "
            "UploadResult",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.write(
            dataset,
            import_format=import_format,
            extra_formats=extra_formats,
            progress=progress,
            retry=retry,
            timeout=timeout,
        )

    def _bucket_error(self, exc: BaseException) -> StorageError | None:
        """The clear error for a missing bucket (404) or a refused one (403), else None."""
        from google.api_core import exceptions as core_exceptions

        if isinstance(exc, core_exceptions.NotFound):
            message = (
                f"bucket {self._bucket_name!r} does not exist; create it (gcloud storage "
                f"buckets create gs://{self._bucket_name}) or pass an existing --bucket"
            )
        elif isinstance(exc, core_exceptions.Forbidden):
            message = (
                f"no permission to write gs://{self._bucket_name}; grant the account "
                "roles/storage.objectAdmin on the bucket"
            )
        else:
            return None
        code = getattr(exc, "code", None)
        return StorageError(message, service="storage", status=int(code) if code else None)

    def _list_existing(
        self, policy: RetryPolicy | None, timeout: float | None
    ) -> dict[str, tuple[str | None, int]]:
        from google.api_core import exceptions as core_exceptions

        prefix = f"{self._prefix}/" if self._prefix else ""

        def listing() -> dict[str, tuple[str | None, int]]:
            found: dict[str, tuple[str | None, int]] = {}
            blobs = self._client.list_blobs(
                self._bucket_name, prefix=prefix, retry=None, timeout=timeout
            )
            for blob in blobs:
                found[blob.name] = (blob.md5_hash, int(blob.generation or 0))
            return found

        def translated() -> dict[str, tuple[str | None, int]]:
            try:
                return listing()
            except core_exceptions.GoogleAPICallError as exc:
                error = translate_google(
                    exc, StorageError, service="storage", action=f"listing {self.uri}"
                )
                bucket_error = self._bucket_error(exc)
                if bucket_error is not None:
                    raise bucket_error from exc
                raise error from exc
            except Exception as exc:
                if is_transient_google(exc):
                    raise translate_google(
                        exc, StorageError, service="storage", action=f"listing {self.uri}"
                    ) from exc
                raise

        return call_with_retry(policy, translated)

    def _replace(
        self,
        bucket: storage.Bucket,
        item: _Item,
        generation: int,
        policy: RetryPolicy | None,
        timeout: float | None,
    ) -> None:
        from google.api_core import exceptions as core_exceptions

        def put() -> None:
            blob = bucket.blob(item.name)
            try:
                blob.upload_from_filename(
                    str(item.image.path),
                    content_type=item.content_type,
                    if_generation_match=generation,
                    retry=None,
                    timeout=timeout,
                )
            except core_exceptions.PreconditionFailed:
                return  # replaced by another run meanwhile; names are content-addressed
            except Exception as exc:
                if isinstance(exc, core_exceptions.GoogleAPICallError) or is_transient_google(exc):
                    raise translate_google(
                        exc, StorageError, service="storage", action=f"replacing {item.name}"
                    ) from exc
                raise

        call_with_retry(policy, put)

    def _write_import_files(
        self,
        dataset: LabeledDataset,
        written: list[_Item],
        formats: list[str],
        policy: RetryPolicy | None,
        timeout: float | None,
    ) -> DatasetLocation:
        from google.api_core import exceptions as core_exceptions

        bucket = self._client.bucket(self._bucket_name)
        uris = {id(item.image): f"gs://{self._bucket_name}/{item.name}" for item in written}
        written_dataset = attrs.evolve(dataset, images=tuple(item.image for item in written))

        def put(name: str, text: str, content_type: str) -> None:
            blob = bucket.blob(name)
            try:
                blob.upload_from_string(
                    text.encode("utf-8"),
                    content_type=content_type,
                    retry=None,
                    timeout=timeout,
                )
            except Exception as exc:
                if isinstance(exc, core_exceptions.GoogleAPICallError) or is_transient_google(exc):
                    raise translate_google(
                        exc, StorageError, service="storage", action=f"writing {name}"
                    ) from exc
                raise

        def object_name(file_name: str) -> str:
            return f"{self._prefix}/{file_name}" if self._prefix else file_name

        call_with_retry(
            policy,
            put,
            object_name("label_map.json"),
            _label_map_json(written_dataset),
            "application/json",
        )
        import_uris: dict[str, str] = {}
        for fmt in reversed(formats):  # the main import file last of all
            text = render_import_file(written_dataset, fmt, uri_for=lambda image: uris[id(image)])
            name = object_name(IMPORT_FILE_NAMES[fmt])
            content_type = "text/csv" if fmt.endswith("csv") else "application/jsonl"
            call_with_retry(policy, put, name, text, content_type)
            import_uris[fmt] = f"gs://{self._bucket_name}/{name}"
        return DatasetLocation(
            uri=self.uri,
            import_file_uri=import_uris[formats[0]],
            import_format=formats[0],
            images=len(written_dataset.images),
            labels=written_dataset.labels,
            label_map=dict(dataset.label_map),
            extra_import_files={fmt: import_uris[fmt] for fmt in formats[1:]},
        )
