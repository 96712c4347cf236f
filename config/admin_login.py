"""The project's rules for django-axes, which throttles admin logins.

axes counts failed logins in the Django cache (Redis in production, so every web process and
host shares the counts; `add` + `incr` are atomic there) per address+name and per address, and
locks a client out for ADMIN_LOGIN_WINDOW_SECONDS once a count reaches its limit; a successful
login clears the client's counts. Keying on address+name (not on the name alone) keeps an
attacker from locking a real editor out by guessing against their name from elsewhere. The
functions here are named in settings (AXES_*) and read the ADMIN_LOGIN_* settings when called.
"""

from __future__ import annotations

from datetime import timedelta

from axes.helpers import get_cache, get_client_cache_keys
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def client_ip(request: HttpRequest) -> str:
    """The client's address; behind our own proxy, the one that proxy appended last."""
    if getattr(settings, "BEHIND_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        # Only the right-most entry was written by our proxy; the rest is client-supplied.
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def login_username(request: HttpRequest, credentials: dict | None) -> str:
    """Names differing only in case or surrounding blanks count as one."""
    name = (credentials or {}).get("username") or request.POST.get("username", "")
    return name.strip().casefold()[:150]


def login_window(request: HttpRequest | None = None) -> timedelta:
    return timedelta(seconds=settings.ADMIN_LOGIN_WINDOW_SECONDS)


def login_failure_limit(request: HttpRequest, credentials: dict | None) -> int:
    """The limit axes compares with its larger count, the address's (every failure counts for
    both): that count itself once address+name has used up ADMIN_LOGIN_MAX_FAILURES, else
    ADMIN_LOGIN_MAX_FAILURES_PER_IP. axes knows one limit for all its counts; this gives
    each count its own."""
    cache = get_cache()
    name_key, address_key = get_client_cache_keys(request, credentials)  # AXES_LOCKOUT_PARAMETERS
    name_count, address_count = cache.get(name_key, 0), cache.get(address_key, 0)
    if name_count >= settings.ADMIN_LOGIN_MAX_FAILURES:
        return max(address_count, 1)
    return settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP


def login_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The admin's own page with status 429, saying how long to wait, in the page's language."""
    window = settings.ADMIN_LOGIN_WINDOW_SECONDS
    minutes = max(1, (window + 59) // 60)
    response = render(
        request,
        "ops/login_throttled.html",
        {
            **admin.site.each_context(request),
            "title": _("Zu viele Anmeldeversuche"),
            "message": _(
                "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warten Sie "
                "%(minutes)s Minuten und versuchen Sie es dann erneut."
            )
            % {"minutes": minutes},
        },
        status=429,
    )
    response.headers["Retry-After"] = str(window)
    return response
