"""``EMAIL_URL`` for e-mail service providers (sent through django-anymail's HTTP API backends).

Read by ``crm/settings.py`` next to django-environ's ``smtp://`` / ``consolemail://`` parsing, so
this module imports nothing from Django. The scheme names the provider; the credential sits where
a URL's user (or host) would be; query parameters carry the provider's options::

    amazonses://                                   credentials from the usual AWS environment/role
    amazonses://ACCESS_KEY:SECRET@?region=eu-west-1&configuration_set=tailored
    mailgun://API_KEY@mg.example.com               sender domain after the "@"; ?region=eu for the EU API
    postmark://SERVER_TOKEN                        ?message_stream=broadcast for a broadcast stream
    sendgrid://API_KEY
    brevo://API_KEY

Credentials may be percent-encoded (``/`` in an AWS secret is ``%2F``).
"""
from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

PROVIDER_BACKENDS = {
    "amazonses": "anymail.backends.amazon_ses.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "postmark": "anymail.backends.postmark.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "brevo": "anymail.backends.brevo.EmailBackend",
}
MAILGUN_EU_API_URL = "https://api.eu.mailgun.net/v3"


class EmailUrlError(ValueError):
    """An ``EMAIL_URL`` for a provider that misses something or has an unknown option."""


def is_provider_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in PROVIDER_BACKENDS


def _credential(netloc: str) -> tuple[str, str, str]:
    """``user[:password]@host`` split by hand: ``urlsplit`` lower-cases hosts and chokes on odd ports."""
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        userinfo, host = host, ""
    user, _, password = userinfo.partition(":")
    return unquote(user), unquote(password), unquote(host)


def _options(query: str, allowed: set[str], scheme: str) -> dict[str, str]:
    options = {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(options) - allowed
    if unknown:
        raise EmailUrlError(
            f"EMAIL_URL {scheme}:// has unknown option(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}."
        )
    return options


def provider_email_settings(url: str) -> dict:
    """``{"EMAIL_BACKEND": ..., "ANYMAIL": {...}}`` for a provider URL; raises ``EmailUrlError``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in PROVIDER_BACKENDS:
        raise EmailUrlError(f"EMAIL_URL scheme {scheme!r} is not a provider ({', '.join(PROVIDER_BACKENDS)}).")
    user, password, host = _credential(parts.netloc)
    anymail: dict = {}
    if scheme == "amazonses":
        options = _options(parts.query, {"region", "configuration_set"}, scheme)
        session: dict = {}
        if user or password:
            if not (user and password):
                raise EmailUrlError("EMAIL_URL amazonses:// needs both ACCESS_KEY:SECRET, or neither.")
            session.update(aws_access_key_id=user, aws_secret_access_key=password)
        if options.get("region"):
            session["region_name"] = options["region"]
        if session:
            anymail["AMAZON_SES_SESSION_PARAMS"] = session
        if options.get("configuration_set"):
            anymail["AMAZON_SES_CONFIGURATION_SET_NAME"] = options["configuration_set"]
    elif scheme == "mailgun":
        options = _options(parts.query, {"region"}, scheme)
        if not user or not host:
            raise EmailUrlError("EMAIL_URL mailgun:// needs API_KEY@sender-domain.")
        anymail.update(MAILGUN_API_KEY=user, MAILGUN_SENDER_DOMAIN=host)
        region = options.get("region", "").lower()
        if region not in ("", "us", "eu"):
            raise EmailUrlError(f"EMAIL_URL mailgun:// region must be us or eu, not {region!r}.")
        if region == "eu":
            anymail["MAILGUN_API_URL"] = MAILGUN_EU_API_URL
    else:
        allowed = {"message_stream"} if scheme == "postmark" else set()
        options = _options(parts.query, allowed, scheme)
        key = user or host  # "postmark://TOKEN" and "postmark://TOKEN@" both work
        if not key:
            raise EmailUrlError(f"EMAIL_URL {scheme}:// needs the API key: {scheme}://KEY.")
        name = {"postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY", "brevo": "BREVO_API_KEY"}[scheme]
        anymail[name] = key
        if options.get("message_stream"):
            anymail["POSTMARK_MESSAGE_STREAM"] = options["message_stream"]
    return {"EMAIL_BACKEND": PROVIDER_BACKENDS[scheme], "ANYMAIL": anymail, "EMAIL_PROVIDER": scheme}
