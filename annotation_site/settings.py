"""NailSet settings: everything comes from environment variables with safe defaults.

With nothing set the platform runs in *embedded mode*: SQLite and media under ``var/`` and a Celery
broker on the local filesystem (kombu's filesystem transport), so one machine needs no server at all.
Production sets ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis); see docker-compose.yml
and the README's "Settings" table, which lists every variable read here.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_weights(name: str, keys: tuple[str, ...]) -> dict[str, float]:
    """``KEY=NUMBER`` pairs separated by commas, each key one of ``keys`` (unset or empty: {})."""
    from django.core.exceptions import ImproperlyConfigured

    out = {}
    for item in os.environ.get(name, "").split(","):
        if not item.strip():
            continue
        key, _, value = item.partition("=")
        key = key.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if key not in keys or number is None or not 0 <= number <= 10:
            raise ImproperlyConfigured(f"{name}: '{item.strip()}' is not KEY=NUMBER with KEY one of {', '.join(keys)} "
                                       "and NUMBER from 0 to 10")
        out[key] = number
    return out


# Everything the platform writes at run time in embedded mode lives below VAR_DIR (git-ignored).
VAR_DIR = Path(os.environ.get("NAILSET_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    """A random key made once per checkout and kept in var/, so sessions survive restarts."""
    path = VAR_DIR / "secret_key.txt"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _embedded_secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: no CDN
    "accounts",
    "jobs",
    "labeling",
    "curation",
    "training",
    "tryon",
    "prelabel",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "annotation_site.security_headers.SecurityHeadersMiddleware",  # CSP and Permissions-Policy
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "annotation_site.urls"
WSGI_APPLICATION = "annotation_site.wsgi.application"
ASGI_APPLICATION = "annotation_site.asgi.application"

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
                "annotation_site.navigation.navigation",  # the role-aware navigation bar of base.html
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------
# DATABASE_URL takes any dj-database-url form: postgres://..., sqlite:///absolute/path.sqlite3, ...
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The test database must be a file: a separate Celery worker process has to open it too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Concurrent web and worker writers: wait for locks, and take the write lock when a transaction
    # begins so two read-then-write transactions cannot deadlock on the lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check goes through the login lockout (accounts/lockout.py): after this many failures for a
# username (or from one address) the next attempts are refused for NAILSET_LOGIN_LOCKOUT_SECONDS, doubling
# with each further failure up to the maximum; a success resets; failures are forgotten after the memory.
AUTHENTICATION_BACKENDS = ["accounts.backends.LockoutModelBackend"]
NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT = int(os.environ.get("NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT", "5"))
NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT_PER_ADDRESS = int(os.environ.get("NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT_PER_ADDRESS", "20"))
NAILSET_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("NAILSET_LOGIN_LOCKOUT_SECONDS", "30"))
NAILSET_LOGIN_LOCKOUT_MAX_SECONDS = int(os.environ.get("NAILSET_LOGIN_LOCKOUT_MAX_SECONDS", "3600"))
NAILSET_LOGIN_FAILURE_MEMORY_SECONDS = int(os.environ.get("NAILSET_LOGIN_FAILURE_MEMORY_SECONDS", "86400"))
# Reverse proxies in front of the web server that append to X-Forwarded-For (0: clients connect directly).
NAILSET_NUM_PROXIES = int(os.environ.get("NAILSET_NUM_PROXIES", "0"))
# API tokens (accounts.ApiToken): stored as sha256 digests, valid this many days.
NAILSET_API_TOKEN_DAYS = float(os.environ.get("NAILSET_API_TOKEN_DAYS", "30"))
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"  # never served publicly: files go through permission-checked API views
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Model export (docs/export.md): the TF.js parity harness, and TF.js itself (`make tfjs`: the pinned npm build,
# git-ignored; never a CDN), served as /static/nailset-export/... and /static/tfjs/tf.min.js.
STATICFILES_DIRS = [p for p in (BASE_DIR / "ml" / "export" / "static", BASE_DIR / ".tfjs" / "static") if p.is_dir()]
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic in development and tests
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # JSON bodies (annotations); files stream to disk
NAILSET_JSON_MAX_DEPTH = int(os.environ.get("NAILSET_JSON_MAX_DEPTH", "64"))  # nesting levels of a JSON body
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The first handler stops a body over the upload limits while it streams, before it reaches the disk
# (413 from the API): labeling/upload_limits.py.
FILE_UPLOAD_HANDLERS = ["labeling.upload_limits.UploadLimitHandler", "django.core.files.uploadhandler.MemoryFileUploadHandler",
                        "django.core.files.uploadhandler.TemporaryFileUploadHandler"]

# Intake: upload limits and video frame selection.
NAILSET_MAX_PHOTO_BYTES = int(os.environ.get("NAILSET_MAX_PHOTO_BYTES", str(25 * 1024 * 1024)))
NAILSET_MAX_VIDEO_BYTES = int(os.environ.get("NAILSET_MAX_VIDEO_BYTES", str(200 * 1024 * 1024)))
NAILSET_MAX_VIDEO_SECONDS = float(os.environ.get("NAILSET_MAX_VIDEO_SECONDS", "60"))
NAILSET_VIDEO_FRAME_RATE = float(os.environ.get("NAILSET_VIDEO_FRAME_RATE", "2"))
NAILSET_VIDEO_MAX_FRAMES = int(os.environ.get("NAILSET_VIDEO_MAX_FRAMES", "20"))
NAILSET_VIDEO_BLUR_THRESHOLD = float(os.environ.get("NAILSET_VIDEO_BLUR_THRESHOLD", "50"))
NAILSET_VIDEO_DUPLICATE_DISTANCE = int(os.environ.get("NAILSET_VIDEO_DUPLICATE_DISTANCE", "6"))
NAILSET_MAX_PIXELS_SIDE = int(os.environ.get("NAILSET_MAX_PIXELS_SIDE", "12000"))
NAILSET_MIN_PIXELS_SIDE = int(os.environ.get("NAILSET_MIN_PIXELS_SIDE", "16"))
NAILSET_THUMBNAIL_SIZE = int(os.environ.get("NAILSET_THUMBNAIL_SIZE", "256"))
NAILSET_CONSENT_VERSION = os.environ.get("NAILSET_CONSENT_VERSION", "2026-11")
# Pre-labeling (prelabel/): torch threads per inference (one image at a time per CPU worker process).
NAILSET_PRELABEL_THREADS = int(os.environ.get("NAILSET_PRELABEL_THREADS", "1"))
# How far the label suggestions trust the active model's votes: its class head on the whole finger, on the digit,
# and its direction field (ml.label_suggestions.SuggestionRules model_weight, model_digit_weight,
# model_direction_weight); unset ones keep the defaults bench/fit_model_votes.py chose for CPU-trained models.
NAILSET_MODEL_VOTE_WEIGHTS = env_weights("NAILSET_MODEL_VOTE_WEIGHTS", ("finger", "digit", "direction"))

# --- Security -------------------------------------------------------------------------------------------
# DJANGO_HTTPS=1 marks a deployment behind TLS (docker-compose sets it): secure cookies, HSTS, redirect.
HTTPS = env_bool("DJANGO_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Referrer-Policy same-origin: links inside the site keep their referrer (Django's CSRF check over HTTPS needs
# it) and nothing goes to other sites, so the participant's upload token in /u/<token>/ never leaves the site.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy and Permissions-Policy: annotation_site/security_headers.py. Extra CSP sources,
# e.g. "img-src https://cdn.example; connect-src https://errors.example" (never unsafe-inline for scripts).
NAILSET_CSP_EXTRA = os.environ.get("NAILSET_CSP_EXTRA", "")
SILENCED_SYSTEM_CHECKS = [
    # security.W021 (HSTS preload) is a one-way commitment for the whole domain; the operator opts in
    # with DJANGO_HSTS_PRELOAD=1 rather than us deciding it for them.
    "security.W021",
]

# --- REST framework -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so that an anonymous request gets 401 with a WWW-Authenticate header.
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "labeling.authentication.UploadTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsStaffRole"],
    # JSON bodies: at most DATA_UPLOAD_MAX_MEMORY_SIZE (413) and NAILSET_JSON_MAX_DEPTH levels; malformed -> 400.
    "DEFAULT_PARSER_CLASSES": ["annotation_site.json_parsing.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "NUM_PROXIES": NAILSET_NUM_PROXIES,
    "DEFAULT_PAGINATION_CLASS": "annotation_site.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NailSet API",
    "DESCRIPTION": "Fingernail segmentation dataset platform: participants, uploads, images, annotations, jobs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "jobs.models.Job.Status",
        "AnnotationStatusEnum": "labeling.models.Annotation.Status",
        "UploadStatusEnum": "labeling.models.Upload.Status",
        "ModelExportFormatEnum": "training.models.EXPORT_FORMAT_CHOICES",
    },
}

# --- Celery -------------------------------------------------------------------------------------------
# Embedded default: a broker on the filesystem that needs no server. Production: redis://...
CELERY_QUEUE_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport with atomic message writes (annotation_site/filesystem_broker.py).
    CELERY_BROKER_TRANSPORT = "annotation_site.filesystem_broker:Transport"
    for sub in ("queue", "processed", "control", "results"):
        (CELERY_QUEUE_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{CELERY_QUEUE_DIR / 'results'}")
else:
    # A message not acknowledged (its worker died) is handed out again after this many seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues: "default" for ingest and dataset jobs; "training" for GPU workers; "export" for the worker that
# runs in the TensorFlow export environment; "prelabel" for pre-labeling.
CELERY_WORKER_QUEUES = env_list("CELERY_WORKER_QUEUES", "default,training,prelabel,export")
CELERY_TASK_ACKS_LATE = True  # a job whose worker dies is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Health check: a worker that does not answer a ping within this many seconds counts as down.
NAILSET_WORKER_PING_TIMEOUT = float(os.environ.get("NAILSET_WORKER_PING_TIMEOUT", "2"))
# A running job whose heartbeat is older than this is taken over: every worker re-queues it (jobs.runner
# reap_stale_jobs, at start-up and periodically), as does starting the same work again; after
# NAILSET_JOB_MAX_ATTEMPTS runs it is failed instead.
NAILSET_JOB_STALE_SECONDS = int(os.environ.get("NAILSET_JOB_STALE_SECONDS", "60"))
NAILSET_JOB_HEARTBEAT_SECONDS = float(os.environ.get("NAILSET_JOB_HEARTBEAT_SECONDS", "5"))
NAILSET_JOB_MAX_ATTEMPTS = int(os.environ.get("NAILSET_JOB_MAX_ATTEMPTS", "3"))
# Jobs started over the API read files only below NAILSET_IMPORT_DIR and write only below NAILSET_EXPORT_DIR
# (relative paths are taken from there); management commands take any path.
NAILSET_IMPORT_DIR = Path(os.environ.get("NAILSET_IMPORT_DIR", VAR_DIR / "imports")).resolve()
NAILSET_EXPORT_DIR = Path(os.environ.get("NAILSET_EXPORT_DIR", VAR_DIR / "exports")).resolve()
NAILSET_IMPORT_DIR.mkdir(parents=True, exist_ok=True)
NAILSET_EXPORT_DIR.mkdir(parents=True, exist_ok=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"nailset": {"level": os.environ.get("NAILSET_LOG_LEVEL", "INFO")}},
}
