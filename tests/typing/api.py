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
