import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from newsletter.services.consent import consent_text_default_publish
from tests.newsletter.factories import NewsletterFactory

PASSWORD = "pw-console-123"


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newsletter(db):
    newsletter = NewsletterFactory(
        slug="meinung-am-morgen", name="Meinung am Morgen", offers_weekly=True, welcome_mail=False
    )
    consent_text_default_publish(newsletter=newsletter)
    return newsletter


@pytest.fixture
def manager(db, managers_group):
    user = User.objects.create_user(
        "verwaltung", email="verwaltung@example.org", password=PASSWORD, is_staff=True
    )
    user.groups.add(managers_group)
    return user


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client
