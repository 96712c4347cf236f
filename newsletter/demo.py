"""Demo newsletter for `seed_demo` (config/management/commands): a working signup on every
article page after `make run`."""

from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Newsletter
from newsletter.services.consent import consent_text_default_publish

DEMO_SLUG = "meinung-am-morgen"


def newsletter_demo_seed() -> Newsletter:
    """Create the demo newsletter and its consent texts once; running again adds nothing."""
    newsletter, _created = Newsletter.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Meinung am Morgen",
            "description": "Die neuen Meinungsbeiträge der Redaktion, morgens in Ihrem Postfach.",
            "description_en": "The editors' new opinion pieces, in your inbox every morning.",
            "sender_name": "Redaktion Meinung am Morgen",
            "sender_email": settings.DEFAULT_FROM_EMAIL,
            "language": "de",
            # No imprint or privacy URL of its own: mails link the site's pages on the
            # SITE_URL of the moment they are sent, not the one of the first seeding.
            "starts_at": timezone.now() - timezone.timedelta(days=7),
            "offers_daily": True,
            "offers_weekly": True,
            "welcome_mail": True,
        },
    )
    _drop_frozen_site_links(newsletter)
    consent_text_default_publish(newsletter=newsletter)
    return newsletter


def _drop_frozen_site_links(newsletter: Newsletter) -> None:
    """Earlier seeds stored absolute links to the site's own imprint and privacy pages, frozen
    at the SITE_URL of that first run; dropping them lets mails follow the current one."""
    own_pages = {reverse("articles:impressum"), reverse("articles:datenschutz")}
    stale = [
        field
        for field in ("imprint_url", "privacy_url")
        if getattr(newsletter, field) and urlsplit(getattr(newsletter, field)).path in own_pages
    ]
    if stale:
        Newsletter.objects.filter(pk=newsletter.pk).update(**dict.fromkeys(stale, ""))
        for field in stale:
            setattr(newsletter, field, "")
