"""Throttling of admin logins: failed attempts counted per client address and per address+name.

Counters live in the Django cache (Redis in production, so all web processes and hosts share
them) and are raised with `add` + `incr`, which are atomic there: parallel guesses cannot slip
past the limit between a read and a write. A client is refused once either counter has reached
its limit, until the window since the first failure has passed. A successful login clears the
counter for that address and name. Keying on address+name (not on the name alone) keeps an
attacker from locking a real editor out by guessing against their name from elsewhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


@dataclass(frozen=True)
class LoginThrottle:
    max_failures: int
    max_failures_per_ip: int
    window_seconds: int


def login_throttle_settings() -> LoginThrottle:
    """The limits, read when used so tests and deployments can change them."""
    return LoginThrottle(
        max_failures=settings.ADMIN_LOGIN_MAX_FAILURES,
        max_failures_per_ip=settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP,
        window_seconds=settings.ADMIN_LOGIN_WINDOW_SECONDS,
    )


def client_ip(request: HttpRequest) -> str:
    """The client's address; behind our own proxy, the one that proxy appended last."""
    if getattr(settings, "BEHIND_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        # Only the right-most entry was written by our proxy; the rest is client-supplied.
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(ip: str, username: str) -> tuple[str, str]:
    name = username.strip().casefold()[:150]
    digest = hashlib.sha256(f"{ip}\0{name}".encode()).hexdigest()[:32]
    ip_digest = hashlib.sha256(ip.encode()).hexdigest()[:32]
    return f"admin-login:user:{digest}", f"admin-login:ip:{ip_digest}"


def login_is_throttled(*, ip: str, username: str) -> bool:
    """Whether this client has used up its failed attempts for the current window."""
    limits = login_throttle_settings()
    user_key, ip_key = _keys(ip, username)
    counts = cache.get_many([user_key, ip_key])
    return (
        counts.get(user_key, 0) >= limits.max_failures
        or counts.get(ip_key, 0) >= limits.max_failures_per_ip
    )


def _incr(key: str, window: int) -> int:
    # add() only creates the counter (with the window as expiry) when absent; incr() is atomic.
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: start a fresh window
        cache.add(key, 1, timeout=window)
        return 1


def login_failure_record(*, ip: str, username: str) -> None:
    """Count one failed attempt against the address+name and the address."""
    limits = login_throttle_settings()
    user_key, ip_key = _keys(ip, username)
    _incr(user_key, limits.window_seconds)
    _incr(ip_key, limits.window_seconds)


def login_success_record(*, ip: str, username: str) -> None:
    """A correct password ends the lock-out count for this address and name."""
    user_key, _ip_key = _keys(ip, username)
    cache.delete(user_key)
