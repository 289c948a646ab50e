"""Public tracking endpoints reached from e-mails: open pixel, click redirect, unsubscribe.

Every token is signed; a tampered or truncated one gets a 400 page, never a 500. A GET on the
unsubscribe link only shows a confirmation page: mail scanners follow links, so only a POST (the
RFC 8058 one-click POST, or the confirmation button) unsubscribes.
"""
from __future__ import annotations

import base64

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .links import CLICK_SALT, OPEN_SALT, UNSUBSCRIBE_SALT, token_load
from .models import Recipient
from .services.tracking import recipient_click, recipient_open, recipient_unsubscribe

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _invalid(request: HttpRequest, status: int = 400) -> HttpResponse:
    return render(request, "campaigns/tracking/invalid_link.html", status=status)


def _recipient(token: str, salt: str) -> tuple[Recipient | None, list[int] | None]:
    payload = token_load(salt=salt, token=token)
    if not payload:
        return None, None
    recipient = Recipient.objects.select_related("customer").filter(pk=payload[0]).first()
    return recipient, payload


@never_cache
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    payload = token_load(salt=OPEN_SALT, token=token)
    if payload:
        recipient_open(recipient_id=payload[0], user_agent=request.headers.get("User-Agent", ""))
    # Always the pixel: a broken image in an e-mail helps nobody.
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    recipient, payload = _recipient(token, CLICK_SALT)
    if recipient is None or len(payload) != 2:
        return _invalid(request)
    url = recipient_click(recipient=recipient, item_id=payload[1], user_agent=request.headers.get("User-Agent", ""))
    if url is None:
        return _invalid(request, status=404)
    return HttpResponseRedirect(url)


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else ""


@csrf_exempt  # RFC 8058: the mailbox provider POSTs without a CSRF token; the signed URL is the proof.
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    recipient, _ = _recipient(token, UNSUBSCRIBE_SALT)
    if recipient is None:
        return _invalid(request)
    if request.method == "GET":
        return render(request, "campaigns/tracking/unsubscribe_confirm.html",
                      {"masked_email": _masked(recipient.email)})
    recipient_unsubscribe(recipient=recipient)
    return render(request, "campaigns/tracking/unsubscribe_done.html")
