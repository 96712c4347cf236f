"""Content-Security-Policy on every page, admin login throttling."""

import threading

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.test import RequestFactory
from django.urls import reverse

STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _directives(header: str) -> dict[str, list[str]]:
    """The policy as directive -> sources (browsers read directives in any order)."""
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} given twice"
        directives[name] = sources
    return directives


@pytest.mark.django_db
def test_public_pages_get_the_strict_policy(client):
    response = client.get("/gibt-es-nicht/")
    assert _directives(response["Content-Security-Policy"]) == STRICT


@pytest.mark.django_db
def test_only_the_admin_may_use_inline_styles(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy == {**STRICT, "style-src": ["'self'", "'unsafe-inline'"]}


@pytest.fixture
def editor(db):
    return get_user_model().objects.create_user(
        "redakteurin", password="richtig-richtig-42", is_staff=True
    )


def _login(client, username: str, password: str, ip: str = "198.51.100.7"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=ip,
    )


@pytest.fixture
def limits(settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP = 5
    settings.ADMIN_LOGIN_WINDOW_SECONDS = 600
    return settings


def test_failed_logins_lock_the_client_out_with_429(client, editor, limits):
    for _ in range(2):
        assert _login(client, "redakteurin", "falsch").status_code == 200
    # The failure that uses up the limit already answers with the lock-out page.
    response = _login(client, "redakteurin", "falsch")
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    assert "Zu viele fehlgeschlagene Anmeldeversuche" in response.content.decode()
    assert "10 Minuten" in response.content.decode()
    # Even the right password is refused while locked: guessing must not go on.
    assert _login(client, "redakteurin", "richtig-richtig-42").status_code == 429
    assert "_auth_user_id" not in client.session


def test_lock_is_per_address_and_name(client, editor, limits):
    for _ in range(3):
        _login(client, "redakteurin", "falsch", ip="198.51.100.7")
    assert _login(client, "redakteurin", "falsch", ip="198.51.100.7").status_code == 429
    assert _login(client, "redakteurin", "richtig-richtig-42", ip="198.51.100.7").status_code == 429
    # The editor at her own desk is not locked out by someone guessing elsewhere.
    response = _login(client, "redakteurin", "richtig-richtig-42", ip="203.0.113.9")
    assert response.status_code == 302


def test_one_address_trying_many_names_is_locked_too(client, editor, limits):
    for n in range(4):
        assert _login(client, f"name{n}", "falsch").status_code == 200
    assert _login(client, "name4", "falsch").status_code == 429
    assert _login(client, "redakteurin", "richtig-richtig-42").status_code == 429


def test_a_successful_login_clears_the_count(client, editor, limits):
    for _ in range(2):
        _login(client, "redakteurin", "falsch")
    assert _login(client, "redakteurin", "richtig-richtig-42").status_code == 302
    client.logout()
    for _ in range(2):
        assert _login(client, "redakteurin", "falsch").status_code == 200
    assert _login(client, "redakteurin", "richtig-richtig-42").status_code == 302


def test_names_differing_in_case_share_a_counter(client, editor, limits):
    for name in ("Redakteurin", "REDAKTEURIN", "redakteurin "):
        _login(client, name, "falsch")
    assert _login(client, "redakteurin", "falsch").status_code == 429


def test_behind_a_proxy_the_address_the_proxy_saw_counts(client, editor, limits):
    limits.BEHIND_PROXY = True
    for n in range(3):
        # The client forges the left part of the header; the proxy appends the real address.
        client.post(
            reverse("admin:login"),
            {"username": "redakteurin", "password": "falsch"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 198.51.100.7",
        )
    response = client.post(
        reverse("admin:login"),
        {"username": "redakteurin", "password": "falsch"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.7",
    )
    assert response.status_code == 429


def test_failures_are_counted_atomically_under_concurrency(limits):
    """Forty parallel failures from one client are forty, not fewer (no lost updates)."""
    limits.ADMIN_LOGIN_MAX_FAILURES = 40
    limits.ADMIN_LOGIN_MAX_FAILURES_PER_IP = 1000
    barrier = threading.Barrier(8)
    credentials = {"username": "wer"}

    def attempt():
        request = RequestFactory().post("/admin/login/", REMOTE_ADDR="192.0.2.1")
        AxesProxyHandler.update_request(request)
        return request

    def fail_five():
        barrier.wait()
        for _ in range(5):
            user_login_failed.send(sender=__name__, credentials=credentials, request=attempt())

    threads = [threading.Thread(target=fail_five) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AxesProxyHandler.is_locked(attempt(), credentials)
    limits.ADMIN_LOGIN_MAX_FAILURES = 41
    assert not AxesProxyHandler.is_locked(attempt(), credentials)


def test_the_lock_out_message_is_translated_on_english_pages(client, editor, limits):
    url = "/en/" + reverse("admin:login").lstrip("/")
    for _ in range(2):
        client.post(url, {"username": "redakteurin", "password": "falsch"})
    response = client.post(url, {"username": "redakteurin", "password": "falsch"})
    assert response.status_code == 429
    assert "Too many failed login attempts. Please wait 10 minutes" in response.content.decode()
