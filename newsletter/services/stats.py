"""The dashboard's daily roll-up: per Berlin day and newsletter, the counts of consent events
by kind, revocations by channel and bounces and complaints, plus each list's size.

A beat task recounts today and yesterday (events still arrive for both around midnight) and
replaces their rows in one transaction; the first run, or a run after the table was emptied,
counts all DASHBOARD_DAYS. Counting a day straight from the events is the one definition, used
by the roll-up and held equal to it by the tests.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    DailyCount,
    Newsletter,
    ProviderEvent,
    RevocationChannel,
    Subscription,
    SubscriptionState,
)
from newsletter.selectors.reports import (
    BOUNCE_TYPES,
    COMPLAINT_TYPES,
    DASHBOARD_DAYS,
    DASHBOARD_KINDS,
    METRIC_CONFIRMED,
)

BERLIN = ZoneInfo("Europe/Berlin")
ROLLUP_RECENT_DAYS = 2
REVOCATION_KINDS = (ConsentEventKind.REVOKED, ConsentEventKind.SUPPRESSED)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BERLIN)


def daily_counts_direct(*, start: date, end: date) -> dict[tuple[int, date, str], int]:
    """(newsletter id, day, metric) → count for the Berlin days start..end, straight from the
    ledger and the provider events: two grouped queries over their time indexes."""
    since, until = _midnight(start), _midnight(end + timedelta(days=1))
    counts: dict[tuple[int, date, str], int] = defaultdict(int)
    consent = (
        ConsentEvent.objects.filter(kind__in=DASHBOARD_KINDS, at__gte=since, at__lt=until)
        .annotate(day=TruncDate("at", tzinfo=BERLIN))
        .values_list("newsletter_id", "day", "kind", "channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    for newsletter_id, day, kind, channel, n in consent:
        counts[(newsletter_id, day, f"consent:{kind}")] += n
        if kind in REVOCATION_KINDS:
            counts[(newsletter_id, day, f"revoked:{channel or RevocationChannel.ADMIN}")] += n
    provider = (
        ProviderEvent.objects.filter(
            event_type__in=BOUNCE_TYPES + COMPLAINT_TYPES,
            received_at__gte=since,
            received_at__lt=until,
            delivery__isnull=False,
        )
        .annotate(day=TruncDate("received_at", tzinfo=BERLIN))
        .values_list("delivery__digest__newsletter_id", "day", "event_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    for newsletter_id, day, event_type, n in provider:
        kind = "complained" if event_type in COMPLAINT_TYPES else "bounced"
        counts[(newsletter_id, day, f"provider:{kind}")] += n
    return counts


def daily_counts_roll_up(*, today: date | None = None, days: int = ROLLUP_RECENT_DAYS) -> int:
    """Recount the last `days` Berlin days (all DASHBOARD_DAYS on the first run) and replace
    their rows; record each list's confirmed size as today's; returns the rows written. Two
    runs at once: one writes, the other finds the rows taken and leaves them."""
    now = timezone.now()
    today = today or timezone.localtime(now, BERLIN).date()
    if not DailyCount.objects.exists():
        days = DASHBOARD_DAYS
    start = today - timedelta(days=days - 1)
    counts = daily_counts_direct(start=start, end=today)
    # Every newsletter gets today's size, an emptied list its 0.
    sizes = dict.fromkeys(Newsletter.objects.values_list("pk", flat=True), 0)
    sizes.update(
        Subscription.objects.filter(state=SubscriptionState.CONFIRMED)
        .values_list("newsletter_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [
        DailyCount(newsletter_id=nl, day=day, metric=metric, n=n, counted_at=now)
        for (nl, day, metric), n in counts.items()
    ]
    rows += [
        DailyCount(newsletter_id=nl, day=today, metric=METRIC_CONFIRMED, n=n, counted_at=now)
        for nl, n in sizes.items()
    ]
    try:
        with transaction.atomic():
            # A past day's size stays what it was when that day was last counted.
            DailyCount.objects.filter(day__gte=start, day__lte=today).exclude(
                metric=METRIC_CONFIRMED, day__lt=today
            ).delete()
            DailyCount.objects.bulk_create(rows)
    except IntegrityError:
        return 0
    return len(rows)
