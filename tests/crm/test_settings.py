"""Settings switch between eager tasks and a real broker, and the production profile is hardened."""
import json
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
    assert s["email"] == "django.core.mail.backends.console.EmailBackend"


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
        "SITE_URL": "https://crm.example.com",
        "DEFAULT_FROM_EMAIL": "Tailored <news@example.com>",
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


# --- the profile fails closed (security review, finding 5) ---------------------------------------

STRONG_KEY = "k" * 10 + "-a-long-random-production-secret-key-0a9b8c7d"
PROD = {"SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "crm.example.com", "SITE_URL": "https://crm.example.com",
        "DEFAULT_FROM_EMAIL": "Tailored <news@example.com>"}


def _start(**env: str) -> subprocess.CompletedProcess:
    """Import crm.settings in a clean interpreter with exactly these Tailored variables."""
    names = {"TAILORED_ENV", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SITE_URL", "DEFAULT_FROM_EMAIL",
             "DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL"}
    clean = {k: v for k, v in os.environ.items() if k not in names}
    code = "import json, crm.settings as s; print(json.dumps({'env': s.TAILORED_ENV, 'debug': s.DEBUG}))"
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True)


def test_unknown_profile_refuses_to_start():
    """A typo'd profile used to run as development (DEBUG on, public key); now start-up fails."""
    out = _start(TAILORED_ENV="prod", **PROD)
    assert out.returncode != 0
    assert "TAILORED_ENV='prod' is not one of development, test, production" in out.stderr


def test_profile_name_is_case_insensitive_and_production_is_hardened():
    """``Production`` used to be development; now it is production: DEBUG off."""
    out = _start(TAILORED_ENV="Production", **PROD)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"env": "production", "debug": False}


def test_public_development_key_is_refused_outside_development():
    """With the public key anyone could forge unsubscribe tokens: only development may use it."""
    from crm.settings import DEV_SECRET_KEY

    for profile in ("test", "production"):
        out = _start(TAILORED_ENV=profile, **{**PROD, "SECRET_KEY": DEV_SECRET_KEY})
        assert out.returncode != 0, profile
        assert "not the public development key" in out.stderr


def test_debug_only_in_development():
    out = _start(TAILORED_ENV="test", SECRET_KEY=STRONG_KEY, DEBUG="true")
    assert out.returncode != 0
    assert "DEBUG=True is only allowed with TAILORED_ENV=development" in out.stderr
    assert json.loads(_start(TAILORED_ENV="test", SECRET_KEY=STRONG_KEY).stdout)["debug"] is False
    assert json.loads(_start().stdout) == {"env": "development", "debug": True}


def test_production_requires_site_url_and_sender():
    """No more 127.0.0.1 links and hello@localhost senders in production."""
    for missing in ("SITE_URL", "DEFAULT_FROM_EMAIL"):
        env = {k: v for k, v in PROD.items() if k != missing}
        out = _start(TAILORED_ENV="production", **env)
        assert out.returncode != 0
        assert missing in out.stderr


def test_check_deploy_flags_local_site_url_and_sender():
    env = {**os.environ, "TAILORED_ENV": "production", **PROD, "SITE_URL": "http://127.0.0.1:8000",
           "DEFAULT_FROM_EMAIL": "Tailored <hello@localhost>", "DJANGO_SETTINGS_MODULE": "crm.settings"}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "tailored.E001" in out.stderr and "tailored.E002" in out.stderr
