"""What digests and campaigns share before sending: test mails and confirming a campaign.

Sending itself is the batch protocol of services.digest_sending for both (docs/design.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.drafts import campaign_draft
from newsletter.emails.digest import mailing_test_message
from newsletter.models import Campaign, Digest, DigestState
from newsletter.services.digests import mailing_fan_out_enqueue

TEST_ADDRESSES_MAX = 10


def mailing_test_addresses_parse(raw: str) -> list[str]:
    """Addresses separated by commas, semicolons or line breaks; each valid, at most ten."""
    addresses = []
    for part in raw.replace(";", ",").replace("\n", ",").split(","):
        address = part.strip()
        if address and address.lower() not in (a.lower() for a in addresses):
            addresses.append(address)
    if not addresses:
        raise ValidationError(_("Bitte mindestens eine Adresse angeben."), code="no_address")
    if len(addresses) > TEST_ADDRESSES_MAX:
        raise ValidationError(
            _("Höchstens %(max)d Testadressen auf einmal."),
            code="too_many_addresses",
            params={"max": TEST_ADDRESSES_MAX},
        )
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ValidationError(
                _("„%(address)s“ ist keine gültige E-Mail-Adresse."),
                code="invalid_address",
                params={"address": address[:100]},
            ) from exc
    return addresses


def mailing_test_send(*, digest: Digest, addresses: list[str], language: str) -> int:
    """Send a mailing (saved or a draft) once to each test address, marked as a test, with
    inert personal links; records nothing. Returns the number of mails handed over."""
    messages = [
        mailing_test_message(digest=digest, email=address, language=language)
        for address in addresses
    ]
    return get_connection(fail_silently=False).send_messages(messages) or 0


def campaign_send(
    *, campaign_id: int, send_at: datetime | None = None, now: datetime | None = None
) -> Digest:
    """Confirm a campaign once (the mailing's one-to-one campaign): its mailing starts now
    (fan-out enqueued after commit) or waits as scheduled until `send_at`. A repeat returns the
    mailing that exists; nothing is sent twice."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("newsletter").get(pk=campaign_id)
    existing = Digest.objects.filter(campaign=campaign).first()
    if existing is not None:
        return existing
    if send_at is not None and send_at < now - timedelta(minutes=1):
        raise ValidationError(
            _("Der Versandzeitpunkt liegt in der Vergangenheit."), code="send_at_past"
        )
    if not campaign.newsletter.is_active:
        raise ValidationError(_("Dieser Newsletter ist nicht aktiv."), code="newsletter_inactive")
    later = send_at is not None and send_at > now
    mailing = campaign_draft(campaign=campaign, slot=send_at if later else now)
    mailing.state = DigestState.SCHEDULED if later else DigestState.FANNING_OUT
    try:
        with transaction.atomic():
            mailing.save(force_insert=True)
            if not later:
                mailing_fan_out_enqueue(mailing.pk)
    except IntegrityError:
        # Confirmed twice at once (a double click): the first confirmation stands.
        return Digest.objects.get(campaign=campaign)
    return mailing
