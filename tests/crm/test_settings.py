"""Settings switch between eager tasks and a real broker, and the production profile is hardened."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings(**env: str) -> dict:
    """Import crm.settings in a clean interpreter with the given environment; return a few values."""
    code = (
        "import json, crm.settings as s; print(json.dumps({'eager': s.CELERY_TASK_ALWAYS_EAGER, "
        "'broker': s.CELERY_BROKER_URL, 'debug': s.DEBUG, 'db': s.DATABASES['default']['ENGINE'], "
        "'email': s.EMAIL_BACKEND, 'email_port': s.EMAIL_PORT, 'email_path': s.EMAIL_FILE_PATH}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL"}}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, check=True
    )
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults_are_embedded():
    """Nothing set: SQLite, eager tasks, console e-mail."""
    s = _settings()
    assert s["eager"] is True
    assert s["broker"] == "memory://localhost/"
    assert s["db"] == "django.db.backends.sqlite3"
    assert s["email"] == "crm.mail.OneLineConsoleBackend"  # one line per message


def test_broker_and_database_from_environment():
    s = _settings(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL="postgres://u@127.0.0.1:5432/x",
        EMAIL_URL="smtp://127.0.0.1:2525",
    )
    assert s["eager"] is False
    assert s["broker"] == "redis://127.0.0.1:6379/0"
    assert s["db"] == "django.db.backends.postgresql"
    assert s["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert s["email_port"] == 2525


def test_production_profile_requires_secret_key():
    clean = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    out = subprocess.run(
        [sys.executable, "-c", "import crm.settings"],
        env={**clean, "TAILORED_ENV": "production", "ALLOWED_HOSTS": "crm.example.com"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stderr


def test_production_profile_passes_check_deploy():
    env = {
        **os.environ,
        "TAILORED_ENV": "production",
        "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-9f8e7d6c5b4a",
        "ALLOWED_HOSTS": "crm.example.com",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
    }
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' live server; never in production
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_file_email_keeps_an_absolute_path():
    s = _settings(EMAIL_URL="filemail:///var/tmp/outbox")
    assert s["email"] == "django.core.mail.backends.filebased.EmailBackend"
    assert s["email_path"] == "/var/tmp/outbox"


def test_console_backend_prints_one_line_per_message():
    import io

    from django.core.mail import EmailMultiAlternatives

    from crm.mail import OneLineConsoleBackend

    stream = io.StringIO()
    backend = OneLineConsoleBackend(stream=stream)
    messages = [EmailMultiAlternatives(f"Picks {n}", "body\n" * 50, "shop@example.com", [f"c{n}@example.com"])
                for n in range(3)]
    assert backend.send_messages(messages) == 3
    assert stream.getvalue().splitlines() == [f"e-mail to c{n}@example.com: Picks {n}" for n in range(3)]
