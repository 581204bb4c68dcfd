"""One JSON form for model handles and evaluations (``redditvision.serialize``)."""

from __future__ import annotations

import json

import pytest

from redditvision.errors import DatasetError
from redditvision.metrics import evaluation_to_json
from redditvision.models import TrainedModel
from redditvision.serialize import evaluation_to_json as serialize_evaluation_to_json
from redditvision.serialize import model_from_json, model_to_json


def test_a_model_handle_round_trips_through_json_text() -> None:
    model = TrainedModel(
        backend="vertex",
        resource="projects/p/locations/us-central1/models/7",
        labels=("bmw_z4", "bmw_m3"),
        label_map={"bmw_z4": "BMW Z4", "bmw_m3": "BMW M3"},
        display_name="redditvision-bmw",
        metadata={"budget_milli_node_hours": 8000, "state_file": "s.json"},
    )
    text = json.dumps(model_to_json(model))
    assert model_from_json(json.loads(text)) == model
    assert model_from_json(json.loads(text)).label_map == model.label_map


def test_a_model_object_without_a_resource_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match="expected backend and resource"):
        model_from_json({"backend": "local"})


def test_the_evaluation_json_form_is_the_metrics_one() -> None:
    assert serialize_evaluation_to_json is evaluation_to_json
