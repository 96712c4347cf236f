import hashlib

import factory
from django.utils import timezone

from newsletter.addresses import address_hmac
from newsletter.models import ConsentText, Newsletter, Subscription, SubscriptionState


class NewsletterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Newsletter
        django_get_or_create = ("slug",)

    name = "Meinung am Morgen"
    slug = factory.Sequence(lambda n: f"newsletter-{n}")
    sender_name = "Redaktion"
    sender_email = "redaktion@example.org"
    imprint_url = "https://example.org/impressum"
    privacy_url = "https://example.org/datenschutz"
    starts_at = factory.LazyFunction(lambda: timezone.now() - timezone.timedelta(days=30))


class ConsentTextFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentText

    newsletter = factory.SubFactory(NewsletterFactory)
    language = "de"
    version = 1
    text = "Ich bin damit einverstanden, per E-Mail informiert zu werden."
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.text.encode()).hexdigest())


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A confirmed subscription (use state=... for the others)."""

    class Meta:
        model = Subscription

    email = factory.Sequence(lambda n: f"leser{n}@example.org")
    address_hmac = factory.LazyAttribute(lambda o: address_hmac(o.email))
    newsletter = factory.SubFactory(NewsletterFactory)
    state = SubscriptionState.CONFIRMED
    requested_at = factory.LazyFunction(timezone.now)
    confirmed_at = factory.LazyFunction(timezone.now)
