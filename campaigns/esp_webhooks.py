"""Providers' tracking webhooks, mounted under /webhooks/esp/: one endpoint per provider.

Each is anymail's own tracking view (basic auth with ``ANYMAIL["WEBHOOK_SECRET"]``, plus the
provider's signature where it signs: Mailgun's HMAC, SendGrid's ECDSA key, SES's SNS headers),
wrapped so that:

- no configured secret: 403 for everyone (anymail alone would accept unauthenticated posts);
- a wrong or missing secret/signature: anymail's 400 (401 for SES's first, credential-less try);
- a body that is not the provider's JSON: 400;
- events that match no message we sent: 406 (Mailgun does not retry a 406) and nothing changes;
- the whole request runs in one transaction, so a failure half-way leaves no partial state.
"""
from __future__ import annotations

import logging

from anymail.exceptions import AnymailError
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from campaigns.services.deliverability import tally_start, tally_stop

logger = logging.getLogger(__name__)

PROVIDER_VIEWS = {
    "amazon_ses": AmazonSESTrackingWebhookView,
    "brevo": BrevoTrackingWebhookView,
    "mailgun": MailgunTrackingWebhookView,
    "postmark": PostmarkTrackingWebhookView,
    "sendgrid": SendGridTrackingWebhookView,
}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def tracking_webhook(view_class):
    inner = view_class.as_view()

    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if not (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET"):
            return _error(403, "Provider webhooks are disabled: set ANYMAIL_WEBHOOK_SECRET.")
        if request.method not in ("POST", "HEAD", "OPTIONS"):
            return _error(405, "POST only.")
        tally = tally_start()
        try:
            with transaction.atomic():
                try:
                    response = inner(request)
                except SuspiciousOperation as exc:  # anymail's AnymailWebhookValidationFailure
                    return _error(400, f"Webhook not authenticated: {exc}")
                except (AnymailError, ValueError, KeyError, TypeError, AttributeError) as exc:
                    logger.warning("malformed %s webhook: %r", view_class.esp_name, exc)
                    return _error(400, f"Malformed {view_class.esp_name} webhook payload.")
                if request.method == "POST" and response.status_code < 300 and tally.unknown and not (
                    tally.matched or tally.replays
                ):
                    transaction.set_rollback(True)
                    return _error(406, "No event refers to a message sent by Tailored.")
                return response
        finally:
            tally_stop()

    return view


urlpatterns = [
    path(f"{name}/tracking/", tracking_webhook(view_class), name=f"{name}_tracking")
    for name, view_class in PROVIDER_VIEWS.items()
]
app_name = "esp-webhooks"
