"""A retried upload never overwrites: Cloud Storage preconditions, enforced on loopback.

gcp-storage-emulator ignores ``ifGenerationMatch``; these tests run the real client and
:class:`~redditvision.storage.GcsDatasetWriter` against the emulator behind
:class:`harness_gcs.PreconditionLayer`, which enforces it as Cloud Storage does (412
``conditionNotMet``) and loses answers on request.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from google.api_core import exceptions as core_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from harness_gcs import GcsEmulator, PreconditionLayer
from redditvision import LabeledDataset, MLUse, StorageError
from redditvision.models import LabeledImage
from redditvision.storage import GcsDatasetWriter

FOLDERS = {"z3_4_8": "BMW Z4 Convertible 2012", "x_suv": "BMW X5 SUV 2007"}


@pytest.fixture(scope="module")
def small(bmw_photos: Path) -> LabeledDataset:
    """Six real photos of each of two models (12 images), split 4/1/1 per label."""
    uses = [MLUse.TRAINING] * 4 + [MLUse.VALIDATION, MLUse.TEST]
    images = [
        LabeledImage(path=path, label=label, original_label=label, ml_use=use)
        for label, folder in FOLDERS.items()
        for path, use in zip(sorted((bmw_photos / folder).iterdir())[:6], uses, strict=True)
    ]
    return LabeledDataset(images=tuple(images))


def _name(image: LabeledImage, prefix: str) -> str:
    """The writer's content-addressed object name: PREFIX/LABEL/SHA256.jpg."""
    return f"{prefix}/{image.label}/{hashlib.sha256(image.path.read_bytes()).hexdigest()}.jpg"


def _client(url: str) -> storage.Client:
    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )


def _generations(emulator: GcsEmulator, prefix: str) -> dict[str, int]:
    client = emulator.client()
    try:
        return {
            blob.name: int(blob.generation)
            for blob in client.list_blobs("cars", prefix=f"{prefix}/")
            if blob.name.endswith(".jpg")
        }
    finally:
        client.close()


def test_the_layer_refuses_an_upload_whose_generation_precondition_fails(
    gcs_emulator: GcsEmulator, gcs_preconditions: PreconditionLayer
) -> None:
    gcs_emulator.create_bucket("cars")
    client = _client(gcs_preconditions.url)
    try:
        blob = client.bucket("cars").blob("a/one.txt")
        blob.upload_from_string(b"first", if_generation_match=0, retry=None)
        generation = client.bucket("cars").get_blob("a/one.txt").generation
        with pytest.raises(core_exceptions.PreconditionFailed, match="pre-conditions"):
            client.bucket("cars").blob("a/one.txt").upload_from_string(
                b"second", if_generation_match=0, retry=None
            )
        with pytest.raises(core_exceptions.PreconditionFailed):
            client.bucket("cars").blob("a/one.txt").upload_from_string(
                b"third", if_generation_match=generation + 1, retry=None
            )
        assert client.bucket("cars").blob("a/one.txt").download_as_bytes() == b"first"
        # The matching generation replaces it, as Cloud Storage does.
        client.bucket("cars").blob("a/one.txt").upload_from_string(
            b"fourth", if_generation_match=generation, retry=None
        )
        assert client.bucket("cars").blob("a/one.txt").download_as_bytes() == b"fourth"
    finally:
        client.close()
    assert gcs_preconditions.outcomes("a/one.txt") == ["stored", "412", "412", "stored"]


def test_a_retried_upload_after_a_lost_answer_does_not_overwrite_and_is_counted_once(
    small: LabeledDataset, gcs_emulator: GcsEmulator, gcs_preconditions: PreconditionLayer
) -> None:
    gcs_emulator.create_bucket("cars")
    lost = _name(small.images[0], "lost")
    gcs_preconditions.lose_answer(lost)  # stored by the emulator; the client sees a reset
    with GcsDatasetWriter.from_env(bucket="cars", prefix="lost") as writer:
        result = writer.write(small)  # the default policy retries the transient reset
    # The retry carried ifGenerationMatch=0 and was refused: one write, never a second.
    assert gcs_preconditions.outcomes(lost) == ["lost", "412"]
    images = [seen for seen in gcs_preconditions.uploads if seen.name.endswith(".jpg")]
    assert {seen.if_generation_match for seen in images} == {0}
    assert [seen.outcome for seen in images].count("stored") == 11
    # Counted once: 11 written and acknowledged, the lost one found already there.
    assert (result.uploaded, result.skipped_unchanged, result.failed) == (11, 1, ())
    assert result.bytes == sum(image.path.stat().st_size for image in small.images[1:])
    assert set(_generations(gcs_emulator, "lost")) == {_name(i, "lost") for i in small.images}


def test_an_upload_whose_answer_was_lost_resumes_on_the_next_run_without_a_second_write(
    small: LabeledDataset, gcs_emulator: GcsEmulator, gcs_preconditions: PreconditionLayer
) -> None:
    gcs_emulator.create_bucket("cars")
    lost = _name(small.images[3], "resume")
    gcs_preconditions.lose_answer(lost)
    with GcsDatasetWriter.from_env(bucket="cars", prefix="resume", retry=None) as writer:
        # One attempt: the lost answer ends the run with a transient error.
        with pytest.raises(StorageError, match="run again to resume") as failed:
            writer.write(small)
    assert failed.value.transient is True
    before = _generations(gcs_emulator, "resume")
    assert lost in before  # created, although the client never heard so

    with GcsDatasetWriter.from_env(bucket="cars", prefix="resume") as writer:
        again = writer.write(small)
    after = _generations(gcs_emulator, "resume")
    # Nothing already there was written again: the lost one is untouched, same generation.
    assert {name: after[name] for name in before} == before
    assert gcs_preconditions.outcomes(lost) == ["lost"]
    assert again.skipped_unchanged == len(before)
    assert again.uploaded + again.skipped_unchanged == len(small.images)
    assert set(after) == {_name(i, "resume") for i in small.images}
    for name in after:
        assert gcs_preconditions.outcomes(name).count("412") == 0
        assert len(gcs_preconditions.outcomes(name)) == 1  # every image written exactly once
