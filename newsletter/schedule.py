"""When a newsletter's digests are due: wall-clock slots in Europe/Berlin, DST-correct.

A slot is the send time on a calendar day in Berlin, turned into an aware instant. On the day
the clocks go forward a send time inside the gap (02:30) is taken in the old offset, which
lands one hour later on the new clock (03:30); on the day they go back an ambiguous time is its
first occurrence. Either way each calendar day yields exactly one slot, so the unique
(newsletter, frequency, slot) constraint sees the same value however often it is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from newsletter.models import Frequency, Newsletter

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Slot:
    frequency: str
    at: datetime


def slot_at(day: date, send_time: time) -> datetime:
    """The instant of `send_time` on `day` in Berlin, as UTC (see module doc).

    UTC because aware datetimes inside a repeated hour never compare equal across zones.
    """
    local = datetime.combine(day, send_time.replace(tzinfo=None), tzinfo=BERLIN)
    return local.astimezone(UTC)


def newsletter_frequencies(newsletter: Newsletter) -> list[str]:
    result = []
    if newsletter.offers_daily:
        result.append(Frequency.DAILY)
    if newsletter.offers_weekly:
        result.append(Frequency.WEEKLY)
    return result


def latest_slot(newsletter: Newsletter, frequency: str, now: datetime) -> datetime | None:
    """The most recent slot at or before `now` (None before the newsletter starts)."""
    send_time = newsletter.send_time
    if isinstance(send_time, str):
        send_time = time.fromisoformat(send_time)
    today = now.astimezone(BERLIN).date()
    days = newsletter.weekly_day_numbers if frequency == Frequency.WEEKLY else set(range(7))
    for back in range(0, 8):
        day = today - timedelta(days=back)
        if day.weekday() not in days:
            continue
        at = slot_at(day, send_time)
        if at <= now:
            return at if at >= newsletter.starts_at else None
    return None


def newsletter_due_slots(newsletter: Newsletter, now: datetime) -> list[Slot]:
    """The latest due slot of each frequency the newsletter offers (missed older ones collapse)."""
    slots = []
    for frequency in newsletter_frequencies(newsletter):
        at = latest_slot(newsletter, frequency, now)
        if at is not None:
            slots.append(Slot(frequency=frequency, at=at))
    return slots
