"""Settings, all from the environment.

With nothing set the project runs locally on SQLite under var/, runs Celery tasks in-process
and writes mail to files under var/mail/. Real services are switched on by their native
variables (DATABASE_URL, REDIS_URL, REDIS_CACHE_URL, CELERY_BROKER_URL, EMAIL_URL, ANYMAIL_*). With
DJANGO_DEBUG off (the default) the production hardening below applies.
"""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _local_secret_key() -> str:
    """A key made once per checkout for the local run, kept out of the repository."""
    from django.core.management.utils import get_random_secret_key

    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(get_random_secret_key())
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for a local run).")
    SECRET_KEY = _local_secret_key()

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The local default follows the port `make run` serves on, so links in mail reach that server.
_local_port = env.int("PORT", default=8000)
SITE_URL = env.str("SITE_URL", default=f"http://localhost:{_local_port}").rstrip("/")

INSTALLED_APPS = [
    "config.apps.SiteAdminConfig",  # Django's admin with config.admin_site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "anymail",
    "axes",
    "csp",
    "django_guid",
    "reversion",
    "config.apps.SiteConfig",  # the site above both apps: seed_demo
    "articles",
    "newsletter",
]

MIDDLEWARE = [
    # Ids first so every later log line carries one; probes before host checks and redirects.
    "config.middleware.RequestLogMiddleware",
    "django_guid.middleware.guid_middleware",
    "config.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out login into config.admin_login's 429 page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out client before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that stops answering must fail requests and /readyz quickly, not hang them.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One Redis for everything (REDIS_URL) is fine for a local run; in production the cache and
# the broker need Redis servers of their own, because the eviction policy is per server: the
# cache must be bounded and evict (maxmemory, allkeys-lru), the broker must never drop a
# queued task (noeviction). See docker/compose.yml.
REDIS_URL = env.str("REDIS_URL", default="")
# The cache, and the rate-limit and login-throttle counters that live beside it.
REDIS_CACHE_URL = env.str("REDIS_CACHE_URL", default=REDIS_URL)
if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            # django-redis keeps one client per server; Django's own RedisCache builds a new
            # redis-py client for every call, which costs more than the round trip.
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="site"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CACHE_PAGE_SECONDS = env.int("CACHE_PAGE_SECONDS", default=300)
# The site assembles its pages: article, list and topic pages end with the box of
# templates/site/page_box.html (today the newsletter's signup box), and their cached layout
# leaves a slot per value named here, filled on every response by the callable's result. So
# articles never imports newsletter; newsletter fills what the site gives it.
SITE_PAGE_BOX_READER_VALUES = {"started": "newsletter.forms.form_started_token"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("Deutsch")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6 behaviour now: bare domains mean https

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
# --- Media (uploaded pictures, see articles/imaging.py) -----------------------------------
# The filesystem under var/media by default, served by the app itself (config/media.py);
# S3-compatible object storage through django-storages once MEDIA_S3_BUCKET is set, then
# served from MEDIA_URL (the bucket's public URL or a CDN in front of it).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="")
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
if not MEDIA_URL.endswith("/"):
    MEDIA_URL += "/"
MEDIA_MAX_UPLOAD_BYTES = env.int("MEDIA_MAX_UPLOAD_BYTES", default=15_000_000)
MEDIA_MAX_PIXELS = env.int("MEDIA_MAX_PIXELS", default=40_000_000)
# Uploads above this many bytes wait on disk, not in memory, until they are checked.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
_media_url = urlsplit(MEDIA_URL)
# Scheme and host of MEDIA_URL when it names another host: the only one the CSP adds.
MEDIA_ORIGIN = f"{_media_url.scheme}://{_media_url.netloc}" if _media_url.netloc else ""
if MEDIA_S3_BUCKET:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="") or None,
            "access_key": env.str("MEDIA_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("MEDIA_S3_SECRET_ACCESS_KEY", default="") or None,
            # Public URLs are MEDIA_URL + name (no signed query strings: the files are public).
            "custom_domain": (_media_url.netloc + _media_url.path).rstrip("/") or None,
            "url_protocol": f"{_media_url.scheme or 'https'}:",
            "location": env.str("MEDIA_S3_PREFIX", default=""),
            # Names are random and never reused, so a file never changes: cache it for good.
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
            "file_overwrite": False,
            "querystring_auth": False,
            "default_acl": env.str("MEDIA_S3_ACL", default="") or None,
        },
    }
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
# The app serves var/media itself unless the files live elsewhere (S3) or a proxy does it.
MEDIA_SERVE = env.bool("MEDIA_SERVE", default=not MEDIA_S3_BUCKET and not MEDIA_ORIGIN)

STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env.bool("DJANGO_MANIFEST_STATIC", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

ADMIN_URL = env.str("DJANGO_ADMIN_URL", default="admin/").strip("/") + "/"

# --- Mail -------------------------------------------------------------------------------
# ANYMAIL_ESP picks an anymail ESP backend (mailgun, postmark, ...); without it EMAIL_URL
# decides (smtp://host:port, consolemail://, filemail://path), by default files in var/mail.
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="redaktion@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL_ESP = env.str("ANYMAIL_ESP", default="").strip().lower()
if ANYMAIL_ESP:
    _esp = ANYMAIL_ESP.upper()
    EMAIL_BACKEND = f"anymail.backends.{ANYMAIL_ESP}.EmailBackend"
    # anymail names the credential and the webhook key differently per ESP; one pair of our
    # variables fills whichever name the chosen ESP reads (README, "Operating it").
    _credential = {
        "postmark": "SERVER_TOKEN",
        "mailersend": "API_TOKEN",
        "scaleway": "SECRET_KEY",
    }.get(ANYMAIL_ESP, "API_KEY")
    _webhook_key = {
        "mandrill": "WEBHOOK_KEY",
        "postal": "WEBHOOK_KEY",
        "mailersend": "SIGNING_SECRET",
        "resend": "SIGNING_SECRET",
        "sendgrid": "TRACKING_WEBHOOK_VERIFICATION_KEY",
    }.get(ANYMAIL_ESP, "WEBHOOK_SIGNING_KEY")
    ANYMAIL = {
        f"{_esp}_{_credential}": env.str("ANYMAIL_API_KEY", default=""),
        "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="") or None,
        "REQUESTS_TIMEOUT": env.float("ANYMAIL_REQUESTS_TIMEOUT", default=30.0),
    }
    if env.str("ANYMAIL_API_URL", default=""):
        ANYMAIL[f"{_esp}_API_URL"] = env.str("ANYMAIL_API_URL")
    if env.str("ANYMAIL_SENDER_DOMAIN", default=""):
        ANYMAIL[f"{_esp}_SENDER_DOMAIN"] = env.str("ANYMAIL_SENDER_DOMAIN")
    if env.str("ANYMAIL_WEBHOOK_SIGNING_KEY", default=""):
        ANYMAIL[f"{_esp}_{_webhook_key}"] = env.str("ANYMAIL_WEBHOOK_SIGNING_KEY")
    if env.str("ANYMAIL_SECRET_KEY", default=""):  # Mailjet: API key plus secret key
        ANYMAIL[f"{_esp}_SECRET_KEY"] = env.str("ANYMAIL_SECRET_KEY")
    if env.str("ANYMAIL_PROJECT_ID", default=""):  # Scaleway TEM
        ANYMAIL[f"{_esp}_PROJECT_ID"] = env.str("ANYMAIL_PROJECT_ID")
    ANYMAIL = {key: value for key, value in ANYMAIL.items() if value is not None}
else:
    _email_url = env.str("EMAIL_URL", default=f"filemail://{VAR_DIR / 'mail'}")
    _email_url = {"console": "consolemail://", "file": f"filemail://{VAR_DIR / 'mail'}"}.get(
        _email_url, _email_url
    )
    _email = environ.Env.email_url_config(_email_url)
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
    EMAIL_PORT = _email.get("EMAIL_PORT") or 25
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
    if _email_url.startswith("filemail://"):
        # Taken from the URL ourselves: the parser drops the leading slash of absolute paths.
        EMAIL_FILE_PATH = _email_url.removeprefix("filemail://") or str(VAR_DIR / "mail")
        Path(EMAIL_FILE_PATH).mkdir(parents=True, exist_ok=True)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

# --- Celery -----------------------------------------------------------------------------
# Without a broker the local run executes tasks in-process (eagerly), which keeps `make run`
# a single command; with one, tasks go to real workers.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL.startswith("memory://")
)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {}
# Scheduled articles are live from their minute anyway (see articles.selectors); this flips
# their status and refreshes cached pages within the minute.
CELERY_BEAT_SCHEDULE["articles-publish-due"] = {
    "task": "articles.tasks.articles_publish_due_task",
    "schedule": 60.0,
}
# Digests: one tick a minute creates due digests once per slot (DB constraint); the reconcile
# wakes stalled digests (lost messages, killed workers, uncertain batches). Drain tasks never
# depend on long countdowns.
CELERY_BEAT_SCHEDULE["newsletter-digest-tick"] = {
    "task": "newsletter.tasks.digests.digest_tick_task",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["newsletter-digest-reconcile"] = {
    "task": "newsletter.tasks.digests.digest_reconcile_task",
    # Frequent enough that lost leases (seconds long) and a restarted worker get work quickly;
    # a tick with nothing sending is one query.
    "schedule": env.float("NEWSLETTER_RECONCILE_SECONDS", default=5.0),
}
# Consent retention: unconfirmed signups after the token lifetime, old evidence after the
# retention period. Hourly is plenty; each run is idempotent and logs its counts.
CELERY_BEAT_SCHEDULE["newsletter-consent-retention"] = {
    "task": "newsletter.tasks.consent.consent_retention_task",
    "schedule": 3600.0,
}
# The dashboard's daily counts: today and yesterday recounted (newsletter/services/stats.py).
CELERY_BEAT_SCHEDULE["newsletter-daily-counts"] = {
    "task": "newsletter.tasks.stats.daily_counts_roll_up_task",
    "schedule": 300.0,
}
# The consent chain: verified daily from the last checkpoint, its head recorded and mailed.
CELERY_BEAT_SCHEDULE["newsletter-consent-chain-checkpoint"] = {
    "task": "newsletter.tasks.ledger.chain_checkpoint_task",
    "schedule": 86400.0,
}

# --- Security ---------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Probes come by IP over plain HTTP (config.middleware.HealthCheckMiddleware answers them first).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# The deployment's one rule for the client's address (the right-most X-Forwarded-For entry
# behind our own proxy): admin login throttling and the newsletter's rate limits and consent
# evidence call it by this name, so no app imports the site's package.
CLIENT_IP_CALLABLE = "config.admin_login.client_ip"

# Strict Content-Security-Policy (django-csp) for every page: no inline scripts or styles,
# nothing from other origins. The Django admin's change list has one inline <style>; only the
# admin gets inline styles (CSP_ADMIN replaces those directives on admin URLs, see
# config.middleware.ContentSecurityPolicyMiddleware).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Pictures from the media host too when media are served from one (S3, a CDN).
        "img-src": [SELF, "data:", *([MEDIA_ORIGIN] if MEDIA_ORIGIN else [])],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
CSP_ADMIN = {"style-src": [SELF, UNSAFE_INLINE]}

# Admin login throttling by django-axes (rules in config/admin_login.py): failed attempts per
# address+name and per address; the window counts from the last failure. Counted in the
# cache, so use Redis to share them across processes.
ADMIN_LOGIN_MAX_FAILURES = env.int("DJANGO_ADMIN_LOGIN_MAX_FAILURES", default=5)
ADMIN_LOGIN_MAX_FAILURES_PER_IP = env.int("DJANGO_ADMIN_LOGIN_MAX_FAILURES_PER_IP", default=20)
ADMIN_LOGIN_WINDOW_SECONDS = env.int("DJANGO_ADMIN_LOGIN_WINDOW_SECONDS", default=15 * 60)
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"], "ip_address"]
AXES_FAILURE_LIMIT = "config.admin_login.login_failure_limit"
AXES_COOLOFF_TIME = "config.admin_login.login_window"
AXES_CLIENT_IP_CALLABLE = CLIENT_IP_CALLABLE
AXES_USERNAME_CALLABLE = "config.admin_login.login_username"
AXES_LOCKOUT_CALLABLE = "config.admin_login.login_lockout_response"
AXES_RESET_ON_SUCCESS = True
# A refused attempt while locked out neither counts nor prolongs the lock.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The cache handler keeps nothing in axes' tables, so the admin has nothing to show of them.
AXES_ENABLE_ADMIN = False
# No start-up banner as the first line of every process's and manage.py command's log.
AXES_VERBOSE = False
if not REDIS_CACHE_URL:
    # axes warns that a memory cache counts per process. Without Redis that is the deployment
    # chosen: one process (`make run`) counts exactly; several each count on their own.
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]

# --- Logging ----------------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line with time, level, logger, message, request_id and
# any `extra` fields (digest_id, batch_id, delivery_id, ...); see config/logging.py.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
# One line per request (method, path, status, duration); runserver already logs them locally.
LOG_REQUESTS = env.bool("LOG_REQUESTS", default=not DEBUG)
LOGGING_CONFIG = "config.logging.logging_configure"
# Request ids (django-guid): the proxy's X-Request-ID when it is a plain token (checked by
# config.middleware.RequestLogMiddleware, not as a UUID), else a new one; echoed back.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": False,
    "EXPOSE_HEADER": False,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "config.logging.ContextFilter"},
        "redact": {"()": "config.logging.RedactTokensFilter"},
    },
    "formatters": {
        "text": {"()": "config.logging.TextFormatter"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # Every line passes the token filter: request paths carry personal link tokens.
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replace Django's default handlers (plain-text console, mail to ADMINS): all records
        # go through the one console handler above, in the chosen format.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # It says for every request whether the id came with it or was made.
        "django_guid": {"level": "WARNING"},
    },
}

# --- Newsletter -------------------------------------------------------------------------
NEWSLETTER_CONFIRM_MAX_AGE = env.int("NEWSLETTER_CONFIRM_MAX_AGE", default=7 * 24 * 3600)
# Lifetime of the link mailed before an export or erasure from the preference centre.
NEWSLETTER_DATA_LINK_MAX_AGE = env.int("NEWSLETTER_DATA_LINK_MAX_AGE", default=3600)
# Keyed hash of addresses for the suppression list and pseudonymised evidence. Must stay
# stable for the life of the data and is deliberately not SECRET_KEY (which may rotate).
NEWSLETTER_ADDRESS_HMAC_KEY = env.str("NEWSLETTER_ADDRESS_HMAC_KEY", default="") or (
    SECRET_KEY if DEBUG else ""
)
if not NEWSLETTER_ADDRESS_HMAC_KEY:
    raise ImproperlyConfigured("Set NEWSLETTER_ADDRESS_HMAC_KEY (a long random string).")
NEWSLETTER_RETENTION_DAYS = env.int("NEWSLETTER_RETENTION_DAYS", default=3 * 365)
# Where the daily verified head of the consent chain is mailed: a copy outside the database.
NEWSLETTER_EVIDENCE_ARCHIVE_EMAIL = env.str("NEWSLETTER_EVIDENCE_ARCHIVE_EMAIL", default="")
# Signup and link-request limits as "count/seconds", counted atomically in Redis (limits)
# per client IP and per address; a bot's form is refused when sent faster than the minimum.
NEWSLETTER_RATE_LIMIT_IP = env.str("NEWSLETTER_RATE_LIMIT_IP", default="30/3600")
NEWSLETTER_RATE_LIMIT_ADDRESS = env.str("NEWSLETTER_RATE_LIMIT_ADDRESS", default="5/3600")
NEWSLETTER_SIGNUP_MIN_SECONDS = env.float("NEWSLETTER_SIGNUP_MIN_SECONDS", default=3.0)
# Digest delivery (see docs/design.md). A batch is one provider call: Mailgun takes
# up to 1000 recipients per call; SMTP and other backends send one message per recipient over
# one connection per batch.
NEWSLETTER_BATCH_SIZE = env.int(
    "NEWSLETTER_BATCH_SIZE", default=1000 if ANYMAIL_ESP == "mailgun" else 500
)
NEWSLETTER_SEND_RATE = env.float("NEWSLETTER_SEND_RATE", default=0.0)  # msgs/s, 0 = unlimited
NEWSLETTER_DRAIN_TASKS = env.int("NEWSLETTER_DRAIN_TASKS", default=4)
# Claims are short leases renewed by a heartbeat while a worker holds the batch, so a dead
# worker's batch is free within seconds. Right before each provider call the worker checks,
# in one statement, that it still holds the claim with more than the call deadline plus the
# margin left; the call itself is cut off at the deadline (a total, unlike the per-read
# ANYMAIL_REQUESTS_TIMEOUT/EMAIL_TIMEOUT), so it ends while the lease still holds.
NEWSLETTER_LEASE_SECONDS = env.float("NEWSLETTER_LEASE_SECONDS", default=15.0)
NEWSLETTER_HEARTBEAT_SECONDS = env.float("NEWSLETTER_HEARTBEAT_SECONDS", default=2.0)
NEWSLETTER_CALL_DEADLINE_SECONDS = env.float("NEWSLETTER_CALL_DEADLINE_SECONDS", default=10.0)
NEWSLETTER_LEASE_MARGIN_SECONDS = env.float("NEWSLETTER_LEASE_MARGIN_SECONDS", default=2.0)
_lease_needs = sum(
    (
        NEWSLETTER_HEARTBEAT_SECONDS,
        NEWSLETTER_CALL_DEADLINE_SECONDS,
        NEWSLETTER_LEASE_MARGIN_SECONDS,
    )
)
if min(NEWSLETTER_HEARTBEAT_SECONDS, NEWSLETTER_CALL_DEADLINE_SECONDS) <= 0 or (
    _lease_needs >= NEWSLETTER_LEASE_SECONDS
):
    # A lease renewed every heartbeat must still cover a whole call plus the margin at the
    # final check, or every check fails (or a call outlives the claim it was checked under).
    raise ImproperlyConfigured(
        "NEWSLETTER_LEASE_SECONDS must exceed NEWSLETTER_HEARTBEAT_SECONDS + "
        "NEWSLETTER_CALL_DEADLINE_SECONDS + NEWSLETTER_LEASE_MARGIN_SECONDS (all positive)."
    )
# How long a batch whose call may have reached the provider waits for a tracking event before
# the policy below decides; batches whose call never started do not wait.
NEWSLETTER_UNCERTAIN_GRACE_SECONDS = env.float("NEWSLETTER_UNCERTAIN_GRACE_SECONDS", default=900)
if NEWSLETTER_UNCERTAIN_GRACE_SECONDS < NEWSLETTER_LEASE_MARGIN_SECONDS:
    raise ImproperlyConfigured(
        "NEWSLETTER_UNCERTAIN_GRACE_SECONDS must be at least NEWSLETTER_LEASE_MARGIN_SECONDS."
    )
# "resend": an uncertain batch the provider never reported on is sent again (at-least-once);
# "drop": it is recorded failed (at-most-once).
NEWSLETTER_UNCERTAIN_POLICY = env.str("NEWSLETTER_UNCERTAIN_POLICY", default="resend")
if NEWSLETTER_UNCERTAIN_POLICY not in {"resend", "drop"}:
    raise ImproperlyConfigured("NEWSLETTER_UNCERTAIN_POLICY must be 'resend' or 'drop'.")
NEWSLETTER_RETRY_BASE_SECONDS = env.float("NEWSLETTER_RETRY_BASE_SECONDS", default=2.0)
NEWSLETTER_RETRY_MAX_SECONDS = env.float("NEWSLETTER_RETRY_MAX_SECONDS", default=120.0)
NEWSLETTER_MAX_ATTEMPTS = env.int("NEWSLETTER_MAX_ATTEMPTS", default=30)
NEWSLETTER_SOFT_BOUNCE_LIMIT = env.int("NEWSLETTER_SOFT_BOUNCE_LIMIT", default=5)
NEWSLETTER_UNSUBSCRIBE_MAILTO = env.str("NEWSLETTER_UNSUBSCRIBE_MAILTO", default="")
NEWSLETTER_TRACK_CLICKS = env.bool("NEWSLETTER_TRACK_CLICKS", default=False)
