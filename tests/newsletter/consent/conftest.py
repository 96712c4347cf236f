import pytest
from django.core.cache import cache

from newsletter.services.consent import consent_text_default_publish
from tests.fakes.smtp import smtp_sink  # noqa: F401 - fixture for this folder
from tests.newsletter.factories import NewsletterFactory


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    """Rate-limit counters live in Redis; each test starts with none of another test's."""
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
def request_signup(newsletter):
    """subscription_request with the usual evidence, running the on-commit mail task."""
    from newsletter.services.consent import subscription_request

    def signup(address="leserin@example.org", **kwargs):
        values = {
            "address": address,
            "newsletter": newsletter,
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 Test",
            "url": "http://testserver/artikel/x/",
            "form": "signup_box",
            "language": "de",
            **kwargs,
        }
        return subscription_request(**values)

    return signup
