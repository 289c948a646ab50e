"""Tracking links: signed tokens, open pixel, click redirect + interaction, scanners, unsubscribe."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.links import click_url, open_url, unsubscribe_url
from campaigns.models import Click, Recipient
from campaigns.services.send import campaign_send
from campaigns.services.tracking import SCANNER_ALL_LINKS, SCANNER_TOO_SOON, SCANNER_USER_AGENT
from crm.models import Interaction

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


@pytest.fixture
def recipient(built_campaign):
    campaign_send(campaign=built_campaign)
    Recipient.objects.update(sent_at=timezone.now() - timedelta(hours=1))
    return Recipient.objects.select_related("customer").first()


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_tampered_or_foreign_tokens_get_an_error_page_not_a_500(client, recipient):
    """A changed signature, a truncated token, or an open token used as a click: 400."""
    url = _path(click_url(recipient_id=recipient.pk, item_id=recipient.item_ids[0]))
    assert client.get(url[:-3] + "xx/").status_code == 400
    assert client.get("/t/c/garbage/").status_code == 400
    open_token = _path(open_url(recipient_id=recipient.pk)).split("/")[3].removesuffix(".gif")
    assert client.get(f"/t/c/{open_token}/").status_code == 400
    assert client.get("/t/u/not-a-token/").status_code == 400
    assert client.post("/t/u/not-a-token/").status_code == 400
    assert client.get("/t/o/garbage.gif").status_code == 200  # a pixel regardless


def test_open_pixel_records_the_first_open(client, recipient):
    response = client.get(_path(open_url(recipient_id=recipient.pk)))
    assert response["Content-Type"] == "image/gif"
    recipient.refresh_from_db()
    first = recipient.opened_at
    client.get(_path(open_url(recipient_id=recipient.pk)))
    recipient.refresh_from_db()
    assert first is not None and recipient.opened_at == first


def test_click_records_one_interaction_and_redirects_to_the_item_only(client, recipient):
    """A double click is one Interaction (deterministic event id); ?next= is ignored."""
    # given
    item_id = recipient.item_ids[0]
    url = _path(click_url(recipient_id=recipient.pk, item_id=item_id))
    # when
    first = client.get(url + "?next=https://evil.example.com/", HTTP_USER_AGENT=BROWSER)
    second = client.get(url, HTTP_USER_AGENT=BROWSER)
    # then
    assert first.status_code == second.status_code == 302
    assert first["Location"] == recipient.items[0]["url"]
    interaction = Interaction.objects.get(kind="click", customer=recipient.customer)
    assert (interaction.item_id, interaction.source, interaction.excluded_from_training) == (item_id, "campaign", False)
    assert Click.objects.get().count == 2
    recipient.refresh_from_db()
    assert recipient.clicked_at and recipient.opened_at and not recipient.click_flagged


def test_a_token_for_an_item_not_in_the_email_is_refused(client, recipient):
    other = Recipient.objects.exclude(pk=recipient.pk).first()
    foreign = [i for i in other.item_ids if i not in recipient.item_ids] or [999999]
    response = client.get(_path(click_url(recipient_id=recipient.pk, item_id=foreign[0])))
    assert response.status_code == 404 and not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("user_agent", "sent_seconds_ago", "reason"),
    [("Mozilla/5.0 (compatible; Barracuda Sentinel)", 3600, SCANNER_USER_AGENT), (BROWSER, 2, SCANNER_TOO_SOON)],
)
def test_scanner_like_clicks_are_flagged_and_kept_out_of_training(client, recipient, user_agent, sent_seconds_ago,
                                                                   reason):
    Recipient.objects.filter(pk=recipient.pk).update(sent_at=timezone.now() - timedelta(seconds=sent_seconds_ago))
    response = client.get(_path(click_url(recipient_id=recipient.pk, item_id=recipient.item_ids[0])),
                          HTTP_USER_AGENT=user_agent)
    assert response.status_code == 302
    click = Click.objects.get()
    assert (click.flagged, click.flag_reason) == (True, reason)
    assert Interaction.objects.get().excluded_from_training is True
    recipient.refresh_from_db()
    assert recipient.click_flagged and recipient.clicked_at is None


def test_every_link_clicked_within_seconds_is_flagged(client, recipient):
    for item_id in recipient.item_ids:
        client.get(_path(click_url(recipient_id=recipient.pk, item_id=item_id)), HTTP_USER_AGENT=BROWSER)
    assert set(Click.objects.values_list("flagged", "flag_reason")) == {(True, SCANNER_ALL_LINKS)}
    assert not Interaction.objects.filter(excluded_from_training=False).exists()
    recipient.refresh_from_db()
    assert recipient.clicked_at is None and recipient.click_flagged


def test_get_unsubscribe_only_asks_and_post_one_click_unsubscribes(client, recipient, built_campaign):
    """RFC 8058: GET never unsubscribes; the one-click POST does (no CSRF token); later sends skip."""
    url = _path(unsubscribe_url(recipient_id=recipient.pk))
    # when: a GET (a scanner, a preview)
    page = client.get(url)
    # then
    assert page.status_code == 200 and b"<form method=\"post\"" in page.content
    recipient.customer.refresh_from_db()
    assert recipient.customer.unsubscribed_at is None
    # when: the mailbox provider's one-click POST
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(url, {"List-Unsubscribe": "One-Click"})
    # then
    assert response.status_code == 200
    recipient.customer.refresh_from_db()
    assert recipient.customer.unsubscribed_at is not None and not recipient.customer.email_opt_in
    from campaigns.services.build import campaign_build

    Recipient.objects.filter(campaign=built_campaign).update(state=Recipient.State.PENDING)
    campaign_build(campaign=built_campaign)  # a rebuild replaces unsent rows
    recipient = Recipient.objects.get(campaign=built_campaign, customer=recipient.customer)
    assert (recipient.state, recipient.skip_reason) == ("skipped", "unsubscribed")
