"""Admin registrations, one module per flow."""

from . import campaigns, consent, dashboard, digests, ledger  # noqa: F401
