"""Settings for the test suite: the project's settings against the machine's real services.

Each name can be overridden from the environment, so that several suites can run side by side
(DJANGO_TEST_DB_NAME, REDIS_URL with another db number, a queue of their own).
"""

import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")
os.environ.setdefault("DJANGO_MANIFEST_STATIC", "0")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])
# The suite's cache shares its Redis db (one db per suite keeps suites apart; FLUSHDB in
# cache.clear() then also drops this suite's queued tasks, which tests start without anyway).
os.environ.setdefault("REDIS_CACHE_URL", os.environ["REDIS_URL"])
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("EMAIL_URL", "memorymail://")
os.environ.setdefault("SITE_URL", "http://testserver")
os.environ.setdefault("NEWSLETTER_ADDRESS_HMAC_KEY", "tests-only-address-key")
# Uploaded pictures go to a folder of this run, never to the checkout's var/media.
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="test-media-"))

TEST_DB_NAME = os.environ.get("DJANGO_TEST_DB_NAME", "test_meinung")
os.environ.setdefault("CACHE_KEY_PREFIX", TEST_DB_NAME)
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"q-{TEST_DB_NAME}")

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, STATIC_ROOT  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": TEST_DB_NAME}
DATABASES["default"]["CONN_MAX_AGE"] = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# WhiteNoise warns on every request when the collected-static folder is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
