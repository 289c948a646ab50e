"""Rendering: both parts, the item cards, signed links, RFC 8058 headers, a stable Message-ID."""
from __future__ import annotations

import pytest
from django.core import signing

from campaigns.links import CLICK_SALT, token_load
from campaigns.models import Recipient
from campaigns.services.render import recipient_message, recipient_render

pytestmark = pytest.mark.django_db


def test_both_parts_carry_the_name_items_and_signed_links(built_campaign):
    # given
    recipient = Recipient.objects.select_related("customer", "campaign").first()
    # when
    rendered = recipient_render(recipient=recipient)
    # then
    assert recipient.customer.first_name in rendered.text and recipient.customer.first_name in rendered.html
    for entry in recipient.items:
        assert entry["title"] in rendered.text and entry["title"] in rendered.html
        assert entry["price"] in rendered.html and entry["reason"].capitalize() in rendered.html
    assert "/t/o/" in rendered.html and "/t/u/" in rendered.text
    token = rendered.text.split("/t/c/")[1].split("/")[0]
    assert token_load(salt=CLICK_SALT, token=token) == [recipient.pk, recipient.items[0]["item_id"]]
    assert recipient.customer.email not in token and signing.loads(token, salt=CLICK_SALT)
    assert "@" not in rendered.html.split("/t/")[1].split('"')[0]


def test_headers_follow_rfc_8058_and_message_id_is_stable(built_campaign, settings):
    settings.CAMPAIGNS = {"UNSUBSCRIBE_MAILTO": "unsubscribe@example.com"}
    recipient = Recipient.objects.select_related("customer", "campaign").first()
    message = recipient_message(recipient=recipient)
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://testserver/t/u/") and "<mailto:unsubscribe@example.com" in unsubscribe
    assert message.extra_headers["Message-ID"] == recipient_render(recipient=recipient).message_id
    assert message.alternatives[0][1] == "text/html"


def test_a_campaign_can_override_the_templates(built_campaign):
    built_campaign.subject_template = "Hi {{ first_name }} & co"
    built_campaign.text_template = "{% for item in items %}{{ item.title }} <{{ item.click_url }}>{% endfor %}"
    built_campaign.save()
    recipient = Recipient.objects.select_related("customer", "campaign").first()
    rendered = recipient_render(recipient=recipient)
    assert rendered.subject == f"Hi {recipient.customer.first_name} & co"
    assert "<http://testserver/t/c/" in rendered.text  # no HTML escaping in the text part


def test_admin_previews_any_recipients_email(built_campaign, staff_client):
    recipient = Recipient.objects.first()
    response = staff_client.get(f"/admin/campaigns/recipient/{recipient.pk}/preview/")
    assert response.status_code == 200
    assert recipient.items[0]["title"].encode() in response.content
