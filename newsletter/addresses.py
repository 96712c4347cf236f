"""Addresses: one normal form for storage and comparison, and its keyed hash."""

import contextlib
import hashlib
import hmac

from django.conf import settings


def address_normalise(email: str) -> str:
    """Lower-case the domain (IDN to its ASCII form); the local part is kept as typed."""
    local, _, domain = email.strip().rpartition("@")
    if not local:
        return email.strip()
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain.lower()}"


def address_hmac(email: str) -> str:
    """Keyed hash of the normalised address, stable across SECRET_KEY rotations."""
    key = settings.NEWSLETTER_ADDRESS_HMAC_KEY.encode()
    value = address_normalise(email).lower().encode()
    return hmac.new(key, value, hashlib.sha256).hexdigest()
