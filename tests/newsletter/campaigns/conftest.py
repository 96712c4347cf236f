"""Fixtures shared with the digest tests, and the campaign manager of the admin tests."""

import pytest
from django.contrib.auth.models import Group, User

from tests.newsletter.digests.conftest import (  # noqa: F401
    fake_mailgun,
    mailgun_in_process,
    newsletter_with_articles,
)


@pytest.fixture
def manager(client):
    """A newsletter manager, logged in."""
    user = User.objects.create_user(
        "verwaltung", email="verwaltung@example.org", password="x", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Newsletter-Verwaltung"))
    client.force_login(user)
    return user
