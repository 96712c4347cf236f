import re
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


@pytest.mark.parametrize("junk", ["Mo,Fr", "7x", "", "00", "7"])
@pytest.mark.django_db
def test_weekdays_other_than_distinct_digits_cannot_be_saved(junk):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    newsletter = _newsletter(
        name="N", slug="n", sender_name="R", sender_email="r@example.org", weekly_days=junk
    )
    with pytest.raises(ValidationError, match="mindestens einen Wochentag|nicht leer"):
        newsletter.full_clean()
    if junk != "00":  # distinct digits are the form's and the model's rule, not the table's
        with pytest.raises(IntegrityError), transaction.atomic():
            newsletter.save()


@pytest.mark.django_db
def test_admin_form_offers_weekday_checkboxes_and_refuses_none_for_a_weekly_digest(admin_client):
    from django.urls import reverse

    from tests.newsletter.factories import NewsletterFactory

    newsletter = NewsletterFactory(offers_weekly=True, weekly_days="03")
    url = reverse("admin:newsletter_newsletter_change", args=[newsletter.pk])
    page = admin_client.get(url).content.decode()
    assert page.count('name="weekly_days" value=') == 7
    checked = re.findall(r'name="weekly_days" value="(\d)"[^>]*checked', page)
    assert checked == ["0", "3"]
    data = {
        "name": newsletter.name,
        "slug": newsletter.slug,
        "sender_name": "Redaktion",
        "sender_email": "r@example.org",
        "language": "de",
        "starts_at_0": "01.01.2025",
        "starts_at_1": "07:00:00",
        "send_time": "07:00",
        "offers_daily": "on",
        "offers_weekly": "on",
        "subject_template": "{newsletter}",
        # Required since the English texts and the mail branding joined the form.
        "subject_template_en": newsletter.subject_template_en,
        "brand_color": newsletter.brand_color,
        "consent_texts-TOTAL_FORMS": "0",
        "consent_texts-INITIAL_FORMS": "0",
    }
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    assert "Bitte wählen Sie mindestens einen Wochentag." in refused.content.decode()
    saved = admin_client.post(url, {**data, "weekly_days": ["4", "0"]})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    newsletter.refresh_from_db()
    assert newsletter.weekly_days == "04"


def test_scheduler_no_longer_turns_unknown_days_into_monday():
    newsletter = _newsletter(offers_weekly=True, weekly_days="3")  # Thursday only
    monday = datetime(2025, 7, 21, 12, 0, tzinfo=BERLIN)
    assert latest_slot(newsletter, Frequency.WEEKLY, monday) == datetime(
        2025, 7, 17, 7, 0, tzinfo=BERLIN
    )
