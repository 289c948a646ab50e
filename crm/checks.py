"""Tailored's own ``manage.py check --deploy`` checks: settings that are fine on a laptop and wrong live.

Django's deploy checks cover cookies, HSTS and DEBUG; these add what only Tailored knows: e-mail
links must point at a public HTTPS site, mail must come from a real domain, and the public
development key must never sign anything.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "testserver")


def _is_local(host: str) -> bool:
    host = (host or "").lower().strip("[]")
    return not host or host in LOCAL_HOSTS or host.endswith(".localhost") or host.endswith(".local")


@register(Tags.security, deploy=True)
def tailored_deploy_check(app_configs=None, **kwargs) -> list:
    problems = []
    site = urlsplit(getattr(settings, "SITE_URL", "") or "")
    if _is_local(site.hostname or ""):
        problems.append(Error(
            f"SITE_URL is {settings.SITE_URL!r}: links in e-mails (tracking, unsubscribe) would point at this machine.",
            hint="Set SITE_URL to the public https:// address of this deployment.", id="tailored.E001",
        ))
    elif site.scheme != "https":
        problems.append(Warning(
            f"SITE_URL {settings.SITE_URL!r} is not https: unsubscribe tokens would travel in clear text.",
            hint="Serve the site over HTTPS and set SITE_URL=https://...", id="tailored.W001",
        ))
    sender = (settings.DEFAULT_FROM_EMAIL or "").rsplit("@", 1)
    domain = sender[1].strip(" >").lower() if len(sender) == 2 else ""
    if _is_local(domain):
        problems.append(Error(
            f"DEFAULT_FROM_EMAIL is {settings.DEFAULT_FROM_EMAIL!r}: receiving servers reject or junk such mail.",
            hint="Set DEFAULT_FROM_EMAIL to an address on a domain you send from (SPF/DKIM configured).",
            id="tailored.E002",
        ))
    if getattr(settings, "DEV_SECRET_KEY", None) == settings.SECRET_KEY:
        problems.append(Error(
            "SECRET_KEY is the public development key: anyone can forge unsubscribe links and sessions.",
            hint="Set SECRET_KEY to a private random value (see docs/operations.md, 'Rotating keys').",
            id="tailored.E003",
        ))
    if getattr(settings, "TAILORED_ENV", "") != "production":
        problems.append(Warning(
            f"TAILORED_ENV is {settings.TAILORED_ENV!r}: the production profile (required secrets, secure cookies, "
            "HSTS) is off.", hint="Set TAILORED_ENV=production.", id="tailored.W002",
        ))
    return problems
