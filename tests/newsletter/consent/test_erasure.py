"""Erasure leaves the address nowhere: a dump of the whole database does not contain it."""

import subprocess

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.utils import timezone

from newsletter.addresses import address_hmac
from newsletter.models import (
    Batch,
    ConsentEvent,
    Delivery,
    Digest,
    ProviderEvent,
    RevocationChannel,
    SignupRequest,
    Subscription,
    Suppression,
)
from newsletter.services.consent import (
    consent_text_default_publish,
    subscriber_erase,
    subscription_revoke,
    subscription_suppress,
)
from tests.newsletter.consent.test_views import confirm_path, post_signup
from tests.newsletter.factories import NewsletterFactory

# As typed: capitals in the local part are kept, the domain is lower-cased when stored.
TYPED = "Erika.Loeschbar@Beispiel-Verlag.Example"
STORED = "Erika.Loeschbar@beispiel-verlag.example"


def pg_dump() -> str:
    """The whole test database as pg_dump writes it (schema, data, sequences)."""
    result = subprocess.run(
        [
            "pg_dump",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "--no-password",
            connection.settings_dict["NAME"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@pytest.fixture
def two_newsletters(settings):
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0
    first = NewsletterFactory(slug="erst", name="Erster")
    second = NewsletterFactory(slug="zweit", name="Zweiter")
    for newsletter in (first, second):
        consent_text_default_publish(newsletter=newsletter)
    return first, second


def address_seen_everywhere(first, second) -> Subscription:
    """Sign up to two newsletters through the page, confirm, get a digest delivery with a
    provider bounce that quotes the address, an admin revocation note, a suppression, an
    admin log entry: every place the address has been seen to end up."""
    for newsletter in (first, second):
        assert post_signup(Client(), newsletter, TYPED).status_code == 303
    subs = list(Subscription.objects.filter(address_hmac=address_hmac(TYPED)).order_by("id"))
    assert len(subs) == 2
    for sub in subs:
        assert Client().post(confirm_path(sub)).status_code == 200
    sub_a, sub_b = subs

    subscription_revoke(
        subscription_id=sub_b.id,
        channel=RevocationChannel.ADMIN,
        note=f"Leserin rief an: bitte {TYPED.upper()} abmelden",
    )
    now = timezone.now()
    digest = Digest.objects.create(
        newsletter=first,
        frequency="daily",
        slot=now,
        state="sending",
        period_start=now,
        period_end=now,
    )
    delivery = Delivery.objects.create(
        digest=digest, subscription=sub_a, state="failed", reason=f"refused {STORED}"
    )
    Batch.objects.create(
        digest=digest,
        first_delivery_id=delivery.id,
        last_delivery_id=delivery.id,
        size=1,
        state="sent",
        error=f"400 'to' parameter is not a valid address: {STORED.lower()}",
    )
    detail = f"550 5.1.1 <{STORED.upper()}>: Recipient address rejected"
    ProviderEvent.objects.create(
        esp="mailgun",
        event_id="ev-1",
        event_type="bounced",
        recipient=STORED.lower(),
        delivery=delivery,
        detail=detail,
    )
    # An event the provider sent without our metadata: found by its recipient or its text.
    ProviderEvent.objects.create(
        esp="mailgun", event_id="ev-2", event_type="complained", recipient=STORED, detail=""
    )
    ProviderEvent.objects.create(
        esp="mailgun", event_id="ev-3", event_type="failed", recipient="", detail=detail
    )
    subscription_suppress(
        subscription_id=sub_a.id, reason="hard_bounce", channel="webhook", note=detail
    )
    # A signup of the address whose task has not run yet.
    SignupRequest.objects.create(
        newsletter=second,
        email=STORED,
        address_hmac=address_hmac(STORED),
        language="de",
        created_at=now,
    )
    admin = User.objects.create_superuser("chefin", "chefin@example.org", "x")
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(Subscription),
        object_id=str(sub_a.id),
        object_repr=str(sub_a),
        action_flag=CHANGE,
        change_message=f"Adresse {STORED} geprüft",
    )
    return sub_a


@pytest.mark.django_db(transaction=True)
def test_after_erasure_a_dump_of_the_whole_database_holds_the_address_nowhere(two_newsletters):
    sub = address_seen_everywhere(*two_newsletters)
    before = pg_dump().lower()
    assert STORED.lower() in before  # the dump is of this database, and the address was there

    assert subscriber_erase(address_hmac=sub.address_hmac, note=f"Wunsch von {TYPED}") == 2

    dump = pg_dump()
    assert STORED.lower() not in dump.lower()
    assert "loeschbar" not in dump.lower()
    # What stays is keyed by the hash: the suppression, the evidence, the provider events.
    key = address_hmac(TYPED)
    assert Suppression.objects.filter(address_hmac=key).exists()
    assert ConsentEvent.objects.filter(address_hmac=key, kind="erased").count() == 2
    assert ConsentEvent.objects.filter(address_hmac=key, kind="revoked").exists()
    assert set(ProviderEvent.objects.values_list("recipient", flat=True)) == {key}
    assert "[gelöscht]" in ProviderEvent.objects.get(event_id="ev-3").detail
    assert not SignupRequest.objects.exists()
