"""Production settings: secure with only the documented variables; .env.example is complete."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.checks import WEBHOOK_SIGNATURES

ROOT = Path(__file__).resolve().parents[2]

# The minimum a production deployment sets (README, "Operating it"; .env.example).
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "Zk3v-" + "q8Xw2pL7mN4rT6yB1cD9eF0gH5jK" * 2,
    "DJANGO_ALLOWED_HOSTS": "meinung.example.org",
    "NEWSLETTER_ADDRESS_HMAC_KEY": "address-key-for-the-deploy-check",
}


def _run(args: list[str], extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # Only PATH plus the documented variables: nothing leaks in from the test run, and a stray
    # .env in the checkout is not read.
    env = {"PATH": os.environ["PATH"], "DJANGO_ENV_FILE": "/nonexistent/.env"}
    env.update(PRODUCTION_ENV)
    env.update(extra or {})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_only_the_documented_variables():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_https_is_switched_off():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {"DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_SECURE_COOKIES": "0"},
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr and "security.W012" in result.stderr


def _settings(names: list[str], extra: dict[str, str] | None = None) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}, default=str))"
    )
    result = _run(["-c", code], {"DJANGO_SETTINGS_MODULE": "config.settings", **(extra or {})})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_defaults_are_secure():
    values = _settings(
        [
            "SECURE_SSL_REDIRECT",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
            "SECURE_HSTS_SECONDS",
            "SECURE_PROXY_SSL_HEADER",
            "ADMIN_URL",
        ]
    )
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    # The forwarded-proto header is trusted only when a proxy is declared.
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["ADMIN_URL"] == "admin/"


def test_proxy_origins_and_admin_path_come_from_the_environment():
    values = _settings(
        ["SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS", "ALLOWED_HOSTS", "ADMIN_URL"],
        {
            "DJANGO_BEHIND_PROXY": "1",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://meinung.example.org,https://www.example.org",
            "DJANGO_ALLOWED_HOSTS": "meinung.example.org,www.example.org",
            "DJANGO_ADMIN_URL": "/geheim/redaktion",
        },
    )
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["CSRF_TRUSTED_ORIGINS"] == [
        "https://meinung.example.org",
        "https://www.example.org",
    ]
    assert values["ALLOWED_HOSTS"] == ["meinung.example.org", "www.example.org"]
    assert values["ADMIN_URL"] == "geheim/redaktion/"


def test_cache_and_broker_can_live_on_redis_servers_of_their_own():
    separate = _settings(
        ["CACHES", "CELERY_BROKER_URL", "REDIS_CACHE_URL"],
        {
            "REDIS_CACHE_URL": "redis://redis-cache:6379/0",
            "CELERY_BROKER_URL": "redis://redis:6379/0",
        },
    )
    assert separate["CACHES"]["default"]["LOCATION"] == "redis://redis-cache:6379/0"
    assert separate["REDIS_CACHE_URL"] == "redis://redis-cache:6379/0"
    assert separate["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    # One REDIS_URL alone still serves both (a local run with one Redis).
    shared = _settings(["CACHES", "CELERY_BROKER_URL"], {"REDIS_URL": "redis://one:6379/2"})
    assert shared["CACHES"]["default"]["LOCATION"] == "redis://one:6379/2"
    assert shared["CELERY_BROKER_URL"] == "redis://one:6379/2"


def test_production_refuses_to_start_without_the_address_key():
    env = {key: value for key, value in PRODUCTION_ENV.items()}
    env["NEWSLETTER_ADDRESS_HMAC_KEY"] = ""
    result = _run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "NEWSLETTER_ADDRESS_HMAC_KEY" in result.stderr


def _names_read_by(path: Path) -> set[str]:
    source = path.read_text()
    return set(re.findall(r"\b[eE]nv(?:\(\))?\.\w+\(\s*\"([A-Z0-9_]+)\"", source))


def test_env_example_documents_every_variable_the_project_reads():
    read = _names_read_by(ROOT / "config" / "settings.py")
    gunicorn = (ROOT / "docker/gunicorn.conf.py").read_text()
    read |= set(re.findall(r"(?:_int|environ\.get)\(\s*[\"']([A-Z0-9_]+)[\"']", gunicorn))
    read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker/entrypoint.sh").read_text()))
    read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker/compose.yml").read_text()))
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "VAR_DIR", "GUNICORN_WORKERS", "PORT"} <= read
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert read - documented == set()


def test_the_admin_lives_under_the_configured_path():
    code = (
        "import django; django.setup(); from django.urls import reverse; "
        "print(reverse('admin:login'))"
    )
    result = _run(
        ["-c", code], {"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_ADMIN_URL": "geheim/"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/geheim/login/"


ESP_ENV = {
    "mailgun": {"ANYMAIL_SENDER_DOMAIN": "mg.example.org"},
    "postmark": {},
    "sendgrid": {},
    "sparkpost": {},
    "mandrill": {},
    "brevo": {},
    "resend": {},
    "mailersend": {},
    "mailjet": {"ANYMAIL_SECRET_KEY": "mj-secret"},
    "postal": {"ANYMAIL_API_URL": "https://postal.example.org"},
    "unisender_go": {"ANYMAIL_API_URL": "https://go1.unisender.ru/ru/transactional/api/v1/"},
    "scaleway": {"ANYMAIL_PROJECT_ID": "d3b07384-d9a0-4c9b-8a0d-000000000000"},
}


@pytest.mark.parametrize("esp", sorted(ESP_ENV))
def test_each_documented_esp_gets_a_working_backend_from_the_variables(esp):
    """The ANYMAIL_* variables fill the setting names this ESP's anymail backend reads."""
    code = (
        "import django; django.setup(); from django.core.mail import get_connection; "
        "print(type(get_connection()).__module__)"
    )
    result = _run(
        ["-c", code],
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ANYMAIL_ESP": esp,
            "ANYMAIL_API_KEY": "key-123",
            **ESP_ENV[esp],
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"anymail.backends.{esp}"


# An ESP in production: its tracking webhook must be authenticated (newsletter/checks.py).
ESP_SECRET = {"ANYMAIL_API_KEY": "key-123", "ANYMAIL_WEBHOOK_SECRET": "hook:pw"}


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"ANYMAIL_ESP": "postmark", "ANYMAIL_API_KEY": "key-123"}, "newsletter.E001"),
        (
            {"ANYMAIL_ESP": "mailgun", "ANYMAIL_SENDER_DOMAIN": "mg.example.org", **ESP_SECRET},
            "newsletter.E002",
        ),
        ({"ANYMAIL_ESP": "sendgrid", **ESP_SECRET}, "newsletter.E002"),
        ({"ANYMAIL_ESP": "mandrill", **ESP_SECRET}, "newsletter.E002"),
        # The lock file has no svix, which verifies Resend's signatures.
        (
            {"ANYMAIL_ESP": "resend", "ANYMAIL_WEBHOOK_SIGNING_KEY": "whsec_x", **ESP_SECRET},
            "newsletter.E003",
        ),
        ({"ANYMAIL_ESP": "postmark", **ESP_SECRET}, None),
        ({"ANYMAIL_ESP": "mailgun", "ANYMAIL_WEBHOOK_SIGNING_KEY": "sk", **ESP_SECRET}, None),
    ],
)
def test_check_deploy_refuses_an_esp_whose_webhooks_anyone_could_post(extra, error):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "ERROR"], extra)
    if error is None:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "newsletter.E" not in result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert error in result.stderr


@pytest.mark.parametrize("esp", sorted(WEBHOOK_SIGNATURES))
def test_the_signing_key_variable_reaches_the_name_each_signing_esp_reads(esp):
    """ANYMAIL_WEBHOOK_SIGNING_KEY fills the very setting the check (and anymail) look for."""
    extra = {"ANYMAIL_ESP": esp, "ANYMAIL_WEBHOOK_SIGNING_KEY": "key", **ESP_SECRET, **ESP_ENV[esp]}
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "ERROR"], extra)
    output = result.stdout + result.stderr
    assert "newsletter.E001" not in output and "newsletter.E002" not in output, output
