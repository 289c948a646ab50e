"""Rendering a recipient's e-mail: subject, HTML and text parts, tracked links, RFC 8058 headers."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import engines
from django.template.loader import get_template

from campaigns.conf import campaigns_settings
from campaigns.links import click_url, open_url, unsubscribe_url
from campaigns.models import Campaign, Recipient

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
    domain = campaigns_settings().MESSAGE_ID_DOMAIN or parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:{recipient.pk}".encode()).hexdigest()[:16]
    return f"<c{recipient.campaign_id}.r{recipient.run}.{recipient.pk}.{digest}@{domain or 'localhost'}>"


def _template(campaign: Campaign, part: str):
    sources = {"subject": campaign.subject_template, "html": campaign.html_template, "text": campaign.text_template}
    source = sources[part]
    if not source.strip():
        return get_template(DEFAULT_TEMPLATES[part])
    if part != "html":  # plain text: no HTML escaping of names and titles
        source = "{% autoescape off %}" + source + "{% endautoescape %}"
    return engines["django"].from_string(source)


def email_context(*, recipient: Recipient) -> dict:
    customer = recipient.customer
    items = [
        {**entry, "click_url": click_url(recipient_id=recipient.pk, item_id=entry["item_id"])}
        for entry in recipient.items
    ]
    return {
        "campaign": recipient.campaign,
        "customer": customer,
        "first_name": customer.first_name,
        "name": customer.full_name,
        "items": items,
        "open_url": open_url(recipient_id=recipient.pk),
        "unsubscribe_url": unsubscribe_url(recipient_id=recipient.pk),
    }


def recipient_render(*, recipient: Recipient) -> RenderedEmail:
    context = email_context(recipient=recipient)
    campaign = recipient.campaign
    subject = " ".join(_template(campaign, "subject").render(context).split())
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
        html=_template(campaign, "html").render(context),
        text=_template(campaign, "text").render(context),
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
