"""Issue 8, finding 1: stored XSS in the admin's recipient preview.

A customer's first name and an item's title come from the API; a campaign's HTML template comes
from a ``write`` key. None of them may put executable markup into a staff user's admin page.
"""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign, Recipient
from campaigns.services.build import campaign_build
from crm.models import Customer, Item
from crm.services import api_key_create
from tests.campaigns.conftest import recommend

pytestmark = pytest.mark.django_db

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_TITLE = '<script>alert(2)</script>" onmouseover="alert(22)'
HOSTILE_HTML_TEMPLATE = '"></iframe><script>alert(3)</script><p>{{ first_name }}</p>'


class _Page(HTMLParser):
    """The elements a browser would build from the page: what could run is what we look for."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(content: bytes) -> _Page:
    page = _Page()
    page.feed(content.decode())
    return page


@pytest.fixture
def hostile_recipient(version, campaign):
    _, raw = api_key_create(name="attacker", scopes=["read", "write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.post("/api/v1/customers", {"external_id": "evil-1", "email": "evil@example.com",
                                          "first_name": HOSTILE_NAME}, format="json").status_code == 201
    assert api.post("/api/v1/items", {"sku": "EVIL", "title": HOSTILE_TITLE, "price": "1.00",
                                      "url": "https://shop.example.com/evil"}, format="json").status_code == 201
    customer = Customer.objects.get(external_id="evil-1")
    Customer.objects.filter(pk=customer.pk).update(email_opt_in=True)  # consent is not what this test is about
    recommend(version, customer, [Item.objects.get(sku="EVIL")])
    campaign_build(campaign=campaign)
    return Recipient.objects.get(customer=customer)


def _assert_nothing_runs(page: _Page) -> dict[str, str | None]:
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert all(attrs.get("src") for attrs in scripts), "an inline <script> made it into the admin page"
    assert not any(tag == "img" and "onerror" in attrs for tag, attrs in page.tags)
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    frames = [attrs for tag, attrs in page.tags if tag == "iframe"]
    assert len(frames) == 1
    frame = frames[0]
    assert frame["sandbox"] == "", "the preview frame must be sandboxed without allow-scripts"
    return frame


def test_hostile_customer_and_item_data_is_inert_in_the_preview(staff_client, hostile_recipient):
    # when
    response = staff_client.get(f"/admin/campaigns/recipient/{hostile_recipient.pk}/preview/")
    # then
    assert response.status_code == 200
    page = _parse(response.content)
    frame = _assert_nothing_runs(page)
    inner = _parse(frame["srcdoc"].encode())  # the e-mail document the sandboxed frame builds
    assert not any(tag in ("script", "iframe") for tag, _ in inner.tags)
    assert not any(name.startswith("on") for _, attrs in inner.tags for name in attrs)
    assert HOSTILE_NAME in "".join(inner.text)  # shown as text, as the customer typed it
    assert HOSTILE_NAME in "".join(page.text)  # the text part, escaped into a <pre>
    csp = response["Content-Security-Policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'self'" in script_src and "unsafe-inline" not in script_src


def test_a_template_that_closes_the_srcdoc_attribute_stays_inside_the_sandbox(staff_client, hostile_recipient):
    # given: a write key stores an HTML template that tries to break out of the preview's attribute
    Campaign.objects.filter(pk=hostile_recipient.campaign_id).update(html_template=HOSTILE_HTML_TEMPLATE)
    # when
    response = staff_client.get(f"/admin/campaigns/recipient/{hostile_recipient.pk}/preview/")
    # then: the admin page has no inline script; the template's own script exists only inside the
    # sandboxed frame (no allow-scripts), where it cannot run
    assert response.status_code == 200
    page = _parse(response.content)
    frame = _assert_nothing_runs(page)
    assert "<script>alert(3)</script>" in frame["srcdoc"]
    assert b"<script>alert(3)" not in response.content


def test_the_preview_does_not_record_an_open(staff_client, hostile_recipient):
    response = staff_client.get(f"/admin/campaigns/recipient/{hostile_recipient.pk}/preview/")
    frame = _assert_nothing_runs(_parse(response.content))
    assert "/t/o/" not in frame["srcdoc"]


def test_a_template_failing_at_render_shows_the_error_not_a_500(staff_client, hostile_recipient):
    Campaign.objects.filter(pk=hostile_recipient.campaign_id).update(text_template="{% include 'missing' %}")
    response = staff_client.get(f"/admin/campaigns/recipient/{hostile_recipient.pk}/preview/")
    assert response.status_code == 200
    assert "cannot be rendered" in response.content.decode()
    assert "include" in response.content.decode()
