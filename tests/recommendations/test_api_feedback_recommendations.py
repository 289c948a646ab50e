"""Feedback (not interested takes effect at once), recommendations, similar items, model operations."""
import pytest

from crm.models import Feedback
from recommendations.apis import MODEL_VERSION_NOT_FOUND
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from tests.conftest import assert_error
from tests.factories import CustomerFactory, FeedbackFactory, ItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(db):
    """An active version with three stored recommendations for customer c1."""
    customer = CustomerFactory(external_id="c1")
    items = [ItemFactory(sku=f"s{i}", category="shoes" if i < 2 else "hats", price=10 * (i + 1)) for i in range(3)]
    version = ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.READY, is_active=True,
                                          metrics={"ndcg@10": 0.3})
    for rank, item in enumerate(items, start=1):
        Recommendation.objects.create(model_version=version, customer=customer, rank=rank, item=item,
                                      score=1.0 / rank, probability=0.5 / rank, reason=f"because {rank}")
    return customer, items, version


def test_recommendations_for_a_customer(reader, served):
    body = reader.get("/api/v1/customers/c1/recommendations?limit=2").json()
    assert body["model_version"] == served[2].pk
    assert [(r["rank"], r["sku"], r["reason"]) for r in body["results"]] == [(1, "s0", "because 1"),
                                                                            (2, "s1", "because 2")]
    assert "score" not in body["results"][0] and body["results"][0]["probability"] == 0.5
    explained = reader.get("/api/v1/customers/c1/recommendations?explain=true&category=hats").json()["results"]
    assert explained[0]["sku"] == "s2" and explained[0]["score"] == pytest.approx(1 / 3)
    assert explained[0]["source"] == "model"
    priced = reader.get("/api/v1/customers/c1/recommendations?min_price=15&max_price=25").json()["results"]
    assert [r["sku"] for r in priced] == ["s1"]


def test_recommendations_cold_start_and_errors(reader, served):
    CustomerFactory(external_id="newbie")
    body = reader.get("/api/v1/customers/newbie/recommendations?explain=1").json()
    assert body["results"] and {r["source"] for r in body["results"]} == {"cold_start"}
    assert_error(reader.get("/api/v1/customers/ghost/recommendations"), 404, "not_found")
    for query in ["limit=0", "limit=101", "limit=x", "min_price=-1", "min_price=9&max_price=1", "explain=maybe"]:
        assert_error(reader.get(f"/api/v1/customers/c1/recommendations?{query}"), 400, "invalid")


def test_similar_items(reader, served):
    body = reader.get("/api/v1/items/s0/similar?limit=5").json()
    assert body["item"] == "s0" and all(r["sku"] != "s0" for r in body["results"])
    assert_error(reader.get("/api/v1/items/nope/similar"), 404)
    assert_error(reader.get("/api/v1/items/s0/similar?limit=1000"), 400)


def test_not_interested_removes_the_item_from_stored_recommendations_at_once(
        writer, served, django_capture_on_commit_callbacks):
    # given
    customer, items, _ = served
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = writer.post("/api/v1/feedback", {"customer": "c1", "item": "s0", "kind": "not_interested"},
                               format="json")
    # then
    assert response.status_code == 201, response.content
    assert not Recommendation.objects.filter(customer=customer, item=items[0]).exists()
    results = writer.get("/api/v1/customers/c1/recommendations").json()["results"]
    assert "s0" not in [r["sku"] for r in results]


def test_feedback_validation(writer, served):
    assert_error(writer.post("/api/v1/feedback", {"customer": "c1", "kind": "not_interested"}, format="json"), 400)
    body = assert_error(writer.post("/api/v1/feedback", {"customer": "ghost", "kind": "like"}, format="json"), 400)
    assert "customer" in body["fields"]
    assert_error(writer.post("/api/v1/feedback", {"customer": "c1", "item": "x", "kind": "like"}, format="json"), 400)
    assert_error(writer.post("/api/v1/feedback", {"customer": "c1", "kind": "meh"}, format="json"), 400)


def test_feedback_list_filter_pages_and_detail(reader, served):
    customer = served[0]
    FeedbackFactory.create_batch(3, customer=customer, kind=Feedback.Kind.LIKE)
    FeedbackFactory(kind=Feedback.Kind.COMPLAINT)
    page = reader.get("/api/v1/feedback?customer=c1&limit=2").json()
    assert len(page["results"]) == 2 and page["next"]
    assert len(reader.get(page["next"]).json()["results"]) == 1
    complaints = reader.get("/api/v1/feedback?kind=complaint").json()["results"]
    assert len(complaints) == 1
    assert reader.get(f"/api/v1/feedback/{complaints[0]['id']}").json()["kind"] == "complaint"
    assert_error(reader.get("/api/v1/feedback/999999"), 404)


def test_model_versions_list_and_activate(admin_client_key, served):
    _, _, active = served
    challenger = ModelVersion.objects.create(algorithm="sequential", status=ModelVersion.Status.READY)
    training = ModelVersion.objects.create(algorithm="sequential", status=ModelVersion.Status.TRAINING)
    listed = admin_client_key.get("/api/v1/model-versions").json()["results"]
    assert [v["id"] for v in listed] == [training.pk, challenger.pk, active.pk]
    assert listed[-1]["metrics"] == {"ndcg@10": 0.3}
    activated = admin_client_key.post(f"/api/v1/model-versions/{challenger.pk}/activate")
    assert activated.status_code == 200 and activated.json()["is_active"] is True
    assert ModelVersion.objects.get(is_active=True) == challenger
    body = assert_error(admin_client_key.post(f"/api/v1/model-versions/{training.pk}/activate"), 409,
                        "activation_failed")
    assert "'training'" in body["detail"]
    body = assert_error(admin_client_key.post("/api/v1/model-versions/99999/activate"), 404)
    assert body["detail"] == MODEL_VERSION_NOT_FOUND.format(key=99999)
    assert admin_client_key.get(f"/api/v1/model-versions/{active.pk}").json()["status"] == "retired"


def test_training_run_start_and_status(admin_client_key, monkeypatch):
    from recommendations.services import training

    def fake_enqueue(*, algorithm="auto", activate=False, params=None, background=False):
        return TrainingRun.objects.create(algorithm=algorithm, force_activate=activate, params=params or {},
                                          task_id="task-123")

    monkeypatch.setattr(training, "training_run_enqueue", fake_enqueue)
    response = admin_client_key.post("/api/v1/training-runs", {"algorithm": "ease", "activate": True},
                                     format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["task_id"] == "task-123" and body["status"] == "queued"
    status = admin_client_key.get(f"/api/v1/training-runs/{body['id']}").json()
    assert status["algorithm"] == "ease" and status["force_activate"] is True and "log" in status
    assert admin_client_key.get("/api/v1/training-runs").json()["results"][0]["id"] == body["id"]
    assert_error(admin_client_key.post("/api/v1/training-runs", {"algorithm": "magic"}, format="json"), 400)
    assert_error(admin_client_key.get("/api/v1/training-runs/424242"), 404)


def test_training_run_through_the_real_enqueue_is_queued(admin_client_key, monkeypatch):
    from recommendations import tasks

    monkeypatch.setattr(tasks.training_run_execute_task, "delay", lambda pk: type("R", (), {"id": "t-1"})())
    response = admin_client_key.post("/api/v1/training-runs", {"algorithm": "popularity"}, format="json")
    assert response.status_code == 202, response.content
    assert TrainingRun.objects.get(pk=response.json()["id"]).algorithm == "popularity"


def test_model_operations_need_admin(writer):
    assert_error(writer.post("/api/v1/training-runs", {}, format="json"), 403)
    assert_error(writer.post("/api/v1/model-versions/1/activate"), 403)
