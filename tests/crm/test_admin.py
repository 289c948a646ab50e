"""The admin a marketer works in, crm's pages: every page renders, the actions do what they say, strangers
are sent to login (the admin site itself, its index and login, is crm's too).

The other apps' pages are tested in tests/recommendations/test_admin.py and tests/campaigns/test_admin.py;
what they share is in tests/admin_pages.py.
"""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from crm.models import Customer, Feedback, Interaction, Item
from recommendations.models import ModelVersion, Recommendation
from tests.admin_pages import _url, page_tests
from tests.factories import CustomerFactory, SegmentFactory

# --- every page renders ---------------------------------------------------------------------------

test_changelist_renders, test_add_form_renders_or_is_forbidden, test_change_form_renders = page_tests("crm")


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
