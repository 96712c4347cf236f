"""Admin registrations, one module per flow."""

from . import consent, digests, ledger  # noqa: F401
