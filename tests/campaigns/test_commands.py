"""manage.py campaign ...: what a script drives end to end."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command("campaign", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_create_build_send_results_offers_end_to_end(make_customers, tmp_path):
    # given
    make_customers(5)
    SegmentFactory(name="everyone")
    # when
    campaign_id = _run("create", "--name", "CLI", "--segment", "everyone", "--items", "2", "--holdout", "0").strip()
    _run("build", campaign_id)
    sent = json.loads(_run("send", campaign_id))
    results = json.loads(_run("results", campaign_id, "--json"))
    _run("offers", campaign_id, "--format", "json", "--out", str(tmp_path / "offers.json"))
    csv_out = _run("offers", campaign_id, "--format", "csv")
    # then
    assert campaign_id.isdigit() and sent["sent"] == 5
    assert {"recipients", "holdout", "skipped", "sent", "failed", "opened", "clicked", "converted"} <= set(results)
    assert (results["recipients"], results["sent"]) == (5, 5)
    assert len(json.loads((tmp_path / "offers.json").read_text())["offers"]) == 10
    assert csv_out.splitlines()[0].startswith("customer_id,email,rank,item_id")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "x", "--segment", "nope"], "No segment named 'nope'."),
        (["create", "--name", "x", "--holdout", "1.5"], "--holdout must be between 0 and 1."),
        (["create", "--name", "x", "--items", "0"], "--items must be between 1 and 50."),
        (["build", "999999"], "No campaign with id 999999."),
    ],
)
def test_bad_input_is_a_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)


def test_sending_an_unbuilt_campaign_is_a_command_error(campaign):
    with pytest.raises(CommandError, match="build it first"):
        _run("send", str(campaign.pk))


def test_schedule_from_the_command_line(campaign):
    _run("schedule", str(campaign.pk), "--cron", "30 8 * * *")
    with pytest.raises(CommandError, match="UTC offset"):
        _run("schedule", str(campaign.pk), "--at", "2030-01-01T09:00:00")
