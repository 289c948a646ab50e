"""The Content-Security-Policy (django-csp): on the admin, Swagger UI and the tracking pages, with no
inline script or style to allow. The browser check is tests/e2e/test_security_browser.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from campaigns.links import unsubscribe_url
from campaigns.models import Campaign, Recipient
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def _assert_strict(policy: dict[str, list[str]]) -> None:
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'self'"]


def test_admin_pages_carry_the_policy(client, staff_client):
    _assert_strict(_policy(client.get("/admin/login/")))
    _assert_strict(_policy(staff_client.get("/admin/")))
    _assert_strict(_policy(staff_client.get("/admin/crm/customer/")))


def test_swagger_ui_runs_without_inline_script(staff_client):
    page = staff_client.get("/api/docs/")
    assert page.status_code == 200
    _assert_strict(_policy(page))
    scripts = re.findall(rb"<script([^>]*)>", page.content)
    assert scripts and all(b"src=" in attrs for attrs in scripts)
    assert b"<style" not in page.content
    init = staff_client.get("/api/docs/?script=")
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")


def test_tracking_pages_carry_the_policy(client):
    recipient = Recipient.objects.create(campaign=Campaign.objects.create(name="c"), customer=CustomerFactory(),
                                         email="someone@example.com")
    url = unsubscribe_url(recipient_id=recipient.pk).replace("http://testserver", "")
    page = client.get(url)
    assert page.status_code == 200
    _assert_strict(_policy(page))
    _assert_strict(_policy(client.get("/t/u/not-a-token/")))


def test_no_template_of_ours_needs_inline_script_or_style():
    root = Path(settings.BASE_DIR) / "templates"
    for path in root.rglob("*.html"):
        if "campaigns/email" in path.as_posix():
            continue  # e-mails: mail clients need inline styles; shown only in the sandboxed preview
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert "<style" not in text and "style=" not in text, path
