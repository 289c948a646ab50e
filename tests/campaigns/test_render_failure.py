"""Issue 8, finding 4: a template failing at render time never leaves a campaign stuck in ``sending``.

Templates are validated before save, so a failing one comes from rows written before validation
(an old Django template, a direct database write) or from data only some recipients have. The
recipients it fails are marked ``failed`` with the reason and the run finishes; a campaign stuck
for any other reason (a killed worker) has a way out: cancel, then edit or delete.
"""
from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command
from rest_framework.test import APIClient

from campaigns.models import Campaign, Recipient
from campaigns.services.send import campaign_send
from campaigns.templating import CampaignTemplateError
from crm.services import api_key_create

pytestmark = pytest.mark.django_db


def _api() -> APIClient:
    _, raw = api_key_create(name="ops", scopes=["read", "write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize("bad", ["{% include 'missing' %}", "{{ items[0].title / 0 }}", "{% if %}"])
def test_a_template_that_can_never_render_is_refused_before_sending(built_campaign, bad, staff_client):
    # given: a template stored without validation (before this release, or straight into the database)
    Campaign.objects.filter(pk=built_campaign.pk).update(text_template=bad, status=Campaign.Status.READY)
    built_campaign.refresh_from_db()
    # when
    with pytest.raises(CampaignTemplateError, match="text template"):
        campaign_send(campaign=built_campaign)
    api = _api().post(f"/api/v1/campaigns/{built_campaign.pk}/send")
    admin = staff_client.post("/admin/campaigns/campaign/", {
        "action": "send_action", "_selected_action": [built_campaign.pk]}, follow=True)
    # then: nothing moved, and everyone says why
    built_campaign.refresh_from_db()
    assert built_campaign.status == Campaign.Status.READY
    assert set(Recipient.objects.values_list("state", flat=True)) == {Recipient.State.PENDING}
    assert api.status_code == 400 and "text template" in api.json()["detail"]
    assert admin.status_code == 200 and "text template" in admin.content.decode()
    assert mail.outbox == []


# Renders on the sample message (2 items) but divides by zero for recipients with 3 items.
FAILS_FOR_SOME = "{{ 10 / (items|length - 3) }}"


def test_a_template_failing_for_some_recipients_fails_them_and_the_run_finishes(built_campaign):
    # given
    Campaign.objects.filter(pk=built_campaign.pk).update(text_template=FAILS_FOR_SOME)
    built_campaign.refresh_from_db()
    # when
    report = campaign_send(campaign=built_campaign)
    # then
    built_campaign.refresh_from_db()
    assert built_campaign.status == Campaign.Status.SENT
    assert report.failed == 3 and report.pending == 0 and report.in_doubt == 0
    errors = set(Recipient.objects.values_list("error", flat=True))
    assert errors == {"template: text template: division by zero"}
    assert mail.outbox == []


def test_the_api_send_of_a_failing_template_does_not_hang(built_campaign, django_capture_on_commit_callbacks):
    Campaign.objects.filter(pk=built_campaign.pk).update(html_template=FAILS_FOR_SOME)
    api = _api()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/campaigns/{built_campaign.pk}/send")
    assert response.status_code == 202
    assert api.get(f"/api/v1/campaigns/{built_campaign.pk}").json()["status"] == "sent"
    assert api.patch(f"/api/v1/campaigns/{built_campaign.pk}", {"html_template": ""}, format="json").status_code == 200


def test_a_campaign_stuck_sending_can_be_cancelled_back_to_draft_then_edited_and_deleted(built_campaign):
    # given: a worker died mid-send before mailing anyone
    Campaign.objects.filter(pk=built_campaign.pk).update(status=Campaign.Status.SENDING)
    api = _api()
    url = f"/api/v1/campaigns/{built_campaign.pk}"
    blocked = api.patch(url, {"n_items": 2}, format="json")
    assert blocked.status_code == 409 and f"/campaigns/{built_campaign.pk}/cancel" in blocked.json()["detail"]
    # when
    cancelled = api.post(f"{url}/cancel")
    # then
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "draft"
    assert api.patch(url, {"n_items": 2}, format="json").status_code == 200
    assert api.post(f"{url}/build").status_code == 200
    assert api.get(url).json()["status"] == "ready"
    assert api.post(f"{url}/cancel").json()["status"] == "draft"
    assert api.delete(url).status_code == 204


def test_cancelling_after_some_were_mailed_keeps_the_history(built_campaign):
    recipient = Recipient.objects.first()
    Recipient.objects.filter(pk=recipient.pk).update(state=Recipient.State.SENT)
    Campaign.objects.filter(pk=built_campaign.pk).update(status=Campaign.Status.SENDING)
    api = _api()
    assert api.post(f"/api/v1/campaigns/{built_campaign.pk}/cancel").json()["status"] == "cancelled"
    assert Recipient.objects.filter(state=Recipient.State.PENDING).count() == 2
    again = api.post(f"/api/v1/campaigns/{built_campaign.pk}/cancel")
    assert again.status_code == 409 and "nothing to cancel" in again.json()["detail"]
    # a cancelled campaign's pending batch sends nothing
    from campaigns.services.send import recipient_batch_send

    assert recipient_batch_send(recipient_ids=list(Recipient.objects.values_list("pk", flat=True))).sent == 0
    assert mail.outbox == []


def test_admin_action_and_command_cancel(staff_client, built_campaign, capsys):
    Campaign.objects.filter(pk=built_campaign.pk).update(status=Campaign.Status.SENDING)
    response = staff_client.post("/admin/campaigns/campaign/", {
        "action": "cancel_action", "_selected_action": [built_campaign.pk],
    }, follow=True)
    assert response.status_code == 200 and "now draft" in response.content.decode()
    Campaign.objects.filter(pk=built_campaign.pk).update(status=Campaign.Status.BUILDING)
    call_command("campaign", "cancel", str(built_campaign.pk))
    assert f"campaign {built_campaign.pk} is draft" in capsys.readouterr().out
