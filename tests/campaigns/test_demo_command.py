"""``manage.py demo`` (what ``make demo`` runs): shop, model, sample campaign into the file outbox, login;
a short summary ending with the address and the password; a second run adds nothing."""
from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from campaigns.demo import DEMO_NAME
from campaigns.models import Campaign, Recipient
from crm.models import Customer, Interaction
from recommendations.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_builds_everything_and_prints_a_short_summary(settings, tmp_path):
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the demo must not use it
    out = StringIO()
    # when
    call_command("demo", "--customers", "40", "--items", "24", "--algorithm", "popularity",
                 "--password", "pw-demo-1", stdout=out)
    # then
    lines = out.getvalue().strip().splitlines()
    assert len(lines) < 20, "the summary fits on one screen"
    assert lines[-1].strip() == "user: admin   password: pw-demo-1"
    assert lines[-2].strip().startswith("Open http") and lines[-2].strip().endswith("/admin/")
    assert "Traceback" not in out.getvalue() and "Warning" not in out.getvalue()
    assert ModelVersion.objects.filter(is_active=True).exists()
    campaign = Campaign.objects.get(name=DEMO_NAME)
    sent = Recipient.objects.filter(campaign=campaign, state=Recipient.State.SENT).count()
    assert sent > 0
    # the 10 % holdout is the deterministic hash of (campaign, customer) ids, which vary with the order of
    # the tests on PostgreSQL (sequences are not reset): check the rule, not that 40 customers drew one
    recipients = Recipient.objects.filter(campaign=campaign)
    assert all(r.is_holdout == campaign.is_holdout(r.customer_id) for r in recipients if not r.skip_reason)
    outbox = list((tmp_path / "outbox").glob("*.log"))
    assert outbox and sum(f.read_text().count("Subject: ") for f in outbox) == sent
    assert authenticate(RequestFactory().post("/admin/login/"), username="admin", password="pw-demo-1") is not None
    # when run again: nothing twice
    counts = (Customer.objects.count(), Interaction.objects.count(), ModelVersion.objects.count(),
              Campaign.objects.count())
    again = StringIO()
    call_command("demo", "--algorithm", "popularity", stdout=again)
    assert counts == (Customer.objects.count(), Interaction.objects.count(), ModelVersion.objects.count(),
                      Campaign.objects.count())
    assert "already there" in again.getvalue()
