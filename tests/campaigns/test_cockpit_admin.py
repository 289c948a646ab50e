"""The cockpit's server side: dashboard on an empty and a busy shop, plain labels, the training curve, the
e-mail preview (escaped, tracking defused), send confirmation and refusals, read-only records, the outbox."""
from __future__ import annotations

import html
import os
import re

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Click, Recipient
from campaigns.presentation import uplift_text
from campaigns.services.send import campaign_send
from recommendations.curve import training_curve, training_curve_chart
from recommendations.labels import headline_metrics, metric_label
from recommendations.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


def test_empty_shop_dashboard_says_so_instead_of_zeros(staff_client):
    content = staff_client.get(reverse("admin:index")).content.decode()
    assert "No model is serving yet" in content
    assert "No campaign sent yet" in content
    assert "No broker configured" in content
    assert "n/a" in content  # contactable share of no customers
    assert "None" not in re.sub(r"<[^>]+>", "", content)
    # accounts and the scheduler sit under "System", after the business apps
    assert content.index("tailored-system") > content.index("Recipients")


def test_dashboard_with_a_sent_campaign_shows_funnel_and_chart_data(staff_client, built_campaign, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    campaign_send(campaign=built_campaign)
    content = staff_client.get(reverse("admin:index")).content.decode()
    assert "Spring picks" in content and "bought a clicked item" in content
    assert 'id="chart-funnel" type="application/json"' in content  # data via json_script, not inline JS
    assert "<script>" not in content  # no inline script (CSP script-src 'self')


def test_metric_labels_and_both_metric_layouts():
    assert metric_label("hr@10") == "hit rate (top 10)"
    assert metric_label("ndcg@10_se") == "ranking quality (NDCG) (top 10), standard error"
    assert metric_label("recall@20") == "recall (top 20)"
    flat = headline_metrics({"test": {"hr@10": 0.5}, "candidates": {"popularity": {"hr@10": 0.1}}})
    assert flat == {"discover": {"hr@10": 0.5, "baselines": {"popularity": {"hr@10": 0.1}}}}
    tasks = headline_metrics({"hr@10": 0.5, "tasks": {"buy_again": {"hr@10": 0.7, "hr@10_se": 0.02}}})
    assert tasks == {"buy_again": {"hr@10": 0.7, "hr@10_se": 0.02}}


def test_training_curve_is_read_from_the_log():
    log = ("[10:00:00] fitting sequential\n"
           "[10:00:05] sequential: epoch=1, loss=0.9, seconds=1.2, valid_ndcg=0.1, valid_hr=0.2, best_epoch=1\n"
           "[10:00:09] sequential: epoch=2, loss=0.7, seconds=1.1, valid_ndcg=0.12, valid_hr=0.25, best_epoch=2\n"
           "[10:00:10] ease: epoch=1, n_active_items=40\n")
    curves = training_curve(log)
    assert [p["loss"] for p in curves["sequential"]] == [0.9, 0.7]
    spec = training_curve_chart(log)
    assert spec["data"]["labels"] == [1, 2]  # one-shot fits (ease) draw no curve
    assert [ds["label"] for ds in spec["data"]["datasets"]] == [
        "training loss", "validation hit rate", "validation ranking quality"]


def test_uplift_text_without_data():
    assert uplift_text(None).startswith("not enough data yet")
    zero = {"uplift": 0.0, "ci_low": 0.0, "ci_high": 0.0, "treated_rate": 0.0, "control_rate": 0.0,
            "significant": False}
    assert uplift_text(zero).startswith("not enough data yet")


def test_preview_escapes_the_email_into_srcdoc_and_defuses_tracking(staff_client, built_campaign):
    recipient = Recipient.objects.filter(campaign=built_campaign).first()
    customer = recipient.customer
    customer.first_name = '"><script>alert(1)</script>'
    customer.save()
    url = reverse("admin:campaigns_campaign_change", args=[built_campaign.pk]) + f"?preview={recipient.pk}"
    content = staff_client.get(url).content.decode()
    srcdoc = re.search(r'<iframe sandbox="" [^>]*srcdoc="([^"]*)"', content)
    assert srcdoc, "the HTML part sits in one attribute of a sandboxed iframe"
    inner = html.unescape(srcdoc.group(1))
    assert "&lt;script&gt;" in inner  # the e-mail template escaped the name; the attribute escaped it again
    assert "<script>alert(1)</script>" not in content
    assert "/t/" not in inner  # no live open pixel, click or unsubscribe link
    assert Recipient.objects.get(pk=recipient.pk).opened_at is None


def test_send_is_confirmed_with_counts_and_refused_when_already_sent(staff_client, built_campaign, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_url = reverse("admin:campaigns_campaign_send", args=[built_campaign.pk])
    page = staff_client.get(send_url).content.decode()
    assert "will be e-mailed now</th><td>3" in page
    assert Campaign.objects.get(pk=built_campaign.pk).status == Campaign.Status.READY  # a GET sends nothing
    response = staff_client.post(send_url, {"confirm": "yes"}, follow=True)
    assert "sending 3 e-mail(s)" in response.content.decode()
    assert Campaign.objects.get(pk=built_campaign.pk).status == Campaign.Status.SENT
    again = staff_client.post(send_url, {"confirm": "yes"}, follow=True).content.decode()
    assert "was already sent" in again


def test_sent_campaign_recipients_and_clicks_are_read_only(staff_client, built_campaign, settings, items):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    campaign_send(campaign=built_campaign)
    recipient = Recipient.objects.filter(campaign=built_campaign).first()
    Click.objects.create(recipient=recipient, item=items[0])
    campaign_page = staff_client.get(reverse("admin:campaigns_campaign_change", args=[built_campaign.pk]))
    assert 'name="_save"' not in campaign_page.content.decode()
    post = staff_client.post(reverse("admin:campaigns_campaign_change", args=[built_campaign.pk]), {"name": "x"})
    assert post.status_code == 403 and Campaign.objects.get(pk=built_campaign.pk).name == "Spring picks"
    recipient_page = staff_client.get(reverse("admin:campaigns_recipient_change", args=[recipient.pk])).content
    assert b'name="_save"' not in recipient_page
    assert b'"clicks-MAX_NUM_FORMS" value="0"' in recipient_page
    assert b"1/1 -&gt; customer" not in recipient_page  # a recipient reads as a person, not as ids
    assert recipient.email.encode() in recipient_page


def test_impossible_transitions_are_refused_with_a_sentence(staff_client, campaign):
    changelist = reverse("admin:campaigns_campaign_changelist")
    response = staff_client.post(changelist, {"action": "pause_action", "_selected_action": [campaign.pk]},
                                 follow=True)
    assert "only a scheduled, ready or sending campaign can be paused" in response.content.decode()
    send = staff_client.get(reverse("admin:campaigns_campaign_send", args=[campaign.pk]), follow=True)
    assert "has not been built yet" in send.content.decode()


def test_outbox_lists_files_and_refuses_paths(staff_client, settings, tmp_path):
    settings.EMAIL_FILE_PATH = str(tmp_path)
    (tmp_path / "20260101-1.log").write_text("Subject: <b>Hi</b>\n")
    (tmp_path.parent / "secret.log").write_text("nope")
    listing = staff_client.get(reverse("admin:campaigns_campaign_outbox")).content.decode()
    assert "20260101-1.log" in listing
    message = staff_client.get(reverse("admin:campaigns_campaign_outbox_message", args=["20260101-1.log"]))
    assert "Subject: &lt;b&gt;Hi&lt;/b&gt;" in message.content.decode()
    escape = staff_client.get("/admin/campaigns/campaign/outbox/..%2Fsecret.log/", follow=True)
    assert "nope" not in escape.content.decode()
    assert staff_client.get(reverse("admin:campaigns_campaign_outbox_message", args=["x.txt"])).status_code == 404


def test_train_now_refuses_while_a_run_is_going_and_score_now_needs_a_model_file(staff_client):
    running = TrainingRun.objects.create(status=TrainingRun.Status.RUNNING)
    response = staff_client.post(reverse("admin:recommendations_trainingrun_start"), follow=True)
    assert f"Training run #{running.pk} is already running" in response.content.decode()
    assert TrainingRun.objects.count() == 1
    version = ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.TRAINED)
    response = staff_client.post(reverse("admin:recommendations_modelversion_changelist"),
                                 {"action": "score_now", "_selected_action": [version.pk]}, follow=True)
    assert "has no usable model file" in response.content.decode()
    assert ModelVersion.objects.count() == 1


def test_campaign_build_action_names_the_run(staff_client, campaign, make_customers):
    make_customers(2)
    response = staff_client.post(reverse("admin:campaigns_campaign_changelist"),
                                 {"action": "build_action", "_selected_action": [campaign.pk]}, follow=True)
    assert "built run 1 for 2 customers" in response.content.decode()


def test_dashboard_renders_when_the_broker_is_down(staff_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Broker unreachable" in response.content.decode()


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL (a Redis database to use)")
def test_dashboard_counts_waiting_messages_per_queue(settings):
    import redis

    from campaigns.dashboard import queue_lengths

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = os.environ["TEST_REDIS_URL"]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("default", "gpu")
    client.lpush("gpu", "a", "b")
    try:
        assert queue_lengths() == ([("default", 0), ("gpu", 2)], "Broker reachable.")
    finally:
        client.delete("gpu")
