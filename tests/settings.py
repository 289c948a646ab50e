"""Test settings: eager Celery, fast hashing, locmem e-mail and cache.

The database comes from DATABASE_URL like production (CI sets PostgreSQL); unset, SQLite.
"""
import os
import tempfile

os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")

from crm.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
ARTIFACTS_DIR = Path(tempfile.mkdtemp(prefix="tailored-test-artifacts-"))  # noqa: F405
SITE_URL = "http://testserver"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["OPTIONS"].pop("init_command", None)  # noqa: F405
