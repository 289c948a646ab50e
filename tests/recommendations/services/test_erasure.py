"""Right of access and erasure end to end (security review, finding 6).

Export must include everything erase removes; erase must reach every table, the admin log, stored
recommendations, the saved model's per-customer arrays, and the next training snapshot.
"""
from pathlib import Path

import numpy as np
import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, Click, Recipient
from crm.consent import customer_consent_record
from crm.models import ConsentEvent, Customer, ErasedCustomer, Feedback, Interaction
from crm.services import customer_erase, customer_export, feedback_create
from recommendations.engine.models import load_recommender
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from recommendations.selectors import training_events
from recommendations.services.training import training_run_execute


def _train(algorithm: str = "itemknn") -> ModelVersion:
    run = TrainingRun.objects.create(algorithm=algorithm, force_activate=True)
    return training_run_execute(run=run)


@pytest.fixture
def victim(shop, django_user_model):
    """A customer with every kind of personal data Tailored stores, and a model that learnt them."""
    customer = shop["customers"][5]
    Customer.objects.filter(pk=customer.pk).update(first_name="Zelda", last_name="Quist")
    customer.refresh_from_db()
    item = shop["items"][("running", 0)]
    customer_consent_record(customer=customer, action="opt_in", channel="api", source="checkout", actor="API key x")
    campaign = Campaign.objects.create(name="Spring", n_items=2)
    recipient = Recipient.objects.create(campaign=campaign, customer=customer, email=customer.email,
                                         items=[{"item_id": item.pk}], state=Recipient.State.SENT)
    Click.objects.create(recipient=recipient, item=item, user_agent="Mozilla/5.0 (Zelda's phone)")
    feedback_create(customer=customer, kind=Feedback.Kind.LIKE, item=item, comment="love it",
                    campaign_recipient_id=recipient.pk)
    version = _train()
    staff = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    LogEntry.objects.log_actions(staff.pk, [customer], CHANGE, change_message="Changed first_name.")
    other = shop["customers"][6]
    LogEntry.objects.create(user=staff, content_type=ContentType.objects.get_for_model(Customer),
                            object_id=str(other.pk), object_repr=str(other), action_flag=ADDITION,
                            change_message="Merged duplicate Zelda Quist into this customer.")
    return {"customer": customer, "recipient": recipient, "version": version, "other": other}


def test_export_includes_everything_erase_removes(victim):
    """Recipients, clicks with user agent, stored recommendations and consent history used to be missing."""
    data = customer_export(customer=victim["customer"])
    assert set(data) >= {"customer", "interactions", "feedback", "consent_history", "campaign_recipients",
                         "campaign_clicks", "recommendations"}
    assert data["campaign_recipients"][0]["campaign"] == "Spring"
    assert data["campaign_clicks"][0]["user_agent"] == "Mozilla/5.0 (Zelda's phone)"
    assert data["recommendations"] and data["recommendations"][0]["model_version"] == victim["version"].pk
    assert data["consent_history"][0]["source"] == "checkout"
    assert data["feedback"][0]["campaign_recipient_id"] == victim["recipient"].pk
    assert len(data["interactions"]) == Interaction.objects.filter(customer=victim["customer"]).count()


def test_erase_reaches_every_table_the_admin_log_and_the_model(victim, django_capture_on_commit_callbacks):
    customer, version = victim["customer"], victim["version"]
    key = str(customer.pk)
    old_path = Path(version.artifact_path)
    with np.load(old_path / "arrays.npz") as z:
        assert key in z["user_keys"]
    others_before = load_recommender(old_path)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=customer)
    # then: no row anywhere
    for model, field in [(Customer, "pk"), (Interaction, "customer_id"), (Feedback, "customer_id"),
                         (ConsentEvent, "customer_id"), (Recipient, "customer_id"), (Recommendation, "customer_id"),
                         (Click, "recipient__customer_id")]:
        assert not model.objects.filter(**{field: customer.pk}).exists(), model
    # the admin log: the customer's own entries are gone, mentions elsewhere are redacted
    assert not LogEntry.objects.filter(object_id=str(customer.pk),
                                       content_type=ContentType.objects.get_for_model(Customer)).exists()
    texts = " ".join(f"{e.object_repr} {e.change_message}" for e in LogEntry.objects.all())
    assert "Zelda" not in texts and "Quist" not in texts and "[erased]" in texts
    # the model: a new artefact without the customer's key, seen row or history; the old one is gone
    version.refresh_from_db()
    new_path = Path(version.artifact_path)
    assert new_path != old_path and not old_path.exists()
    model = load_recommender(new_path)
    assert key not in model.user_keys and model.n_users == others_before.n_users
    row = others_before.user_keys.index(key)
    assert model.seen_mask_rows(np.array([row])).nnz == 0
    kept = np.array([i for i, k in enumerate(model.user_keys) if k][:5])
    np.testing.assert_allclose(model.score(kept), others_before.score(kept), rtol=1e-5)
    # a tombstone, without personal data
    tombstone = ErasedCustomer.objects.get()
    assert customer.external_id not in tombstone.external_id_hash


def test_erased_customer_is_not_brought_back_by_a_reimport_or_trained_on(victim, tmp_path):
    """An old export re-imported must not resurrect the customer (or their history) in the CRM or a model."""
    customer = victim["customer"]
    events = list(Interaction.objects.filter(customer=customer).values_list("item__sku", "kind", "occurred_at"))
    customer_erase(customer=customer)
    folder = tmp_path / "old-export"
    folder.mkdir()
    lines = ["customer_id,item_id,kind,timestamp"] + [
        f"{customer.external_id},{sku},{kind},{at.isoformat()}" for sku, kind, at in events
    ] + ["brand-new,running-1,view,2024-05-01T10:00:00Z"]
    (folder / "interactions.csv").write_text("\n".join(lines) + "\n")
    call_command("import_dataset", "--format", "canonical", "--no-progress", str(folder))
    assert not Customer.objects.filter(external_id=customer.external_id).exists()
    assert Customer.objects.filter(external_id="brand-new").exists()
    # re-created deliberately later (they came back): their old history stays out of training
    returned = Customer.objects.create(external_id=customer.external_id)
    Interaction.objects.create(customer=returned, item_id=Interaction.objects.first().item_id, kind="view",
                               event_id="replayed-old", occurred_at=events[0][2])
    Interaction.objects.create(customer=returned, item_id=Interaction.objects.first().item_id, kind="view",
                               event_id="new-after-return", occurred_at=timezone.now())
    trained_on = {(c, k) for c, _i, k, _t, _v, _o in training_events() if c == str(returned.pk)}
    assert trained_on == {(str(returned.pk), "view")}
    assert sum(1 for c, *_ in training_events() if c == str(returned.pk)) == 1
