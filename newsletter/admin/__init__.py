"""Admin registrations, one module per flow."""

from . import consent, dashboard, digests  # noqa: F401
