"""EMAIL_URL for providers: parsed into anymail's backend and settings, bad URLs refused by name."""
from __future__ import annotations

import pytest

from crm.email_providers import EmailUrlError, is_provider_url, provider_email_settings


@pytest.mark.parametrize(("url", "backend", "anymail"), [
    ("amazonses://", "anymail.backends.amazon_ses.EmailBackend", {}),
    ("amazonses://AKIAEXAMPLE:se%2Fcret@?region=eu-west-1&configuration_set=tailored",
     "anymail.backends.amazon_ses.EmailBackend",
     {"AMAZON_SES_SESSION_PARAMS": {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "se/cret",
                                    "region_name": "eu-west-1"},
      "AMAZON_SES_CONFIGURATION_SET_NAME": "tailored"}),
    ("mailgun://key-ABC@mg.Example.com?region=eu", "anymail.backends.mailgun.EmailBackend",
     {"MAILGUN_API_KEY": "key-ABC", "MAILGUN_SENDER_DOMAIN": "mg.Example.com",
      "MAILGUN_API_URL": "https://api.eu.mailgun.net/v3"}),
    ("postmark://Server-Token-1", "anymail.backends.postmark.EmailBackend",
     {"POSTMARK_SERVER_TOKEN": "Server-Token-1"}),
    ("postmark://TOKEN@?message_stream=broadcast", "anymail.backends.postmark.EmailBackend",
     {"POSTMARK_SERVER_TOKEN": "TOKEN", "POSTMARK_MESSAGE_STREAM": "broadcast"}),
    ("sendgrid://SG.aBc", "anymail.backends.sendgrid.EmailBackend", {"SENDGRID_API_KEY": "SG.aBc"}),
    ("brevo://xkeysib-Abc", "anymail.backends.brevo.EmailBackend", {"BREVO_API_KEY": "xkeysib-Abc"}),
])
def test_provider_urls(url, backend, anymail):
    assert is_provider_url(url)
    parsed = provider_email_settings(url)
    assert parsed["EMAIL_BACKEND"] == backend
    assert parsed["ANYMAIL"] == anymail


@pytest.mark.parametrize("url", ["smtp://user:pw@mail.example.com:587", "consolemail://", "filemail:///tmp/mail"])
def test_smtp_console_and_file_stay_with_django_environ(url):
    assert not is_provider_url(url)


@pytest.mark.parametrize(("url", "message"), [
    ("mailgun://key-only", "API_KEY@sender-domain"),
    ("mailgun://k@mg.example.com?region=asia", "region must be us or eu"),
    ("postmark://", "needs the API key"),
    ("sendgrid://KEY?sandbox=1", "unknown option(s) sandbox"),
    ("amazonses://AKIAONLY@", "ACCESS_KEY:SECRET"),
])
def test_bad_provider_urls_say_what_is_wrong(url, message):
    with pytest.raises(EmailUrlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        provider_email_settings(url)


def test_settings_module_reads_a_provider_url(monkeypatch):
    import importlib

    import crm.settings as project_settings

    monkeypatch.setenv("EMAIL_URL", "postmark://TOKEN-from-env")
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "user:pass")
    try:
        reloaded = importlib.reload(project_settings)
        assert reloaded.EMAIL_BACKEND == "anymail.backends.postmark.EmailBackend"
        assert reloaded.ANYMAIL == {"WEBHOOK_SECRET": "user:pass", "POSTMARK_SERVER_TOKEN": "TOKEN-from-env"}
        assert reloaded.EMAIL_PROVIDER == "postmark"
    finally:
        monkeypatch.delenv("EMAIL_URL")
        monkeypatch.delenv("ANYMAIL_WEBHOOK_SECRET")
        importlib.reload(project_settings)
