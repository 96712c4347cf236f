"""Who a mailing goes to: one definition for the checklist's count and the fan-out's INSERT.

A digest goes to a newsletter's confirmed readers (of its frequency, where the newsletter
offers both); a campaign to the confirmed readers of its segment. The checklist counts this
queryset and the fan-out inserts from its SQL, so the number a manager confirms is the number
the fan-out writes (give or take readers who confirm or leave in between).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Case, CharField, Exists, Max, OuterRef, QuerySet, Value, When

from articles.selectors import article_list_published_between
from newsletter.emails.digest import digest_subject, header_safe
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


def mailing_audience_rows(audience: QuerySet[Subscription]) -> QuerySet:
    """(subscription id, mail language) per reader: emails.digest.digest_language in SQL."""
    return audience.annotate(
        mail_language=Case(
            When(language__startswith="en", then=Value("en")),
            default=Value("de"),
            output_field=CharField(),
        )
    ).values_list("id", "mail_language")


def digest_draft(*, newsletter: Newsletter, frequency: str, slot: datetime) -> Digest:
    """The digest a slot would get, unsaved: the articles since the previous digest of its
    frequency and the subject they give. The start page previews, tests and counts this
    before anything exists for sending; digest_create saves the same thing."""
    previous_end = Digest.objects.filter(
        newsletter=newsletter, kind=MailingKind.DIGEST, frequency=frequency, slot__lt=slot
    ).aggregate(end=Max("period_end"))["end"]
    period_start = previous_end or newsletter.starts_at
    articles = article_list_published_between(start=period_start, end=slot)
    return Digest(
        kind=MailingKind.DIGEST,
        newsletter=newsletter,
        frequency=frequency,
        slot=slot,
        period_start=period_start,
        period_end=slot,
        article_ids=[a.pk for a in articles],
        subject=digest_subject(newsletter=newsletter, articles=articles, slot=slot),
    )


def campaign_draft(*, campaign: Campaign, slot: datetime) -> Digest:
    """The mailing a campaign becomes when it is confirmed, unsaved (preview, test, count)."""
    return Digest(
        kind=MailingKind.CAMPAIGN,
        campaign=campaign,
        newsletter=campaign.newsletter,
        frequency="",
        slot=slot,
        period_start=slot,
        period_end=slot,
        article_ids=[campaign.article_id] if campaign.article_id else [],
        subject=header_safe(campaign.subject)[:300],
    )
