"""Admin registrations, one module per flow."""

from . import campaigns, consent, digests, ledger  # noqa: F401
