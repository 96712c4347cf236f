"""Admin registrations, one module per flow."""

from . import campaigns, consent, digests  # noqa: F401
