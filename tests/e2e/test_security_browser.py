"""Issue 8 in a real browser: hostile data fires no script in the admin, and the Content-Security-Policy
breaks nothing (no CSP violation on any admin list, the e-mail preview, Swagger UI or the tracking pages)."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from campaigns.links import unsubscribe_url
from campaigns.models import Campaign, Recipient
from campaigns.services.build import campaign_build
from crm.models import Customer, Item
from recommendations.models import ModelVersion, TrainingRun
from tests.campaigns.conftest import recommend
from tests.factories import CustomerFactory, ItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "csp-password-1"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_TITLE = "<script>alert(2)</script>"
HOSTILE_HTML_TEMPLATE = (
    '"></iframe><script>alert(3)</script><h1 style="font-size:22px">Hi {{ first_name }}</h1>'
    '<img src="x" onerror="alert(4)">{% for item in items %}<p>{{ item.title }}</p>{% endfor %}'
)


class BrowserWatch:
    """Every alert() a page opens and every CSP violation the console reports."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp.append(f"{message.page.url if hasattr(message, 'page') else ''}: {message.text}")


def _setup() -> dict:
    version = ModelVersion.objects.create(algorithm="test", status=ModelVersion.Status.READY, is_active=True)
    customer = CustomerFactory(external_id="evil-1", first_name=HOSTILE_NAME, email="evil@example.com")
    item = ItemFactory(sku="EVIL", title=HOSTILE_TITLE, image_url="https://images.example.com/evil.jpg")
    recommend(version, customer, [item, ItemFactory()])
    plain = Campaign.objects.create(name="Plain", holdout_share=0, n_items=2)
    hostile = Campaign.objects.create(name="Hostile", holdout_share=0, n_items=2)
    campaign_build(campaign=plain)
    campaign_build(campaign=hostile)
    Campaign.objects.filter(pk=hostile.pk).update(html_template=HOSTILE_HTML_TEMPLATE)  # as a write key could
    TrainingRun.objects.create(algorithm="auto", status=TrainingRun.Status.RUNNING, progress=0.4)
    return {
        "customer": customer, "item": item,
        "plain": Recipient.objects.get(campaign=plain, customer=customer),
        "hostile": Recipient.objects.get(campaign=hostile, customer=customer),
    }


def _login(page, base: str) -> None:
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")


def test_hostile_data_runs_no_script_and_the_csp_breaks_nothing(live_server, page, screenshot, django_user_model):
    # given
    data = _setup()
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    base = live_server.url
    watch = BrowserWatch(page)
    _login(page, base)

    # every admin list and the change pages holding hostile data
    urls = [reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry]
    urls += [
        reverse("admin:crm_customer_change", args=[data["customer"].pk]),
        reverse("admin:crm_item_change", args=[data["item"].pk]),
        reverse("admin:campaigns_campaign_add"),
        reverse("admin:campaigns_recipient_change", args=[data["plain"].pk]),
        reverse("admin:recommendations_trainingrun_change", args=[TrainingRun.objects.get().pk]),
    ]
    for url in urls:
        response = page.goto(base + url)
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"].split("; ")

    # the e-mail previews: the default template, and one written to break out
    for key in ("plain", "hostile"):
        page.goto(base + reverse("admin:campaigns_recipient_preview", args=[data[key].pk]))
        frame = page.frame_locator("iframe.tailored-email-frame")
        frame.locator("body").wait_for()
        assert HOSTILE_NAME in frame.locator("body").inner_text()
        assert HOSTILE_NAME in page.locator("pre.tailored-email-text").inner_text()
        screenshot(f"preview-{key}")
    # the e-mail's own inline styles still apply inside the sandboxed frame
    assert frame.locator("h1").evaluate("e => getComputedStyle(e).fontSize") == "22px"
    page.wait_for_timeout(300)

    # Swagger UI from the sidecar's files, under the same policy
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    screenshot("swagger")

    # the public unsubscribe page (no login involved)
    page.context.clear_cookies()
    response = page.goto(unsubscribe_url(recipient_id=data["plain"].pk).replace("http://testserver", base))
    assert response.status == 200 and "default-src 'self'" in response.headers["content-security-policy"].split("; ")
    assert page.locator("button").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(29, 78, 216)"

    # then
    assert watch.dialogs == [], "hostile data ran a script"
    assert watch.csp == [], "\n".join(watch.csp)
    assert Customer.objects.get(pk=data["customer"].pk).first_name == HOSTILE_NAME
    assert Item.objects.filter(title=HOSTILE_TITLE).exists()
