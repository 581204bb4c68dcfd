"""``AutoMLTrainer``: one facade over every training backend.

A backend is anything that implements :class:`~redditvision.backends.TrainingBackend`
(the training half of :class:`~redditvision.backends.Backend`): the local backend
(:mod:`redditvision.backends.local`, the default that needs no account), Vertex AI AutoML
(:mod:`redditvision.backends.vertex`) and legacy AutoML v1 (:mod:`redditvision.backends.automl`).
Every backend returns the same :class:`~redditvision.models.TrainedModel` and
:class:`~redditvision.models.Evaluation`, so a script moves from local to Vertex AI by changing
the ``backend=`` argument only.
"""

from __future__ import annotations

from redditvision._closing import Closeable
from redditvision.backends._protocol import TrainingBackend
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    TrainedModel,
    TrainingBudget,
)

__all__ = ["AutoMLTrainer", "TrainingBackend"]


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
        """Evaluate ``model`` (see :meth:`redditvision.backends.TrainingBackend.evaluate`).

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
