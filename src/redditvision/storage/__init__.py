"""Write a labeled dataset where a backend trains from it: Cloud Storage or a local folder.

Both writers use one layout, content-addressed so that a re-run is cheap and a dataset
location never points at a missing image::

    {prefix}/{label}/{sha256}.{ext}     the images (service label folders)
    {prefix}/label_map.json             service label -> the user's original label
    {prefix}/import.csv                 the import file (name per format), written last

:class:`GcsDatasetWriter` uploads with ``google.cloud.storage.transfer_manager`` (a thread
pool), skips objects whose MD5 already matches, creates new objects with
``if_generation_match=0`` (so a retried upload can never overwrite another writer's
object) and writes the import file only after every image is in the bucket.
:class:`LocalDatasetWriter` writes the same layout on disk with ``file://`` URIs, copying
each file atomically (temporary name, then rename); the local dataset file it writes,
``dataset.jsonl``, is the one :func:`write_local_dataset` writes and :func:`load_local_dataset`
reads. Both writers have one operation, ``write``, returning an :class:`UploadResult`.
"""

from redditvision.storage._common import DatasetWriter, ProgressCallback, UploadResult
from redditvision.storage._gcs import DEFAULT_STORAGE_RETRY, GcsDatasetWriter
from redditvision.storage._local import LocalDatasetWriter, load_local_dataset, write_local_dataset

__all__ = [
    "DEFAULT_STORAGE_RETRY",
    "DatasetWriter",
    "GcsDatasetWriter",
    "LocalDatasetWriter",
    "ProgressCallback",
    "UploadResult",
    "load_local_dataset",
    "write_local_dataset",
]
