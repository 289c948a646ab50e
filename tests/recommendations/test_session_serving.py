"""``POST /api/v1/recommendations/session`` as served: the same top-k as the model's own scores under
every filter, three queries after authentication, the model and scorer built once per process."""
import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import Item
from crm.services import api_key_create
from recommendations.models import TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.scoring import loaded_version
from recommendations.services.training import training_run_execute
from recommendations.session import _serving
from tests.recommendations.services.conftest import shop  # noqa: F401 - the planted-taste shop

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations/session"


@pytest.fixture
def reader(db):
    _, raw_key = api_key_create(name="session tests", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture(params=["itemknn", "sequential"])
def served(request, shop):  # noqa: F811
    run = TrainingRun.objects.create(algorithm=request.param, force_activate=True)
    training_run_execute(run=run)
    return shop


def _expected(seen: list[str], k: int, *, category: str | None, in_stock: bool) -> list[str]:
    """The reference: the model's served scores (its cold stage applied) for the history, with seen, unavailable and
    out-of-category items removed, best first, ties by item index."""
    version = loaded_version(model_version_active())
    index = {sku: version.item_index[pk] for sku, pk in Item.objects.values_list("sku", "id")}
    scores = version.model.served_score_histories([[index[s] for s in seen]])[0].astype(np.float32)
    blocked = set(seen)
    for item in Item.objects.all():
        unavailable = in_stock and not (item.active and item.in_stock)
        if unavailable or (category and item.category.lower() != category.lower()):
            blocked.add(item.sku)
    scores[[index[s] for s in blocked]] = -np.inf
    order = [i for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])][:k]
    sku_by_id = dict(Item.objects.values_list("id", "sku"))
    return [sku_by_id[int(version.item_ids[i])] for i in order]


@pytest.mark.parametrize("category, in_stock", [(None, True), ("Running", True), ("garden", False), (None, False)])
def test_results_are_the_models_top_k_under_every_filter(reader, served, category, in_stock):
    # given two unavailable items, one of them in the garden category
    Item.objects.filter(sku="garden-2").update(in_stock=False)
    Item.objects.filter(sku="running-3").update(active=False)
    seen = ["garden-0", "running-1", "coffee-2"]
    payload = {"items": seen, "k": 7, "in_stock": in_stock, **({"category": category} if category else {})}
    # when
    response = reader.post(URL, payload, format="json")
    # then
    assert response.status_code == 200, response.content
    got = [r["sku"] for r in response.json()["results"]]
    assert got == _expected(seen, 7, category=category, in_stock=in_stock)
    assert not set(got) & set(seen)


def test_a_request_is_three_queries_after_authentication(reader, served):
    reader.post(URL, {"items": ["coffee-0"]}, format="json")  # the process loads the model once
    with CaptureQueriesContext(connection) as queries:
        response = reader.post(URL, {"items": ["coffee-0", "books-1"], "category": "books"}, format="json")
    assert response.status_code == 200
    served_queries = [q["sql"] for q in queries.captured_queries if "crm_apikey" not in q["sql"]]
    assert len(served_queries) == 3, served_queries
    assert "description" not in served_queries[-1]  # the result items: only the columns the API shows


def test_the_model_and_scorer_are_built_once_per_process_and_version(reader, served):
    reader.post(URL, {"items": ["coffee-0"]}, format="json")
    before = _serving.cache_info()
    for _ in range(3):
        assert reader.post(URL, {"items": ["coffee-1"]}, format="json").status_code == 200
    after = _serving.cache_info()
    assert after.hits == before.hits + 3 and after.misses == before.misses


def test_the_result_items_carry_every_field_the_api_shows(reader, served):
    body = reader.post(URL, {"items": ["coffee-0"], "k": 3}, format="json").json()
    first = body["results"][0]
    item = Item.objects.get(sku=first["sku"])
    assert (first["title"], first["category"], first["price"], first["url"]) == (
        item.title, item.category, f"{item.price:.2f}", item.url)
