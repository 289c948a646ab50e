"""The admin a marketer works in: every page renders, the actions do what they say, strangers are sent to login.

Pages are discovered from ``admin.site._registry`` (crm, recommendations and campaigns when present), so a
new ModelAdmin is covered as soon as it is registered.
"""
from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from crm.models import Customer, Feedback, Interaction, Item
from recommendations.admin import ACTIVATE_ONE
from recommendations.models import ItemEmbedding, ModelVersion, Recommendation, TrainingRun
from tests import factories
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, ItemFactory, SegmentFactory

APPS = ("crm", "recommendations", "campaigns")
MODELS = sorted(
    (m for m in admin.site._registry if m._meta.app_label in APPS), key=lambda m: m._meta.label
)


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _version(**fields) -> ModelVersion:
    defaults = {
        "algorithm": "sequential",
        "status": ModelVersion.Status.READY,
        "device": "cpu",
        "params": {"n_embd": 64, "epochs": 3, "lr": 0.001},
        "data_stats": {"customers": 3, "items": 4, "interactions": 12},
        "metrics": {
            "test": {"ndcg@10": 0.4123, "hr@10": 0.6, "mrr": 0.31},
            "validation": {"ndcg@10": 0.39, "hr@10": 0.55},
            "candidates": {"popularity": {"ndcg@10": 0.2}, "sequential": {"ndcg@10": 0.39}},
            "protocol": "leave-last-out, full ranking",
        },
        "timings": {"embed_seconds": 1.2, "train_seconds": 10.5},
    }
    return ModelVersion.objects.create(**{**defaults, **fields})


@pytest.fixture
def shop(db):
    """A small shop: customers with events and feedback, a segment, two versions (one serving), a live run."""
    customers = CustomerFactory.create_batch(3)
    shoes = ItemFactory.create_batch(2, category="shoes")
    hats = ItemFactory.create_batch(2, category="hats")
    for customer in customers:
        for item in [*shoes, *hats]:
            InteractionFactory(customer=customer, item=item, kind=Interaction.Kind.PURCHASE)
    FeedbackFactory(customer=customers[0], item=hats[0], kind=Feedback.Kind.COMPLAINT, comment="Arrived broken")
    FeedbackFactory(customer=customers[1], item=shoes[0], kind=Feedback.Kind.LIKE)
    segment = SegmentFactory(
        name="German buyers",
        rules={"match": "all", "conditions": [{"field": "country", "op": "in", "value": ["DE"]}]},
    )
    old = _version(algorithm="popularity", status=ModelVersion.Status.RETIRED)
    active = _version(is_active=True, activated_at=timezone.now(), previous=old)
    for customer in customers:
        for rank, item in enumerate([*shoes, *hats], start=1):
            Recommendation.objects.create(
                model_version=active, customer=customer, rank=rank, item=item, score=1.0 / rank,
                probability=0.5 / rank, reason="because you bought shoes",
            )
    ItemEmbedding.objects.create(
        item=shoes[0], model_name="all-MiniLM-L6-v2", text_hash="ab" * 32, dim=4, vector=b"\x00\x00\x80?" * 4
    )
    run = TrainingRun.objects.create(
        algorithm="auto", status=TrainingRun.Status.RUNNING, stage="training sequential", progress=0.42,
        log="embedding item texts\nfitting sequential", started_at=timezone.now() - timedelta(minutes=2),
        model_version=active,
    )
    _extra_rows(customer=customers[0], item=shoes[0])
    return {
        "customers": customers, "shoes": shoes, "hats": hats, "segment": segment, "old": old, "active": active,
        "run": run,
    }


def _extra_rows(*, customer: Customer, item: Item) -> None:
    """Rows for models other apps own: their factories when tests/factories.py has them, else a best guess."""
    from django.apps import apps

    from crm.models import ApiKey

    if not ApiKey.objects.exists():
        try:
            from crm.services import api_key_create

            api_key_create(name="shop", scopes=["read"])
        except ImportError:  # pragma: no cover - the API layer is not there yet
            pass
    for model in MODELS:
        factory = getattr(factories, f"{model.__name__}Factory", None)
        if factory is not None and not model.objects.exists():
            with contextlib.suppress(Exception), transaction.atomic():  # a missing row fails test_change_form_renders
                factory()
    if apps.is_installed("campaigns"):
        with contextlib.suppress(Exception), transaction.atomic():
            campaign = apps.get_model("campaigns", "Campaign").objects.create(name="Spring picks")
            recipient = apps.get_model("campaigns", "Recipient").objects.create(campaign=campaign, customer=customer)
            apps.get_model("campaigns", "Click").objects.create(recipient=recipient, item=item)


# --- every page renders ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_changelist_renders(staff_client, shop, model):
    """Each changelist answers 200, also with a search term when the admin has search fields."""
    # when
    response = staff_client.get(_url(model, "changelist"))
    # then
    assert response.status_code == 200
    if admin.site._registry[model].search_fields:
        assert staff_client.get(_url(model, "changelist"), {"q": "cust"}).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_add_form_renders_or_is_forbidden(staff_client, shop, rf, admin_user, model):
    """The add form renders where adding by hand makes sense; job-written models refuse it (403)."""
    # given
    request = rf.get("/")
    request.user = admin_user
    can_add = admin.site._registry[model].has_add_permission(request)
    # when
    response = staff_client.get(_url(model, "add"))
    # then
    assert response.status_code == (200 if can_add else 403)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_change_form_renders(staff_client, shop, model):
    """Each change (or read-only view) page answers 200 for a stored row."""
    # given
    obj = model.objects.first()
    assert obj is not None, f"no {model._meta.label} row: add a {model.__name__}Factory to tests/factories.py"
    # when
    response = staff_client.get(_url(model, "change", obj.pk))
    # then
    assert response.status_code == 200


def test_admin_index_lists_the_apps(staff_client, shop):
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert b"Customers" in response.content and b"Model versions" in response.content


def test_non_staff_user_is_redirected_to_login(client, django_user_model, shop):
    """A logged-in customer-service account without staff status gets the login page, not the data."""
    # given
    user = django_user_model.objects.create_user("viewer", password="pw")
    client.force_login(user)
    for url in (reverse("admin:index"), _url(Customer, "changelist"), _url(ModelVersion, "changelist")):
        # when
        response = client.get(url)
        # then
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


# --- customers ------------------------------------------------------------------------------------


def test_customer_page_shows_recent_interactions_and_recommendations(staff_client, shop):
    customer = shop["customers"][0]
    response = staff_client.get(_url(Customer, "change", customer.pk))
    content = response.content.decode().lower()
    assert "recent interactions (latest 20)" in content
    assert "recommendations (serving version, top 10)" in content
    assert "because you bought shoes" in content


def test_customer_changelist_counts_events(staff_client, shop):
    response = staff_client.get(_url(Customer, "changelist"), {"q": shop["customers"][0].external_id})
    rows = list(response.context["cl"].result_list)
    assert [c.external_id for c in rows] == [shop["customers"][0].external_id]
    assert rows[0]._event_count == 4
    assert rows[0]._last_seen is not None


def test_export_personal_data_downloads_json(staff_client, shop):
    """The export action answers with a JSON attachment holding the profile, events and feedback."""
    # given
    customer = shop["customers"][0]
    # when
    response = staff_client.post(
        _url(Customer, "changelist"), {"action": "export_personal_data", "_selected_action": [customer.pk]}
    )
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["customer"]["external_id"] == customer.external_id
    assert len(data["interactions"]) == 4
    assert data["feedback"][0]["comment"] == "Arrived broken"


def test_export_of_several_customers_is_one_document(staff_client, shop):
    ids = [c.pk for c in shop["customers"]]
    form = {"action": "export_personal_data", "_selected_action": ids}
    response = staff_client.post(_url(Customer, "changelist"), form)
    assert len(json.loads(response.content)["customers"]) == 3


def test_erase_personal_data_asks_first_then_erases(staff_client, shop):
    """The first POST shows a confirmation page and erases nothing; confirming erases everything."""
    # given
    customer = shop["customers"][0]
    form = {"action": "erase_personal_data", "_selected_action": [customer.pk]}
    # when
    confirm = staff_client.post(_url(Customer, "changelist"), form)
    # then
    assert confirm.status_code == 200
    assert b"Erase personal data" in confirm.content and customer.external_id.encode() in confirm.content
    assert Customer.objects.filter(pk=customer.pk).exists()
    # when
    done = staff_client.post(_url(Customer, "changelist"), {**form, "post": "yes"}, follow=True)
    # then
    assert "Erased 1 customer(s)." in done.content.decode()
    assert customer.external_id not in done.content.decode()  # not even in the messages cookie
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not Interaction.objects.filter(customer_id=customer.pk).exists()
    assert not Recommendation.objects.filter(customer_id=customer.pk).exists()


# --- catalogue and feedback -----------------------------------------------------------------------


def test_item_bulk_deactivate_and_activate(staff_client, shop):
    # given
    ids = [i.pk for i in shop["shoes"]]
    # when
    form = {"action": "deactivate", "_selected_action": ids}
    response = staff_client.post(_url(Item, "changelist"), form, follow=True)
    # then
    assert "2 item(s) deactivated." in response.content.decode()
    assert not Item.objects.filter(pk__in=ids, active=True).exists()
    assert Item.objects.filter(pk__in=[i.pk for i in shop["hats"]], active=True).count() == 2
    # when
    staff_client.post(_url(Item, "changelist"), {"action": "activate", "_selected_action": ids})
    # then
    assert Item.objects.filter(pk__in=ids, active=True).count() == 2


def test_item_changelist_filters_by_category(staff_client, shop):
    response = staff_client.get(_url(Item, "changelist"), {"category": "shoes"})
    assert {i.pk for i in response.context["cl"].result_list} == {i.pk for i in shop["shoes"]}


def test_feedback_triage_actions(staff_client, shop):
    """Mark reviewed / dismiss set the status; 'deactivate the items' also marks the feedback actioned."""
    # given
    complaint = Feedback.objects.get(kind=Feedback.Kind.COMPLAINT)
    like = Feedback.objects.get(kind=Feedback.Kind.LIKE)
    url = _url(Feedback, "changelist")
    # when
    response = staff_client.post(url, {"action": "mark_reviewed", "_selected_action": [like.pk]}, follow=True)
    # then
    assert "1 feedback entry marked reviewed." in response.content.decode()
    like.refresh_from_db()
    assert like.status == Feedback.Status.REVIEWED
    # when
    staff_client.post(url, {"action": "dismiss", "_selected_action": [like.pk]})
    staff_client.post(url, {"action": "deactivate_items", "_selected_action": [complaint.pk]})
    # then
    like.refresh_from_db()
    complaint.refresh_from_db()
    assert like.status == Feedback.Status.DISMISSED
    assert complaint.status == Feedback.Status.ACTIONED
    assert not Item.objects.get(pk=complaint.item_id).active


def test_feedback_added_in_the_admin_removes_the_item_from_stored_recommendations(
    staff_client, shop, django_capture_on_commit_callbacks
):
    """A "not interested" entered by hand goes through feedback_create, so the item leaves the list."""
    # given
    customer, item = shop["customers"][0], shop["hats"][0]
    assert Recommendation.objects.filter(customer=customer, item=item).exists()
    form = {"customer": customer.pk, "item": item.pk, "kind": "not_interested", "status": "reviewed",
            "source": "admin", "comment": "called the hotline"}
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(_url(Feedback, "add"), form)
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    feedback = Feedback.objects.get(comment="called the hotline")
    assert feedback.status == Feedback.Status.REVIEWED and feedback.source == Feedback.Source.ADMIN
    assert not Recommendation.objects.filter(customer=customer, item=item).exists()


def test_feedback_changelist_filters_new(staff_client, shop):
    response = staff_client.get(_url(Feedback, "changelist"), {"status__exact": "new"})
    assert len(response.context["cl"].result_list) == 2
    assert b"tailored-badge new" in response.content


def test_segment_preview_shows_count_and_sample(staff_client, shop):
    # given
    CustomerFactory(country="FR", external_id="cust-french")
    # when
    response = staff_client.get(_url(shop["segment"].__class__, "change", shop["segment"].pk))
    # then
    content = response.content.decode()
    assert "<strong>3 customers</strong> match these rules right now." in content
    assert shop["customers"][0].external_id in content
    assert "cust-french" not in content


def test_customer_list_filters_by_segment(staff_client, shop):
    """The segment page links to the customer list narrowed to the segment's audience."""
    # given
    CustomerFactory(country="FR", external_id="cust-french")
    segment = shop["segment"]
    # when
    preview = staff_client.get(_url(segment.__class__, "change", segment.pk)).content.decode()
    response = staff_client.get(_url(Customer, "changelist"), {"segment": segment.pk})
    # then
    assert f"?segment={segment.pk}" in preview
    assert {c.pk for c in response.context["cl"].result_list} == {c.pk for c in shop["customers"]}


def test_segment_with_invalid_rules_says_why(staff_client, shop):
    segment = SegmentFactory(rules={"conditions": [{"field": "shoe_size"}]})
    response = staff_client.get(_url(segment.__class__, "changelist"))
    assert "invalid rules: condition 1: unknown field" in response.content.decode()


# --- model registry -------------------------------------------------------------------------------


def test_model_version_changelist_shows_headline_metrics(staff_client, shop):
    content = staff_client.get(_url(ModelVersion, "changelist")).content.decode()
    assert "0.4123" in content and "0.6000" in content


def test_model_version_detail_shows_metric_tables(staff_client, shop):
    content = staff_client.get(_url(ModelVersion, "change", shop["active"].pk)).content.decode()
    assert "test (held out)" in content and "validation" in content
    assert "train_seconds" in content and "n_embd" in content
    assert "12 rows" in content  # stored recommendations, linked
    assert "Roll back to v" in content


def test_activate_action_switches_serving_version(staff_client, shop):
    # when
    response = staff_client.post(
        _url(ModelVersion, "changelist"), {"action": "activate_selected", "_selected_action": [shop["old"].pk]},
        follow=True,
    )
    # then
    assert "is now serving recommendations" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["old"].pk


def test_activate_action_needs_exactly_one_version(staff_client, shop):
    ids = [shop["old"].pk, shop["active"].pk]
    response = staff_client.post(
        _url(ModelVersion, "changelist"), {"action": "activate_selected", "_selected_action": ids}, follow=True
    )
    assert ACTIVATE_ONE in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["active"].pk


def test_activate_refuses_an_unscored_version_with_a_message(staff_client, shop):
    # given
    trained = _version(status=ModelVersion.Status.TRAINED)
    # when
    response = staff_client.post(
        reverse("admin:recommendations_modelversion_activate", args=[trained.pk]), follow=True
    )
    # then
    assert "Only a scored version" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["active"].pk


def test_activate_button_and_rollback(staff_client, shop):
    """The change page's button activates; 'roll back' re-activates the version that served before."""
    # given
    newer = _version()
    # when
    staff_client.post(reverse("admin:recommendations_modelversion_activate", args=[newer.pk]))
    # then
    assert ModelVersion.objects.get(is_active=True).pk == newer.pk
    # when
    response = staff_client.post(reverse("admin:recommendations_modelversion_rollback"), follow=True)
    # then
    assert "Rolled back" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["active"].pk


def test_rollback_without_previous_version_says_so(staff_client, shop):
    ModelVersion.objects.update(previous=None)
    response = staff_client.post(
        _url(ModelVersion, "changelist"), {"action": "rollback", "_selected_action": [shop["active"].pk]}, follow=True
    )
    assert "There is no previous version to roll back to." in response.content.decode()


def test_active_version_cannot_be_deleted(staff_client, shop):
    assert staff_client.get(_url(ModelVersion, "delete", shop["active"].pk)).status_code == 403
    assert staff_client.get(_url(ModelVersion, "delete", shop["old"].pk)).status_code == 200


def test_training_run_page_shows_progress_log_and_polls_while_running(staff_client, shop):
    # when
    content = staff_client.get(_url(TrainingRun, "change", shop["run"].pk)).content.decode()
    # then
    assert 'class="tailored-progress"' in content and "42%" in content
    assert '<pre class="tailored-log">embedding item texts\nfitting sequential</pre>' in content
    progress_url = reverse("admin:recommendations_trainingrun_progress", args=[shop["run"].pk])
    assert f'data-poll="{progress_url}"' in content
    assert staff_client.get(progress_url).json()["done"] is False
    # when the run is over
    TrainingRun.objects.filter(pk=shop["run"].pk).update(status=TrainingRun.Status.SUCCEEDED, progress=1.0)
    content = staff_client.get(_url(TrainingRun, "change", shop["run"].pk)).content.decode()
    # then
    assert "data-poll=" not in content
    assert staff_client.get(progress_url).json()["done"] is True


def test_recommendations_filter_by_version_and_search_by_customer(staff_client, shop):
    customer = shop["customers"][1]
    response = staff_client.get(
        _url(Recommendation, "changelist"),
        {"model_version__id__exact": shop["active"].pk, "q": customer.external_id},
    )
    rows = list(response.context["cl"].result_list)
    assert len(rows) == 4 and {r.customer_id for r in rows} == {customer.pk}


# --- privacy commands -----------------------------------------------------------------------------


def test_customer_export_command_prints_json(shop, capsys):
    customer = shop["customers"][0]
    call_command("customer_export", customer.external_id)
    data = json.loads(capsys.readouterr().out)
    assert data["customer"]["email"] == customer.email and len(data["interactions"]) == 4


def test_customer_export_command_writes_a_file(shop, tmp_path):
    out = tmp_path / "export.json"
    call_command("customer_export", shop["customers"][0].external_id, "--out", str(out))
    assert json.loads(out.read_text())["customer"]["external_id"] == shop["customers"][0].external_id


def test_customer_export_command_unknown_customer(db):
    with pytest.raises(CommandError, match="No customer with external id 'nobody'"):
        call_command("customer_export", "nobody")


def test_customer_erase_command_needs_yes(shop):
    customer = shop["customers"][0]
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("customer_erase", customer.external_id)
    assert Customer.objects.filter(pk=customer.pk).exists()
    call_command("customer_erase", customer.external_id, "--yes")
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not Interaction.objects.filter(customer_id=customer.pk).exists()


def test_admin_delete_button_is_a_full_erasure(staff_client):
    """Django's delete view used to bypass customer_erase (no tombstone, the name left in the admin log)."""
    from django.contrib.admin.models import LogEntry

    from crm.models import ErasedCustomer
    from tests.factories import CustomerFactory

    customer = CustomerFactory(first_name="Ygritte", last_name="Snowfield")
    response = staff_client.post(f"/admin/crm/customer/{customer.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and "Ygritte" not in response.cookies.output()
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert ErasedCustomer.objects.count() == 1
    assert not LogEntry.objects.filter(object_repr__icontains="Ygritte").exists()


def test_admin_feedback_cannot_name_another_customers_recipient(staff_client):
    from campaigns.models import Campaign, Recipient
    from tests.factories import CustomerFactory

    alice, bob = CustomerFactory(), CustomerFactory()
    bobs = Recipient.objects.create(campaign=Campaign.objects.create(name="c"), customer=bob, email=bob.email)
    response = staff_client.post("/admin/crm/feedback/add/", {
        "customer": alice.pk, "kind": "complaint", "comment": "", "status": "new", "source": "admin",
        "campaign_recipient_id": bobs.pk})
    assert response.status_code == 200 and "is not this customer&#x27;s" in response.content.decode()
    assert not Feedback.objects.exists()
