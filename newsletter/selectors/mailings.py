"""Who a mailing goes to: one definition for the checklist's count and the claims' INSERT.

A digest goes to a newsletter's confirmed readers (of its frequency, where the newsletter
offers both); a campaign to the confirmed readers of its segment. The checklist counts this
queryset and each claim inserts its next readers from its SQL, so the number a manager
confirms is the number that is sent (give or take readers who confirm or leave in between).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Case, CharField, Count, Exists, OuterRef, QuerySet, Value, When

from newsletter.models import (
    Campaign,
    Digest,
    MailingKind,
    Newsletter,
    SegmentLanguage,
    Subscription,
    SubscriptionState,
)
from newsletter.schedule import newsletter_frequencies

BERLIN = ZoneInfo("Europe/Berlin")


def berlin_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BERLIN)


def campaign_segment_filter(
    queryset: QuerySet[Subscription], *, campaign: Campaign
) -> QuerySet[Subscription]:
    """Narrow confirmed readers to a campaign's segment (language as mails use it: English for
    any English code, German for everything else; confirmation day in Europe/Berlin; at least
    one of the segment's topics among those the reader chose)."""
    if campaign.segment_language == SegmentLanguage.EN:
        queryset = queryset.filter(language__startswith="en")
    elif campaign.segment_language == SegmentLanguage.DE:
        queryset = queryset.exclude(language__startswith="en")
    if campaign.segment_confirmed_from:
        queryset = queryset.filter(
            confirmed_at__gte=berlin_midnight(campaign.segment_confirmed_from)
        )
    if campaign.segment_confirmed_until:
        queryset = queryset.filter(
            confirmed_at__lt=berlin_midnight(campaign.segment_confirmed_until + timedelta(days=1))
        )
    topic_ids = list(campaign.segment_topics.values_list("pk", flat=True)) if campaign.pk else []
    if topic_ids:
        # EXISTS rather than a join: a reader with two of the topics is still one recipient.
        chose = Subscription.topics.through.objects.filter(
            subscription_id=OuterRef("pk"), topic_id__in=topic_ids
        )
        queryset = queryset.filter(Exists(chose))
    return queryset


def mailing_audience(
    *, newsletter: Newsletter, frequency: str = "", campaign: Campaign | None = None
) -> QuerySet[Subscription]:
    """The subscriptions a mailing is fanned out to (before the send-time re-check)."""
    queryset = Subscription.objects.filter(newsletter=newsletter, state=SubscriptionState.CONFIRMED)
    if campaign is not None:
        return campaign_segment_filter(queryset, campaign=campaign)
    # Where a newsletter offers both, the subscriber's choice decides; otherwise everyone
    # confirmed gets the one frequency there is.
    if frequency and len(newsletter_frequencies(newsletter)) > 1:
        queryset = queryset.filter(frequency=frequency)
    return queryset


def mailing_audience_of(digest: Digest) -> QuerySet[Subscription]:
    return mailing_audience(
        newsletter=digest.newsletter,
        frequency=digest.frequency,
        campaign=digest.campaign if digest.kind == MailingKind.CAMPAIGN else None,
    )


def mailing_audience_snapshot(digest: Digest) -> QuerySet[Subscription]:
    """The audience as it stood when the mailing started: readers confirmed by then, with a
    subscription that existed by then. Claims take their readers from it as they go, so a
    reader who leaves before their turn is never written down, and one who joins later is
    never added."""
    return mailing_audience_of(digest).filter(
        id__lte=digest.audience_last_id or 0, confirmed_at__lte=digest.fanned_out_at
    )


def mailing_audience_next(digest: Digest, *, limit: int) -> QuerySet:
    """(id, mail language) of the next `limit` readers after the mailing's claim cursor, in
    id order (a range scan of sub_audience_idx), each in the language they have now."""
    rows = mailing_audience_rows(
        mailing_audience_snapshot(digest).filter(id__gt=digest.audience_cursor)
    )
    return rows.order_by("id")[:limit]


def mailing_audience_rows(audience: QuerySet[Subscription]) -> QuerySet:
    """(subscription id, mail language) per reader: emails.digest.digest_language in SQL."""
    return audience.annotate(
        mail_language=Case(
            When(language__startswith="en", then=Value("en")),
            default=Value("de"),
            output_field=CharField(),
        )
    ).values_list("id", "mail_language")


# The languages mails are written in (mailing_audience_rows maps every reader to one).
MAIL_LANGUAGES = ("de", "en")


def mailing_audience_languages(audience: QuerySet[Subscription]) -> dict[str, int]:
    """How many readers of the audience get the mailing in each mail language (one query)."""
    counts = dict(
        mailing_audience_rows(audience)
        .order_by()
        .values("mail_language")
        .annotate(n=Count("id"))
        .values_list("mail_language", "n")
    )
    return {language: counts.get(language, 0) for language in MAIL_LANGUAGES}
