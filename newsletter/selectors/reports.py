"""Figures for the newsletter dashboard and the report of one mailing.

The dashboard reads the daily roll-up (services/stats.py counts each day once); a report is a
few grouped queries on indexes that lead with its mailing (batch sums, exception rows,
provider events), so a page costs the same few queries at a thousand subscribers as at ten million.
Days are calendar days in Europe/Berlin. Opens and clicks are never measured, so no figure
here is about them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from newsletter.models import (
    Batch,
    BatchState,
    ConsentEvent,
    ConsentEventKind,
    DailyCount,
    Delivery,
    DeliveryState,
    Digest,
    Newsletter,
    ProviderEvent,
    RevocationChannel,
)

BERLIN = ZoneInfo("Europe/Berlin")
DASHBOARD_DAYS = 90
DASHBOARD_MAX_AGE = 60
UNSUBSCRIBE_WINDOW = timedelta(days=7)
BOUNCE_TYPES = ("bounced", "rejected")
COMPLAINT_TYPES = ("complained",)
# A confirmed subscriber enters the list by confirming (or by an import with proof) and
# leaves it by a revocation, a suppression or an erasure.
JOIN_KINDS = (ConsentEventKind.CONFIRMED, ConsentEventKind.IMPORTED)
LEAVE_KINDS = (ConsentEventKind.REVOKED, ConsentEventKind.SUPPRESSED, ConsentEventKind.ERASED)
DASHBOARD_KINDS = (ConsentEventKind.REQUESTED, *JOIN_KINDS, *LEAVE_KINDS)
# The roll-up's metric for a list's size (services/stats.py).
METRIC_CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Series:
    key: str
    label: str | Promise
    values: list[int | float]


@dataclass(frozen=True)
class Figure:
    """One chart's numbers: a label per row (a day, an outcome) and one or more series. The
    chart, its accessible table and its CSV download are all drawn from this one object."""

    key: str
    title: str | Promise
    row_header: str | Promise
    rows: list[str]
    series: list[Series]
    kind: str = "line"  # line, bar, stacked

    def table(self) -> list[tuple[str, list[int | float]]]:
        return [(row, [s.values[i] for s in self.series]) for i, row in enumerate(self.rows)]


@dataclass(frozen=True)
class Dashboard:
    start: date
    end: date
    built_at: datetime
    figures: list[Figure]
    confirmed_now: int
    counted_at: datetime | None
    requested: int
    confirmed: int
    conversion_percent: float | None
    recent_mailings: list[Digest] = field(default_factory=list)

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _day_label(day: date) -> str:
    return day.isoformat()


def dashboard_cached(*, newsletter: Newsletter | None = None) -> Dashboard:
    """The dashboard as built at most DASHBOARD_MAX_AGE seconds ago: its numbers are one
    query over the roll-up, but its charts take pygal longer than that, and the page and its
    CSVs read the same cached object, so a CSV always has the numbers beside its chart."""
    key = f"newsletter:dashboard:{newsletter.pk if newsletter else 'all'}"
    dashboard = cache.get(key)
    if dashboard is None:
        dashboard = dashboard_build(newsletter=newsletter)
        cache.set(key, dashboard, DASHBOARD_MAX_AGE)
    return dashboard


def dashboard_build(
    *, newsletter: Newsletter | None = None, today: date | None = None
) -> Dashboard:
    """The last 90 Berlin days: subscribers, signups and confirmations, revocations by
    channel, bounces and complaints; read from the daily roll-up (services/stats.py), one
    query over at most a few hundred rows per newsletter whatever the list's size."""
    today = today or timezone.localtime(timezone.now(), BERLIN).date()
    start = today - timedelta(days=DASHBOARD_DAYS - 1)
    days = _days(start, today)
    index = {day: n for n, day in enumerate(days)}

    rolled = DailyCount.objects.filter(day__gte=start, day__lte=today)
    if newsletter is not None:
        rolled = rolled.filter(newsletter=newsletter)
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    per_channel: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    bounces = [0] * len(days)
    complaints = [0] * len(days)
    # The latest size per newsletter: today's, or the last day rolled up before a quiet night.
    sizes: dict[int, tuple[date, int]] = {}
    counted_at = None
    for newsletter_id, day, metric, n, at in rolled.values_list(
        "newsletter_id", "day", "metric", "n", "counted_at"
    ):
        counted_at = max(counted_at, at) if counted_at else at
        i = index[day]
        source, _sep, name = metric.partition(":")
        if metric == METRIC_CONFIRMED:
            if newsletter_id not in sizes or sizes[newsletter_id][0] < day:
                sizes[newsletter_id] = (day, n)
        elif source == "consent":
            per_kind[name][i] += n
        elif source == "revoked":
            per_channel[name][i] += n
        elif name == "complained":
            complaints[i] += n
        else:
            bounces[i] += n

    confirmed_now = sum(n for _day, n in sizes.values())
    # The list's size at the end of each day, counted back from today's along the ledger.
    joins = [sum(per_kind[k][i] for k in JOIN_KINDS) for i in range(len(days))]
    leaves = [sum(per_kind[k][i] for k in LEAVE_KINDS) for i in range(len(days))]
    size = [0] * len(days)
    running = confirmed_now
    for i in reversed(range(len(days))):
        size[i] = max(running, 0)
        running -= joins[i] - leaves[i]

    requested_total = sum(per_kind[ConsentEventKind.REQUESTED])
    confirmed_total = sum(per_kind[ConsentEventKind.CONFIRMED])
    conversion = round(100 * confirmed_total / requested_total, 1) if requested_total else None
    labels = [_day_label(day) for day in days]
    channels = [c for c in RevocationChannel.values if c in per_channel]

    figures = [
        Figure(
            key="abonnenten",
            title=_("Bestätigte Abonnements (Stand am Tagesende)"),
            row_header=_("Tag"),
            rows=labels,
            series=[Series("confirmed", _("bestätigt"), size)],
        ),
        Figure(
            key="anmeldungen",
            title=_("Anmeldungen und Bestätigungen pro Tag"),
            row_header=_("Tag"),
            rows=labels,
            series=[
                Series("requested", _("Anmeldungen"), per_kind[ConsentEventKind.REQUESTED]),
                Series("confirmed", _("Bestätigungen"), per_kind[ConsentEventKind.CONFIRMED]),
                Series("imported", _("Importe mit Nachweis"), per_kind[ConsentEventKind.IMPORTED]),
            ],
            kind="bar",
        ),
        Figure(
            key="abmeldungen",
            title=_("Abmeldungen und Sperren pro Tag, nach Weg"),
            row_header=_("Tag"),
            rows=labels,
            series=[Series(c, RevocationChannel(c).label, per_channel[c]) for c in channels]
            or [Series("none", _("Abmeldungen"), [0] * len(days))],
            kind="stacked",
        ),
        Figure(
            key="zustellfehler",
            title=_("Unzustellbare Mails und Beschwerden pro Tag"),
            row_header=_("Tag"),
            rows=labels,
            series=[
                Series("bounced", _("unzustellbar"), bounces),
                Series("complained", _("Beschwerden"), complaints),
            ],
            kind="bar",
        ),
    ]
    recent = Digest.objects.select_related("newsletter").order_by("-slot", "-id")
    if newsletter is not None:
        recent = recent.filter(newsletter=newsletter)
    return Dashboard(
        start=start,
        end=today,
        built_at=timezone.now(),
        figures=figures,
        confirmed_now=confirmed_now,
        counted_at=counted_at,
        requested=requested_total,
        confirmed=confirmed_total,
        conversion_percent=conversion,
        recent_mailings=list(recent.exclude(state="skipped")[:10]),
    )


@dataclass(frozen=True)
class Mailing:
    """What a report needs to know about a mass mailing, whatever made it: its deliveries and
    batches (the shared delivery protocol) and when it started. A digest is one; another
    kind of mailing plugs in by building one of these."""

    title: str
    started_at: datetime | None
    recipients: int
    deliveries: QuerySet[Delivery]
    batches: QuerySet[Batch]
    provider_events: QuerySet[ProviderEvent]


def mailing_of_digest(*, digest: Digest) -> Mailing:
    return Mailing(
        title=str(digest),
        started_at=digest.fanned_out_at or digest.created_at,
        recipients=digest.recipients,
        deliveries=Delivery.objects.filter(digest_id=digest.pk),
        batches=Batch.objects.filter(digest_id=digest.pk),
        provider_events=ProviderEvent.objects.filter(digest_id=digest.pk),
    )


@dataclass(frozen=True)
class MailingReport:
    recipients: int
    accepted: int
    failed: int
    bounced: int
    complained: int
    unsubscribed_7d: int
    figure: Figure


def mailing_report(*, mailing: Mailing) -> MailingReport:
    """Recipients, accepted by the provider, refused, bounced, complained and unsubscribed
    within seven days of the start: four grouped queries, each on an index of the mailing."""
    accepted = mailing.batches.aggregate(n=Sum("sent_count", filter=Q(state=BatchState.SENT)))["n"]
    failed = mailing.deliveries.filter(state=DeliveryState.FAILED).count()
    bounced = complained = unsubscribed = 0
    for event_type, n in (
        mailing.provider_events.filter(event_type__in=BOUNCE_TYPES + COMPLAINT_TYPES)
        .values_list("event_type")
        .annotate(n=Count("id"))
        .order_by()
    ):
        if event_type in COMPLAINT_TYPES:
            complained += n
        else:
            bounced += n
    if mailing.started_at is not None:
        unsubscribed = (
            ConsentEvent.objects.filter(
                kind__in=(ConsentEventKind.REVOKED, ConsentEventKind.SUPPRESSED),
                at__gte=mailing.started_at,
                at__lt=mailing.started_at + UNSUBSCRIBE_WINDOW,
            )
            .filter(Exists(mailing.deliveries.filter(subscription_id=OuterRef("subscription_id"))))
            .values("subscription_id")
            .distinct()
            .count()
        )
    accepted = accepted or 0
    values = {
        "recipients": (_("Empfänger"), mailing.recipients),
        "accepted": (_("vom Versanddienst angenommen"), accepted),
        "failed": (_("abgelehnt"), failed),
        "bounced": (_("unzustellbar"), bounced),
        "complained": (_("Beschwerden"), complained),
        "unsubscribed": (_("abgemeldet binnen 7 Tagen"), unsubscribed),
    }
    figure = Figure(
        key="versand",
        title=_("Ergebnis des Versands"),
        row_header=_("Kennzahl"),
        rows=[str(label) for label, _n in values.values()],
        series=[Series("count", _("Anzahl"), [n for _label, n in values.values()])],
        kind="hbar",
    )
    return MailingReport(
        recipients=mailing.recipients,
        accepted=accepted,
        failed=failed,
        bounced=bounced,
        complained=complained,
        unsubscribed_7d=unsubscribed,
        figure=figure,
    )
