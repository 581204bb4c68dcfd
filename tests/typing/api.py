"""Typing test of the public API: mypy --strict must accept this file as written."""

from __future__ import annotations

import redditvision
from redditvision import RetryPolicy, is_transient

policy: RetryPolicy = RetryPolicy(on=is_transient, attempts=3, timeout=10.0)
evolved: RetryPolicy = policy.evolve(attempts=5)
error: redditvision.RedditVisionError = redditvision.ConfigError("missing user_agent")
status: int | str | None = error.status


def _vertex_backend_fits_the_protocols(location: redditvision.DatasetLocation) -> None:
    backend = redditvision.VertexAutoMLBackend.from_env("my-project", "us-central1")
    trainer = redditvision.AutoMLTrainer(backend=backend)
    model: redditvision.TrainedModel = trainer.train(location)
    classifier = redditvision.Classifier(model, backend=backend)
    predictor: redditvision.Predictor = backend.open_predictor(model, deploy=False)
    deployment: redditvision.VertexDeployment = backend.deploy(model)
    backend.undeploy(deployment, delete_endpoint=True)
    predictor.close()
    classifier.close()


def _legacy_automl_backend_fits_the_protocols(location: redditvision.DatasetLocation) -> None:
    backend = redditvision.LegacyAutoMLBackend.from_env("my-project", "us-central1")
    training: redditvision.TrainingBackend = backend
    prediction: redditvision.PredictionBackend = backend
    with redditvision.AutoMLTrainer(backend=training) as trainer:
        model: redditvision.TrainedModel = trainer.train(location)
        evaluation: redditvision.Evaluation = trainer.evaluate(model)
    predictor: redditvision.Predictor = backend.open_predictor(model, deploy=False)
    deployed_here: bool = backend.deploy(model.resource, node_count=2)
    backend.undeploy(model)
    with redditvision.Classifier(model, backend=prediction) as classifier:
        classifier.predict(b"...", confidence_threshold=0.5)
    predictor.close()
    del evaluation, deployed_here


def _dataset_writers_fit_the_protocol(
    records: list[redditvision.ImageRecord],
) -> tuple[object, ...]:
    rules = redditvision.RuleSet.from_toml("examples/bmw-rules.toml")
    labeled, report = redditvision.label_records(records, rules)
    unmatched: tuple[redditvision.ImageRecord, ...] = report.unmatched
    label_map = redditvision.LabelMap.from_toml("examples/bmw-series.toml")
    folders: redditvision.LabeledDataset = redditvision.label_folders("photos", label_map=label_map)
    split = redditvision.split_dataset(folders, train=0.8, validation=0.1, test=0.1, seed=0)
    check: redditvision.DatasetCheckReport = redditvision.check_dataset(split, target="vertex")
    ok: bool = check.ok
    writers: list[redditvision.DatasetWriter] = [
        redditvision.LocalDatasetWriter("build/dataset"),
        redditvision.GcsDatasetWriter.from_env(bucket="my-bucket", prefix="bmw"),
    ]
    for writer in writers:
        location: redditvision.DatasetLocation = writer.write(
            labeled, import_format="vertex_csv"
        ).location
    with redditvision.LocalDatasetWriter("build/dataset") as local:
        result: redditvision.UploadResult = local.write(split)
    loaded: redditvision.LabeledDataset = redditvision.load_local_dataset("build/dataset")
    return unmatched, ok, location, result, loaded


def _downloader_streams_records(
    posts: list[redditvision.ImagePost],
) -> tuple[object, ...]:
    limits = redditvision.DownloadLimits(max_bytes=20_000_000).evolve(max_redirects=3)
    with redditvision.ImageDownloader(
        "images", limits=limits, concurrency=32, allowed_networks=["10.1.2.0/24"]
    ) as downloader:
        records: list[redditvision.ImageRecord] = list(downloader.fetch(posts, timeout=5.0))
    with redditvision.ImageManifest.for_folder("images") as manifest:
        ok = list(manifest.records(redditvision.RecordStatus.OK))
        groups: set[str | None] = {record.near_duplicate_group for record in ok}
        counts: dict[str, int] = manifest.summary()
        one: redditvision.ImageRecord | None = manifest.get("abc:0")
    return records, groups, counts, one


def _local_backend_trains_and_predicts(
    dataset: redditvision.LabeledDataset,
) -> tuple[object, ...]:
    extractor: redditvision.FeatureExtractor = redditvision.EfficientNetLite0Extractor()
    backend = redditvision.LocalBackend(extractor=extractor, cache_dir="cache")
    training: redditvision.TrainingBackend = backend
    prediction: redditvision.PredictionBackend = backend
    with redditvision.AutoMLTrainer(backend=training) as trainer:
        model: redditvision.TrainedModel = trainer.train(
            dataset, budget=redditvision.TrainingBudget(time_limit_s=60.0)
        )
        evaluation: redditvision.Evaluation = trainer.evaluate(model)
    with redditvision.Classifier(model, backend=prediction) as classifier:
        top: list[redditvision.Prediction] = classifier.predict(b"...", max_predictions=1)
    labeler: redditvision.GenericLabeler = redditvision.ImageNetLabeler()
    labels: list[redditvision.ImageLabels] = labeler.label([b"..."], max_results=3)
    return evaluation.macro_f1, top, labels
