import pytest
from django.core.cache import cache

from newsletter.services.consent import consent_text_default_publish
from tests.newsletter.factories import NewsletterFactory


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newsletter(db):
    newsletter = NewsletterFactory(
        slug="meinung-am-morgen",
        name="Meinung am Morgen",
        offers_weekly=True,
        welcome_mail=False,
        imprint_text="Meinung Verlag GmbH, Musterstraße 1, 10115 Berlin",
        imprint_url="https://meinung.example.org/impressum/",
    )
    consent_text_default_publish(newsletter=newsletter)
    return newsletter


@pytest.fixture
def signup(newsletter):
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


@pytest.fixture
def confirm():
    from newsletter.services.consent import subscription_confirm

    def confirm(subscription, ip="198.51.100.1", user_agent="Mailreader"):
        return subscription_confirm(
            subscription_id=subscription.id,
            confirm_round=subscription.confirm_round,
            ip=ip,
            user_agent=user_agent,
        )

    return confirm
