"""POST /api/v1/recommendations/session: top-k from the active model for a visitor's recent items."""
import numpy as np
import pytest

from crm.models import Item
from recommendations.models import TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.scoring import loaded_version
from recommendations.services.training import training_run_execute
from tests.conftest import assert_error
from tests.recommendations.services.conftest import shop  # noqa: F401 - the planted-taste shop

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations/session"


@pytest.fixture(params=["itemknn", "sequential"])
def served(request, shop):  # noqa: F811
    run = TrainingRun.objects.create(algorithm=request.param, force_activate=True)
    training_run_execute(run=run)
    return shop


def test_recent_items_get_items_of_the_same_taste_never_the_ones_seen(reader, served):
    # given a visitor who looked at two coffee items
    seen = ["coffee-0", "coffee-1"]
    # when
    response = reader.post(URL, {"items": seen, "k": 5}, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    results = body["results"]
    assert body["model_version"] is not None and body["ignored"] == []
    assert [r["rank"] for r in results] == list(range(1, len(results) + 1)) and 0 < len(results) <= 5
    assert not {r["sku"] for r in results} & set(seen)
    # then the ranking is the active model's own: top-k of its served scores (cold slots applied),
    # seen/unavailable excluded
    version = loaded_version(model_version_active())
    index = {sku: version.item_index[pk] for sku, pk in Item.objects.values_list("sku", "id")}
    scores = version.model.served_score_histories([[index[s] for s in seen]])[0]
    scores[[index[s] for s in seen]] = -np.inf
    expected_ids = [int(version.item_ids[i]) for i in np.argsort(-scores, kind="stable")[:5]]
    assert [r["sku"] for r in results] == [Item.objects.get(pk=i).sku for i in expected_ids]
    if version.model.algorithm == "itemknn":  # co-bought: the planted taste shows directly
        assert results[0]["sku"].startswith("coffee-")
    assert all(r["reason"] for r in results) and "score" not in results[0]


def test_filters_and_unknown_items(reader, served):
    Item.objects.filter(sku="garden-1").update(in_stock=False)
    body = reader.post(URL, {"items": ["coffee-0", "no-such-sku"], "k": 20, "category": "GARDEN", "explain": True},
                       format="json").json()
    skus = [r["sku"] for r in body["results"]]
    assert body["ignored"] == ["no-such-sku"]
    assert skus and all(s.startswith("garden-") for s in skus) and "garden-1" not in skus
    assert "score" in body["results"][0]
    everything = reader.post(URL, {"items": [], "in_stock": False, "k": 100}, format="json").json()
    assert "garden-1" in [r["sku"] for r in everything["results"]]


@pytest.mark.parametrize("payload, field", [
    ({"items": "coffee-0"}, "items"),
    ({"items": [{"sku": 1}]}, "items"),
    ({"items": ["x"] * 201}, "items"),
    ({"items": [], "k": 0}, "k"),
    ({"items": [], "k": 101}, "k"),
    ({"items": [], "in_stock": "maybe"}, "in_stock"),
    ({}, "items"),
])
def test_bad_input_is_a_400_naming_the_field(reader, shop, payload, field):  # noqa: F811
    body = assert_error(reader.post(URL, payload, format="json"), 400)
    assert field in body["fields"]


def test_auth_and_scope(client, make_client, shop):  # noqa: F811
    assert client.post(URL, {"items": []}, content_type="application/json").status_code in (401, 403)
    no_read = make_client("write")
    assert_error(no_read.post(URL, {"items": []}, format="json"), 403)


def test_without_an_active_model_the_items_come_back_ignored(reader, shop):  # noqa: F811
    body = reader.post(URL, {"items": ["coffee-0"]}, format="json").json()
    assert body == {"model_version": None, "ignored": ["coffee-0"], "results": []}


def test_an_active_version_whose_artefact_is_missing_is_a_503(reader, shop, tmp_path):  # noqa: F811
    from recommendations.models import ModelVersion

    ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.READY, is_active=True,
                                artifact_path=str(tmp_path / "gone"))
    body = assert_error(reader.post(URL, {"items": ["coffee-0"]}, format="json"), 503)
    assert "cannot be loaded" in body["detail"]
