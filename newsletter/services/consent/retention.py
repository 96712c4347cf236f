"""The retention and erasure job: the only code that deletes consent evidence or rewrites it.

Consent events are append-only everywhere else. Two things change them, both here:
`consent_retention_run` deletes the evidence whose retention period ended (the chain keeps
their positions and hashes), and `consent_events_pseudonymise` blanks the personal fields of an
erased address's events. Every other change to a consent is a new event.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from newsletter.models import (
    SUPPRESSION_ERASURE,
    ConsentEvent,
    ConsentEventKind,
    SignupRequest,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.services.consent.events import (
    LAPSED_STATES,
)
from newsletter.services.ledger import chain_prune

logger = logging.getLogger(__name__)


def consent_events_pseudonymise(*, address_hmac: str) -> int:
    """Blank IP, user agent, page and note of every event of an erased address and mark them
    redacted; returns how many. What stays is pseudonymous: the keyed address hash, the kinds,
    times, texts, actor and structured data, all still covered by the chain.

    The only update of old consent events (Art. 17 DSGVO). Call it in the erasure's
    transaction, before its `erased` event: the verifier accepts a redacted row only with an
    erasure of its address chained after it, and only when its personal fields are blank."""
    return ConsentEvent.objects.filter(address_hmac=address_hmac).update(
        ip=None, user_agent="", url="", note="", redacted=True
    )


SIGNUP_REQUEST_MAX_AGE = timedelta(days=1)


def consent_retention_run(*, now: datetime | None = None) -> dict[str, int]:
    """Delete unconfirmed signups after the token lifetime and the evidence of revoked or
    erased subscriptions after the retention period; returns and logs the counts."""
    now = now or timezone.now()
    pending_cutoff = now - timedelta(seconds=settings.NEWSLETTER_CONFIRM_MAX_AGE)
    evidence_cutoff = now - timedelta(days=settings.NEWSLETTER_RETENTION_DAYS)
    counts = {
        "pending": 0,
        "revoked": 0,
        "erased_events": 0,
        "suppressions": 0,
        "signup_requests": 0,
    }
    with transaction.atomic():
        # Never-confirmed signups hold no consent worth proving; a lapsed subscription that
        # was asked again keeps its older evidence until its own retention ends.
        stale_pending = Subscription.objects.filter(
            state=SubscriptionState.PENDING,
            confirmed_at__isnull=True,
            unsubscribed_at__isnull=True,
            requested_at__lt=pending_cutoff,
        )
        revoked = Subscription.objects.filter(
            state__in=LAPSED_STATES, unsubscribed_at__lt=evidence_cutoff
        )
        erased_doomed = Q(pk__in=[])
        erased = ConsentEvent.objects.filter(
            kind=ConsentEventKind.ERASED, subscription__isnull=True, at__lt=evidence_cutoff
        ).values_list("address_hmac", "newsletter_id", "at")
        for key, newsletter_id, erased_at in list(erased):
            erased_doomed |= Q(
                subscription__isnull=True,
                address_hmac=key,
                newsletter_id=newsletter_id,
                at__lte=erased_at,
            )
        counts["erased_events"] = ConsentEvent.objects.filter(erased_doomed).count()
        doomed_ids = list(
            ConsentEvent.objects.filter(
                Q(subscription__in=stale_pending) | Q(subscription__in=revoked) | erased_doomed
            ).values_list("id", flat=True)
        )
        _total, _detail = stale_pending.delete()
        counts["pending"] = _detail.get("newsletter.Subscription", 0)
        _total, _detail = revoked.delete()
        counts["revoked"] = _detail.get("newsletter.Subscription", 0)
        # Bounce and complaint entries protect the sender and stay; erasure entries end with
        # the evidence they belong to.
        counts["suppressions"], _detail = Suppression.objects.filter(
            reason=SUPPRESSION_ERASURE, created_at__lt=evidence_cutoff
        ).delete()
        # A signup whose task message was lost (broker emptied): the reader got no mail and
        # will ask again; the address it holds must not stay.
        counts["signup_requests"], _detail = SignupRequest.objects.filter(
            created_at__lt=now - SIGNUP_REQUEST_MAX_AGE
        ).delete()
        # Last, as it takes the chain lock: the deleted events leave their positions and
        # hashes behind, so the chain stays verifiable across the gap.
        chain_prune(events=ConsentEvent.objects.filter(id__in=doomed_ids), at=now)
    logger.info("consent retention: %s", counts)
    return counts
