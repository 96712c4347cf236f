"""Mailing drafts: the unsaved Digest row a slot or a campaign would become, with its subject.

The start page previews, tests and counts a draft before anything exists for sending, and
the services save the same thing. A draft needs the mail's subject, so it sits above the mail
module (emails/), while the audience it goes to stays a plain read in selectors/mailings.py.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max

from articles.selectors import article_list_published_between
from newsletter.emails.digest import digest_subject, header_safe
from newsletter.models import Campaign, Digest, MailingKind, Newsletter


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
        subject_en=digest_subject(
            newsletter=newsletter, articles=articles, slot=slot, language="en"
        ),
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
        subject_en=header_safe(campaign.subject_en)[:300],
    )
