"""Fixtures shared with the digest tests."""

from tests.newsletter.digests.conftest import (  # noqa: F401
    fake_mailgun,
    mailgun_in_process,
    newsletter_with_articles,
)
