"""The preference centre's save and "leave all" are one service each, in one transaction."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from newsletter.models import (
    CHAIN_HEAD_ID,
    ChainHead,
    ConsentEvent,
    ConsentEventKind,
    RevocationChannel,
    Subscription,
    SubscriptionState,
)
from newsletter.services.consent import (
    PreferenceChoice,
    consent_text_default_publish,
    preferences_apply,
    subscription_confirm,
    subscription_revoke_all,
)
from tests.articles.factories import TopicFactory
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

EVIDENCE = {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0 Test", "url": "http://testserver/"}


@pytest.fixture
def reader():
    """One address subscribed to two newsletters; a third it does not get yet. The second
    offers weekly mail only."""
    both = NewsletterFactory(slug="morgen", offers_daily=True, offers_weekly=True)
    weekly = NewsletterFactory(slug="woche", offers_daily=False, offers_weekly=True)
    other = NewsletterFactory(slug="abend", offers_daily=True, offers_weekly=True)
    for newsletter in (both, weekly, other):
        consent_text_default_publish(newsletter=newsletter)
    first = SubscriptionFactory(email="leserin@example.org", newsletter=both, language="de")
    second = SubscriptionFactory(
        email="leserin@example.org", newsletter=weekly, language="de", frequency="weekly"
    )
    return {"both": both, "weekly": weekly, "other": other, "first": first, "second": second}


def _chain_head():
    return ChainHead.objects.filter(pk=CHAIN_HEAD_ID).values_list("seq", "row_hash").first()


def test_an_error_on_the_second_row_leaves_the_first_rows_change_unapplied(
    reader, django_capture_on_commit_callbacks
):
    events_before, head_before = ConsentEvent.objects.count(), _chain_head()
    choices = [
        # Row 1 alone would revoke and change the language; row 2 asks for a frequency its
        # newsletter does not offer.
        PreferenceChoice(newsletter=reader["both"], wanted=False),
        PreferenceChoice(newsletter=reader["weekly"], wanted=True, frequency="daily"),
    ]
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(ValidationError, match="Häufigkeit") as raised,
    ):
        preferences_apply(
            address_hmac=reader["first"].address_hmac, language="en", choices=choices, **EVIDENCE
        )
    assert raised.value.code == "frequency"
    first = Subscription.objects.get(pk=reader["first"].pk)
    assert first.state == SubscriptionState.CONFIRMED and first.language == "de"
    assert ConsentEvent.objects.count() == events_before
    assert _chain_head() == head_before


def test_a_new_newsletter_requested_before_a_failing_row_is_not_requested(
    reader, django_capture_on_commit_callbacks
):
    choices = [
        PreferenceChoice(
            newsletter=reader["other"],
            wanted=True,
            consent_text=reader["other"].consent_texts.get(language="de"),
        ),
        PreferenceChoice(newsletter=reader["weekly"], wanted=True, frequency="daily"),
    ]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        preferences_apply(
            address_hmac=reader["first"].address_hmac, language="de", choices=choices, **EVIDENCE
        )
    assert not Subscription.objects.filter(newsletter=reader["other"]).exists()
    assert mail.outbox == []


def test_a_save_applies_every_row_with_its_events(reader, django_capture_on_commit_callbacks):
    choices = [
        PreferenceChoice(newsletter=reader["both"], wanted=True, frequency="weekly"),
        PreferenceChoice(newsletter=reader["weekly"], wanted=False),
        PreferenceChoice(
            newsletter=reader["other"],
            wanted=True,
            consent_text=reader["other"].consent_texts.get(language="en"),
        ),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        preferences_apply(
            address_hmac=reader["first"].address_hmac, language="en", choices=choices, **EVIDENCE
        )
    first = Subscription.objects.get(pk=reader["first"].pk)
    second = Subscription.objects.get(pk=reader["second"].pk)
    third = Subscription.objects.get(newsletter=reader["other"])
    assert (first.state, first.language, first.frequency) == ("confirmed", "en", "weekly")
    assert second.state == SubscriptionState.UNSUBSCRIBED
    assert third.state == SubscriptionState.PENDING and third.email == "leserin@example.org"
    change = ConsentEvent.objects.get(subscription=first, kind=ConsentEventKind.PREFERENCES_CHANGED)
    assert change.data == {
        "frequency": {"old": "daily", "new": "weekly"},
        "language": {"old": "de", "new": "en"},
    }
    assert len(mail.outbox) == 1  # the third newsletter's own confirmation request


def test_a_newsletter_subscribed_from_the_centre_gets_the_topics_ticked_in_the_same_save(
    reader, django_capture_on_commit_callbacks
):
    markets, crypto, _unticked = TopicFactory(), TopicFactory(), TopicFactory()
    choices = [
        PreferenceChoice(newsletter=reader["both"], wanted=True),
        PreferenceChoice(newsletter=reader["weekly"], wanted=True),
        PreferenceChoice(
            newsletter=reader["other"],
            wanted=True,
            frequency="weekly",
            consent_text=reader["other"].consent_texts.get(language="de"),
        ),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        preferences_apply(
            address_hmac=reader["first"].address_hmac,
            language="de",
            choices=choices,
            topic_ids=[crypto.pk, markets.pk],
            **EVIDENCE,
        )
    third = Subscription.objects.get(newsletter=reader["other"])
    assert third.state == SubscriptionState.PENDING and third.frequency == "weekly"
    assert set(third.topics.values_list("pk", flat=True)) == {markets.pk, crypto.pk}
    # Recorded as every topic change is (ids), after the request that created the row and
    # before the confirmation mail, which goes out after commit.
    events = ConsentEvent.objects.filter(subscription=third).order_by("id")
    assert list(events.values_list("kind", flat=True)) == [
        ConsentEventKind.REQUESTED,
        ConsentEventKind.PREFERENCES_CHANGED,
        ConsentEventKind.CONFIRMATION_SENT,
    ]
    change = ConsentEvent.objects.get(subscription=third, kind=ConsentEventKind.PREFERENCES_CHANGED)
    assert change.data == {
        "frequency": {"old": "daily", "new": "weekly"},
        "topics": {"old": [], "new": sorted([markets.pk, crypto.pk])},
    }
    confirmed = subscription_confirm(
        subscription_id=third.pk, confirm_round=third.confirm_round, ip=None, user_agent=""
    )
    assert confirmed.state == SubscriptionState.CONFIRMED
    assert set(confirmed.topics.values_list("pk", flat=True)) == {markets.pk, crypto.pk}


def test_leave_all_revokes_every_live_subscription_once(reader):
    key = reader["first"].address_hmac
    revoked = subscription_revoke_all(
        address_hmac=key, channel=RevocationChannel.PREFERENCES, **{"ip": "203.0.113.9"}
    )
    assert revoked == 2
    assert set(Subscription.objects.filter(address_hmac=key).values_list("state", flat=True)) == {
        SubscriptionState.UNSUBSCRIBED
    }
    assert ConsentEvent.objects.filter(address_hmac=key, kind=ConsentEventKind.REVOKED).count() == 2
    assert subscription_revoke_all(address_hmac=key, channel=RevocationChannel.PREFERENCES) == 0
    assert ConsentEvent.objects.filter(address_hmac=key, kind=ConsentEventKind.REVOKED).count() == 2
