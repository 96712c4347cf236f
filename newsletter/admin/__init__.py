"""Admin registrations, one module per flow."""

from . import consent, digests  # noqa: F401
