"""The dashboard's daily roll-up: equal to counting the events directly, kept up by re-runs,
and the dashboard reads it with a fixed number of queries."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from newsletter.models import (
    ConsentEvent,
    DailyCount,
    Delivery,
    Digest,
    DigestState,
    ProviderEvent,
    RevocationChannel,
)
from newsletter.selectors.reports import DASHBOARD_KINDS, dashboard_build
from newsletter.services.consent import subscription_revoke, subscription_suppress
from newsletter.services.stats import daily_counts_direct, daily_counts_roll_up
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

from .test_dashboard import signup

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def berlin_today() -> date:
    return timezone.localtime(timezone.now(), BERLIN).date()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def history(newsletter):
    """Signups, confirmations, revocations by two channels, bounces and complaints spread
    over the last days, some a minute either side of a Berlin midnight, in two newsletters."""
    other = NewsletterFactory(slug="wochenblick", name="Wochenblick")
    from newsletter.services.consent import consent_text_default_publish

    consent_text_default_publish(newsletter=other)
    today = berlin_today()
    subs = []
    for n in range(12):
        sub = signup(newsletter if n % 3 else other, f"r{n}@example.org", confirm=n % 4 != 0)
        subs.append(sub)
        # Move the whole history of the reader to a day of its own (UTC 22:59 / 23:01 are
        # either side of a Berlin midnight in winter).
        day = today - timedelta(days=n % 5)
        moment = at(day, 0, 1) if n % 2 else at(day - timedelta(days=1), 23, 59)
        ConsentEvent.objects.filter(subscription=sub).update(at=moment)
    subscription_revoke(subscription_id=subs[1].id, channel=RevocationChannel.LINK)
    subscription_suppress(
        subscription_id=subs[2].id, reason="hard_bounce", channel=RevocationChannel.WEBHOOK
    )
    digest = Digest.objects.create(
        newsletter=newsletter,
        frequency="daily",
        slot=timezone.now() - timedelta(days=3),
        state=DigestState.DONE,
        period_start=timezone.now() - timedelta(days=4),
        period_end=timezone.now() - timedelta(days=3),
        article_ids=[1],
    )
    for n, sub in enumerate(subs[:8]):
        delivery = Delivery.objects.create(digest=digest, subscription=sub)
        kind = ("bounced", "complained", "delivered", "rejected")[n % 4]
        event = ProviderEvent.objects.create(
            esp="mailgun", event_id=f"e{n}", event_type=kind, delivery=delivery
        )
        ProviderEvent.objects.filter(pk=event.pk).update(
            received_at=timezone.now() - timedelta(days=n % 3)
        )
    return {"newsletters": [newsletter, other], "subs": subs}


def counted_in_python() -> Counter:
    """The yardstick, independent of SQL: every event's Berlin day computed one by one."""
    counts: Counter = Counter()
    for event in ConsentEvent.objects.filter(kind__in=DASHBOARD_KINDS):
        day = timezone.localtime(event.at, BERLIN).date()
        counts[(event.newsletter_id, day, f"consent:{event.kind}")] += 1
        if event.kind in ("revoked", "suppressed"):
            counts[(event.newsletter_id, day, f"revoked:{event.channel or 'admin'}")] += 1
    for event in ProviderEvent.objects.select_related("delivery__digest"):
        if event.event_type in ("bounced", "rejected", "complained"):
            kind = "complained" if event.event_type == "complained" else "bounced"
            day = timezone.localtime(event.received_at, BERLIN).date()
            counts[(event.delivery.digest.newsletter_id, day, f"provider:{kind}")] += 1
    return counts


def rolled_up() -> Counter:
    return Counter(
        {
            (row.newsletter_id, row.day, row.metric): row.n
            for row in DailyCount.objects.exclude(metric="confirmed")
        }
    )


def test_the_roll_up_equals_a_direct_count_of_every_day(history):
    today = berlin_today()
    assert daily_counts_roll_up() > 0  # the first run counts all 90 days
    expected = counted_in_python()
    assert rolled_up() == expected
    assert +Counter(daily_counts_direct(start=today - timedelta(days=89), end=today)) == expected
    sizes = dict(DailyCount.objects.filter(metric="confirmed").values_list("newsletter_id", "n"))
    assert sizes == {
        nl.pk: nl.subscriptions.filter(state="confirmed").count() for nl in history["newsletters"]
    }


def test_a_re_run_recounts_today_and_keeps_older_days_after_retention(history, newsletter):
    daily_counts_roll_up()
    first = rolled_up()
    # New events today; old events deleted (as the retention job does) stay counted.
    signup(newsletter, "neu@example.org")
    SubscriptionFactory(newsletter=newsletter)
    old_day = berlin_today() - timedelta(days=4)
    ConsentEvent.objects.filter(at__lt=at(old_day, 12)).delete()
    daily_counts_roll_up()
    second = rolled_up()
    today = berlin_today()
    assert second[(newsletter.pk, today, "consent:requested")] == (
        first[(newsletter.pk, today, "consent:requested")] + 1
    )
    older = {k: v for k, v in first.items() if k[1] < today - timedelta(days=1)}
    assert {k: second[k] for k in older} == older
    recent = {k: v for k, v in counted_in_python().items() if k[1] >= today - timedelta(days=1)}
    assert {k: v for k, v in second.items() if k[1] >= today - timedelta(days=1)} == recent
    assert DailyCount.objects.get(newsletter=newsletter, day=today, metric="confirmed").n == (
        newsletter.subscriptions.filter(state="confirmed").count()
    )


def test_the_dashboard_shows_the_roll_up_and_says_when_it_was_counted(
    manager_client, history, newsletter
):
    page = manager_client.get("/admin/newsletter/").content.decode()
    assert "Noch nicht gezählt" in page
    daily_counts_roll_up()
    from django.core.cache import cache

    cache.clear()
    page = manager_client.get("/admin/newsletter/").content.decode()
    assert "Gezählt " in page
    dashboard = dashboard_build()
    expected = counted_in_python()
    assert dashboard.requested == sum(n for k, n in expected.items() if k[2] == "consent:requested")
    per_newsletter = dashboard_build(newsletter=newsletter)
    confirmed = newsletter.subscriptions.filter(state="confirmed").count()
    assert per_newsletter.confirmed_now == confirmed
    bounces = per_newsletter.figure("zustellfehler")
    assert sum(bounces.series[0].values) == sum(
        n for k, n in expected.items() if k[0] == newsletter.pk and k[2] == "provider:bounced"
    )
