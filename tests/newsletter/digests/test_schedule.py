from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from newsletter.models import Frequency, Newsletter
from newsletter.schedule import latest_slot, slot_at

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def _newsletter(**kwargs) -> Newsletter:
    defaults = {
        "send_time": time(7, 0),
        "offers_daily": True,
        "offers_weekly": False,
        "weekly_days": "0",
        "starts_at": datetime(2020, 1, 1, tzinfo=UTC),
    }
    defaults.update(kwargs)
    return Newsletter(**defaults)


@pytest.mark.parametrize(
    ("day", "send_time", "expected_utc"),
    [
        # Winter: UTC+1, summer: UTC+2.
        ((2025, 1, 15), time(7, 0), datetime(2025, 1, 15, 6, 0, tzinfo=UTC)),
        ((2025, 7, 15), time(7, 0), datetime(2025, 7, 15, 5, 0, tzinfo=UTC)),
        # Spring forward (30 March 2025): 07:00 is already summer time.
        ((2025, 3, 30), time(7, 0), datetime(2025, 3, 30, 5, 0, tzinfo=UTC)),
        # 02:30 does not exist that day: taken in the old offset, i.e. 03:30 summer time.
        ((2025, 3, 30), time(2, 30), datetime(2025, 3, 30, 1, 30, tzinfo=UTC)),
        # Fall back (26 October 2025): 02:30 happens twice, the first one counts.
        ((2025, 10, 26), time(2, 30), datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
        ((2025, 10, 26), time(7, 0), datetime(2025, 10, 26, 6, 0, tzinfo=UTC)),
    ],
)
def test_slot_is_wall_clock_time_in_berlin(day, send_time, expected_utc):
    from datetime import date

    assert slot_at(date(*day), send_time) == expected_utc


def test_daily_slot_is_today_after_send_time_and_yesterday_before():
    newsletter = _newsletter()
    after = datetime(2025, 3, 30, 7, 1, tzinfo=BERLIN)
    before = datetime(2025, 3, 30, 6, 59, tzinfo=BERLIN)
    assert latest_slot(newsletter, Frequency.DAILY, after) == datetime(
        2025, 3, 30, 7, 0, tzinfo=BERLIN
    )
    # The day before the change was still winter time: 06:00 UTC.
    assert latest_slot(newsletter, Frequency.DAILY, before) == datetime(
        2025, 3, 29, 6, 0, tzinfo=UTC
    )


def test_one_slot_per_day_across_the_autumn_change():
    newsletter = _newsletter(send_time=time(2, 30))
    # Every minute of the repeated hour yields the same slot: one digest, not two.
    first = datetime(2025, 10, 26, 0, 45, tzinfo=UTC)  # 02:45 CEST
    second = datetime(2025, 10, 26, 1, 45, tzinfo=UTC)  # 02:45 CET
    assert latest_slot(newsletter, Frequency.DAILY, first) == latest_slot(
        newsletter, Frequency.DAILY, second
    )


def test_weekly_slot_on_chosen_days_only():
    newsletter = _newsletter(offers_weekly=True, weekly_days="03")  # Monday and Thursday
    friday = datetime(2025, 7, 18, 12, 0, tzinfo=BERLIN)
    assert latest_slot(newsletter, Frequency.WEEKLY, friday) == datetime(
        2025, 7, 17, 7, 0, tzinfo=BERLIN
    )
    monday_early = datetime(2025, 7, 21, 6, 0, tzinfo=BERLIN)
    assert latest_slot(newsletter, Frequency.WEEKLY, monday_early) == datetime(
        2025, 7, 17, 7, 0, tzinfo=BERLIN
    )


def test_no_slot_before_the_newsletter_starts():
    newsletter = _newsletter(starts_at=datetime(2025, 7, 18, 9, 0, tzinfo=BERLIN))
    assert latest_slot(newsletter, Frequency.DAILY, datetime(2025, 7, 18, 8, tzinfo=BERLIN)) is None
