"""``AutoMLTrainer``: one facade over every training backend.

A backend is anything that implements :class:`TrainingBackend`: the local backend
(:mod:`redditvision.backends.local`, the default that needs no account), Vertex AI AutoML
(:mod:`redditvision.backends.vertex`) and legacy AutoML v1 (:mod:`redditvision.backends.automl`).
Every backend returns the same :class:`~redditvision.models.TrainedModel` and
:class:`~redditvision.models.Evaluation`, so a script moves from local to Vertex AI by changing
the ``backend=`` argument only.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from redditvision._closing import Closeable
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    TrainedModel,
    TrainingBudget,
)

__all__ = ["AutoMLTrainer", "TrainingBackend"]


@runtime_checkable
class TrainingBackend(Protocol):
    """What a training backend implements.

    Attributes:
        name: ``"local"``, ``"vertex"`` or ``"automl"``; stored in ``TrainedModel.backend``.
    """

    name: str

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget,
        display_name: str | None = None,
    ) -> TrainedModel:
        """Train a model and return its handle.

        Args:
            data: A labeled dataset (local backend) or a written dataset location whose
                import file the service reads (cloud backends).
            budget: How much training to pay for.
            display_name: Name for the created resources, or None for the dataset's name.

        Returns:
            The trained model.

        Raises:
            TrainingError: Training failed; ConfigError when ``data`` is of a kind this
                backend cannot read.
        """
        ...

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        """Evaluate a model on ``data``'s test split, or return the service's evaluation.

        Args:
            model: The model.
            data: Labeled data to evaluate on; cloud backends read the evaluation the
                service computed on its test split and may ignore it.

        Returns:
            The evaluation.
        """
        ...

    def close(self) -> None:
        """Release clients; safe to call twice."""
        ...


class AutoMLTrainer(Closeable):
    """Train and evaluate image classifiers on any backend.

    Args:
        backend: The backend; keyword-only. Use ``LocalBackend()`` for this machine,
            ``VertexAutoMLBackend.from_env(project=..., location=...)`` for Vertex AI.
        budget: Default training budget (default: ``TrainingBudget()``, 8,000 milli node
            hours on the cloud, no time limit locally).

    Example:
        >>> trainer = AutoMLTrainer(backend=LocalBackend())  # doctest: +SKIP
        >>> model = trainer.train(dataset)  # doctest: +SKIP
        >>> print(trainer.evaluate(model, dataset).macro_f1)  # doctest: +SKIP
    """

    def __init__(self, *, backend: TrainingBackend, budget: TrainingBudget | None = None) -> None:
        self.backend = backend
        self.budget = budget or TrainingBudget()
        self._closed = False

    def __repr__(self) -> str:
        return f"AutoMLTrainer(backend={self.backend.name!r}, budget={self.budget!r})"

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget | None = None,
        display_name: str | None = None,
    ) -> TrainedModel:
        """Train a model on ``data``.

        Args:
            data: A labeled dataset or a written dataset location (see the backend).
            budget: Overrides the trainer's budget for this call.
            display_name: Name for created resources (default: the dataset's name).

        Returns:
            The trained model's handle.

        Raises:
            TrainingError: Training failed.
            ConfigError: The backend cannot read this kind of data.
        """
        return self.backend.train(data, budget=budget or self.budget, display_name=display_name)

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        """Evaluate ``model`` (see :meth:`TrainingBackend.evaluate`).

        Args:
            model: The model.
            data: Labeled data whose test split to evaluate on (local backend).

        Returns:
            The evaluation.
        """
        return self.backend.evaluate(model, data)

    def close(self) -> None:
        """Close the backend; safe to call twice."""
        if not self._closed:
            self._closed = True
            self.backend.close()
