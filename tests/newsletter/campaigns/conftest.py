"""Fixtures shared with the digest tests."""

from tests.newsletter.digests.conftest import newsletter_with_articles  # noqa: F401
