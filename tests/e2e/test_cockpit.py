"""The marketer's cockpit in a real browser, on demo-like data: the synthetic shop, a model trained by the
real pipeline, the sample campaign sent into the file outbox with simulated replies, a run in progress.

Every page must draw its charts (a canvas with data points), show no Python ``None``, no raw JSON
and no code name, and records of what happened (a sent campaign, recipients, clicks) offer no Save.
Screenshots go to ``SCREENSHOT_DIR`` when set (``docs/img`` is made this way).
"""
from __future__ import annotations

import math
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.demo import DEMO_NAME, demo_campaign_create
from campaigns.models import Campaign, Recipient
from campaigns.services.build import campaign_build
from campaigns.services.campaign import campaign_create
from crm.demo import demo_data_create, demo_now
from recommendations.models import ModelVersion, TrainingRun
from recommendations.services.training import training_run_enqueue

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "cockpit-password-1"
VIEWPORT = {"width": 1400, "height": 900}
CODE_NAMES = ("in_doubt", "scanner_flagged", "no_consent", "skipped: no_", "hr@10", "ndcg@10", "active_test",
              "buy_again", "is_holdout", "cold_hr", "n_targets", "fit_seconds")
RAW_JSON = re.compile(r'[\[{]\s*"[a-z_]+"\s*:')
EPOCH = "[10:0{m}:00] sequential: epoch={e}, loss={loss:.4f}, seconds=3.1, valid_ndcg={ndcg:.4f}, valid_hr={hr:.4f}"


def running_log(epochs: int) -> str:
    lines = ["[10:00:00] embedding item texts", "[10:00:01] dataset: 80 customers, 48 items, 3000 events",
             "[10:00:02] fitting sequential"]
    lines += [EPOCH.format(m=min(e, 9), e=e, loss=1.4 / (1 + 0.3 * e), ndcg=0.05 + 0.01 * math.log1p(e),
                           hr=0.1 + 0.02 * math.log1p(e)) for e in range(1, epochs + 1)]
    return "\n".join(lines) + "\n"


def with_task_errors(metrics: dict, popularity: dict) -> dict:
    """The metrics layout of newer versions (per task, standard errors, baselines) from a run's test metrics.

    The standard error of a hit rate is that of a proportion, sqrt(p(1-p)/n); NDCG gets the same
    approximation here (the engine computes its own from per-customer values).
    """
    test = metrics["test"]
    n = max(1, test["n_targets"])
    discover = {**test, **{f"{m}_se": math.sqrt(test[m] * (1 - test[m]) / n) for m in ("hr@10", "ndcg@10")},
                "baselines": {"popularity": {m: popularity[m] for m in ("hr@10", "ndcg@10", "mrr")}}}
    return {**metrics, "tasks": {"discover": discover}}


@pytest.fixture
def demo_shop(settings, live_server, tmp_path):
    settings.SITE_URL = live_server.url
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    demo_data_create(customers=80, items=48, seed=5, now=demo_now())
    first = training_run_enqueue(algorithm="popularity")
    second = training_run_enqueue(algorithm="ease", activate=True)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == TrainingRun.Status.SUCCEEDED
    active = ModelVersion.objects.get(is_active=True)
    active.metrics = with_task_errors(active.metrics, first.model_version.metrics["test"])
    active.save(update_fields=["metrics"])
    report = demo_campaign_create(seed=5)
    ready = campaign_create(name="Autumn picks", n_items=3, holdout_share=0.2)
    campaign_build(campaign=ready)
    run = TrainingRun.objects.create(algorithm="sequential", status=TrainingRun.Status.RUNNING,
                                     stage="training sequential", progress=0.4, log=running_log(6),
                                     started_at=timezone.now() - timedelta(minutes=2))
    return {"campaign": report.campaign, "ready": ready, "run": run, "active": active}


@pytest.fixture
def wide_page(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(60_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()


def shoot(page, name: str, tmp_path: Path, *, full_page: bool = True, locator=None) -> None:
    import os

    target = tmp_path / f"{name}.png"
    (locator or page).screenshot(path=str(target), **({} if locator else {"full_page": full_page}))
    if os.environ.get("SCREENSHOT_DIR"):
        folder = Path(os.environ["SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, folder / target.name)


def assert_plain(page, where: str) -> None:
    text = page.inner_text("#content")
    assert not re.search(r"\bNone\b", text), f"{where} shows Python None"
    assert not RAW_JSON.search(text), f"{where} shows raw JSON"
    for code in CODE_NAMES:
        assert code not in text, f"{where} shows the code name {code!r}"
    assert not page.errors, f"{where}: script errors {page.errors}"


def wait_for_points(page, element_id: str, *, above: int, timeout: float = 15) -> None:
    """Poll the chart's data-points attribute from Python: the page's CSP forbids the eval behind
    ``page.wait_for_function`` with a string expression (which is the point of the CSP)."""
    canvas = page.locator(f'canvas[data-chart="{element_id}"]')
    deadline = time.monotonic() + timeout
    while int(canvas.get_attribute("data-points") or 0) <= above:
        assert time.monotonic() < deadline, f"{element_id} never drew more than {above} points"
        page.wait_for_timeout(200)


def assert_chart(page, element_id: str) -> int:
    canvas = page.locator(f'canvas[data-chart="{element_id}"]')
    canvas.wait_for()
    wait_for_points(page, element_id, above=0)
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    return int(canvas.get_attribute("data-points"))


def test_cockpit_tour(live_server, wide_page, demo_shop, django_user_model, tmp_path):
    page, base = wide_page, live_server.url
    django_user_model.objects.create_superuser("marketer", "marketer@example.com", PASSWORD)
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # the dashboard
    page.wait_for_selector(".tailored-dashboard")
    for chart in ("chart-events", "chart-funnel", "chart-segments"):
        assert_chart(page, chart)
    dashboard = page.inner_text("#content")
    assert "80" in dashboard and "may be e-mailed" in dashboard
    assert DEMO_NAME in dashboard and "bought a clicked item" in dashboard
    assert "Last successful training" in dashboard and "training run #" in dashboard
    assert page.locator("a[href='/api/docs/']").count() == 1
    assert page.locator("#dashboard-train").is_visible()
    assert page.locator("details.tailored-system").count() == 1  # accounts and scheduler tucked away
    assert not page.locator("details.tailored-system").get_attribute("open")
    assert_plain(page, "dashboard")
    shoot(page, "cockpit-dashboard", tmp_path)

    # a model version: measures in plain words, quality across versions with error bars
    active = demo_shop["active"]
    page.goto(f"{base}/admin/recommendations/modelversion/{active.pk}/change/")
    assert assert_chart(page, "chart-quality") >= 3  # two versions, hit rate and ranking quality
    assert "share of customers whose next purchase was in their top 10" in page.inner_text("#content")
    assert "±" in page.inner_text("table.tailored-metrics")
    assert_plain(page, "model version")
    shoot(page, "cockpit-model-version", tmp_path)
    page.goto(f"{base}/admin/recommendations/modelversion/")
    assert_plain(page, "model versions")

    # a training run in progress: the curve refreshes by itself
    run = demo_shop["run"]
    page.goto(f"{base}/admin/recommendations/trainingrun/{run.pk}/change/")
    before = assert_chart(page, "chart-curve")
    assert page.locator("canvas[data-poll]").count() == 1
    shoot(page, "cockpit-training-run", tmp_path)
    TrainingRun.objects.filter(pk=run.pk).update(log=running_log(9), progress=0.55)
    wait_for_points(page, "chart-curve", above=before, timeout=60)
    assert "55%" in page.inner_text("#run-live")
    assert_plain(page, "training run")
    # "Train now" while a run is going: refused, pointing at the running one
    page.goto(f"{base}/admin/recommendations/trainingrun/")
    page.click("#train-now")
    page.wait_for_selector("ul.messagelist")
    assert f"Training run #{run.pk} is already running" in page.inner_text("ul.messagelist")

    # the sent campaign: funnel, uplift, per item, preview; read-only
    campaign = demo_shop["campaign"]
    page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/change/")
    for chart in ("chart-funnel", "chart-uplift", "chart-items"):
        assert_chart(page, chart)
    content = page.inner_text("#content")
    assert "bought a clicked item" in content and "EUR" in content and "10%" in content
    assert page.locator("input[name=_save]").count() == 0, "a sent campaign must not offer Save"
    assert page.locator("#send-campaign").count() == 0
    frame = page.frame_locator("#email-preview iframe")
    assert "Hello" in frame.locator("body").inner_text()
    assert frame.locator("a[href*='/t/']").count() == 0, "the preview must not carry live tracking links"
    assert page.locator("#email-preview iframe").get_attribute("sandbox") == ""
    assert_plain(page, "campaign")
    page.locator("#email-preview iframe").scroll_into_view_if_needed()  # full-page shots skip unpainted frames
    page.wait_for_timeout(300)
    shoot(page, "cockpit-campaign", tmp_path)
    # a chosen recipient's preview
    chosen = Recipient.objects.filter(campaign=campaign, state=Recipient.State.SENT).order_by("pk")[1]
    page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/change/?preview={chosen.pk}")
    preview = page.locator("#email-preview")
    assert chosen.email in preview.inner_text()
    assert chosen.customer.first_name in page.frame_locator("#email-preview iframe").locator("body").inner_text()
    preview.scroll_into_view_if_needed()
    shoot(page, "cockpit-recipient-preview", tmp_path, locator=preview)
    assert Recipient.objects.get(pk=chosen.pk).opened_at == chosen.opened_at  # looking is not opening
    # sending it again is refused with a sentence
    page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/send/")
    assert "was already sent" in page.inner_text("ul.messagelist")

    # recipients and their clicks: records, not forms
    clicked = Recipient.objects.filter(campaign=campaign, clicked_at__isnull=False).first()
    page.goto(f"{base}/admin/campaigns/recipient/{clicked.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0
    add_click = page.locator("#clicks-group a.addlink")
    assert add_click.count() == 0 or not add_click.first.is_visible(), "nobody may invent clicks"
    assert page.locator("#clicks-group input[type=checkbox]").count() == 0  # nor delete them
    assert clicked.email in page.inner_text("#content")
    assert_plain(page, "recipient")
    page.goto(f"{base}/admin/campaigns/recipient/?campaign__id__exact={campaign.pk}")
    assert "holdout (kept out to measure)" in page.inner_text("#result_list")
    assert_plain(page, "recipients")

    # a built campaign: the send confirmation shows counts, then sends
    ready = demo_shop["ready"]
    page.goto(f"{base}/admin/campaigns/campaign/{ready.pk}/change/")
    page.click("#send-campaign")
    counts = page.inner_text("#send-counts")
    pending = Recipient.objects.filter(campaign=ready, state=Recipient.State.PENDING).count()
    assert f"will be e-mailed now\t{pending}" in counts
    page.click("#confirm-send")
    page.wait_for_selector("ul.messagelist")
    assert f"sending {pending:,} e-mail(s)" in page.inner_text("ul.messagelist")
    assert Campaign.objects.get(pk=ready.pk).status == Campaign.Status.SENT

    # the outbox the demo wrote
    page.goto(f"{base}/admin/campaigns/campaign/outbox/")
    page.click("#outbox-files a >> nth=0")
    assert "Subject:" in page.inner_text("#outbox-text")

    # the lists a marketer opens
    for url in ("/admin/campaigns/campaign/", "/admin/recommendations/trainingrun/", "/admin/crm/customer/",
                "/admin/crm/segment/"):
        page.goto(base + url)
        assert_plain(page, url)
