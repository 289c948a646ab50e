"""Rendering a recipient's e-mail: subject, HTML and text parts, tracked links, RFC 8058 headers.

Templates are Jinja2 rendered in a sandbox on plain values (``campaigns.templating``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist, engines

from campaigns.conf import campaigns_settings
from campaigns.links import message_links
from campaigns.models import Campaign, Recipient
from campaigns.templating import (  # noqa: F401 (CampaignTemplateError: re-exported for callers)
    PARTS,
    CampaignTemplateError,
    message_context,
    render_source,
    template_validate,
)

DEFAULT_TEMPLATES = {
    "subject": "campaigns/email/subject.txt",
    "html": "campaigns/email/body.html",
    "text": "campaigns/email/body.txt",
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    to: str
    message_id: str


def message_id_for(*, recipient: Recipient) -> str:
    """Stable across retries and re-renders: derived from the recipient id and the secret key."""
    domain = _message_id_domain(campaigns_settings().MESSAGE_ID_DOMAIN, settings.DEFAULT_FROM_EMAIL)
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:{recipient.pk}".encode()).hexdigest()[:16]
    return f"<c{recipient.campaign_id}.r{recipient.run}.{recipient.pk}.{digest}@{domain or 'localhost'}>"


@lru_cache(maxsize=8)
def _message_id_domain(configured: str, from_email: str) -> str:
    return configured or parseaddr(from_email)[1].rpartition("@")[2]


def default_template_source(part: str) -> str:
    """The source of a default template (``templates/campaigns/email/``), found by Django's loaders
    (so a project can override it) but read as text: it is Jinja2, compiled by ``campaigns.templating``."""
    return _default_source(DEFAULT_TEMPLATES[part])


@lru_cache(maxsize=8)
def _default_source(name: str) -> str:
    engine = engines["django"].engine
    for loader in engine.template_loaders:
        for origin in loader.get_template_sources(name):
            try:
                return loader.get_contents(origin)
            except TemplateDoesNotExist:
                continue
    raise TemplateDoesNotExist(name)


def template_source(campaign: Campaign, part: str) -> str:
    """The campaign's own template of ``part`` (subject, html, text), or the default one when empty."""
    sources = {"subject": campaign.subject_template, "html": campaign.html_template, "text": campaign.text_template}
    source = sources[part]
    return source if source.strip() else default_template_source(part)


def _plain(value) -> str:
    return "" if value is None else str(value)


def email_context(*, recipient: Recipient) -> dict:
    """The plain values one message renders from: never a model instance (see ``campaigns.templating``)."""
    customer = recipient.customer
    links = message_links(recipient_id=recipient.pk, item_ids=[entry["item_id"] for entry in recipient.items])
    items = [
        {
            "title": _plain(entry.get("title")), "url": _plain(entry.get("url")),
            "image_url": _plain(entry.get("image_url")), "price": _plain(entry.get("price")),
            "currency": _plain(entry.get("currency")), "category": _plain(entry.get("category")),
            "reason": _plain(entry.get("reason")), "rank": entry.get("rank"),
            "click_url": links.clicks[entry["item_id"]],
        }
        for entry in recipient.items
    ]
    return message_context(
        first_name=customer.first_name, last_name=customer.last_name, campaign_name=recipient.campaign.name,
        items=items, open_url=links.open, unsubscribe_url=links.unsubscribe,
    )


def render_part(*, campaign: Campaign, part: str, context: dict) -> str:
    """One part rendered in the sandbox; raises ``CampaignTemplateError`` when the template fails."""
    return render_source(source=template_source(campaign, part), part=part, context=context)


def campaign_templates_validate(*, campaign: Campaign) -> None:
    """Every part (the campaign's own or the default) compiles and renders on a sample message.

    Raises ``CampaignTemplateError``. Sending checks this first, so a template that can never render
    is refused up front instead of failing every recipient one by one.
    """
    for part in PARTS:
        template_validate(source=template_source(campaign, part), part=part)


def recipient_render(*, recipient: Recipient) -> RenderedEmail:
    """The recipient's message; raises ``CampaignTemplateError`` when a template fails to render."""
    context = email_context(recipient=recipient)
    campaign = recipient.campaign
    subject = " ".join(render_part(campaign=campaign, part="subject", context=context).split())
    unsubscribe = context["unsubscribe_url"]
    list_unsubscribe = f"<{unsubscribe}>"
    mailto = campaigns_settings().UNSUBSCRIBE_MAILTO
    if mailto:
        list_unsubscribe += f", <mailto:{mailto}?subject=unsubscribe-{recipient.pk}>"
    message_id = recipient.message_id or message_id_for(recipient=recipient)
    headers = {
        "List-Unsubscribe": list_unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
        "Message-ID": message_id,
        "X-Campaign-ID": str(campaign.pk),
    }
    return RenderedEmail(
        subject=subject,
        html=render_part(campaign=campaign, part="html", context=context),
        text=render_part(campaign=campaign, part="text", context=context),
        headers=headers,
        to=recipient.email,
        message_id=message_id,
    )


def recipient_message(*, recipient: Recipient, connection=None) -> EmailMultiAlternatives:
    rendered = recipient_render(recipient=recipient)
    message = EmailMultiAlternatives(
        subject=rendered.subject, body=rendered.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[rendered.to],
        headers=rendered.headers, connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message
