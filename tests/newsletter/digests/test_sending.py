"""Digest creation, fan-out, claims and one send, in the test process against the fake."""

import re

import pytest
from django.utils import timezone

from newsletter.models import (
    Batch,
    BatchState,
    ConsentEvent,
    Delivery,
    DeliveryState,
    Digest,
    DigestState,
    Frequency,
    Subscription,
    SubscriptionState,
)
from newsletter.services.consent import subscription_revoke
from newsletter.services.digest_sending import (
    batch_claim,
    batch_send,
    digest_drain,
    digest_finish_check,
)
from newsletter.services.digests import (
    digest_create,
    digest_fan_out,
    digest_start_now,
    digest_tick,
)
from tests.articles.factories import ArticleFactory
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

from .conftest import claimed_readers, claims_all, seed_subscribers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def steps_by_hand(monkeypatch):
    """These tests drive fan-out and drains themselves: wake-ups are recorded, not run."""
    from newsletter.services import digests

    woken: list[tuple[str, int]] = []
    monkeypatch.setattr(
        digests, "_enqueue_drains", lambda pk, count=None: woken.append(("drain", pk))
    )
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: woken.append(("fan_out", pk)))
    return woken


def test_tick_creates_one_digest_per_slot(newsletter_with_articles, steps_by_hand):
    first = digest_tick()
    second = digest_tick()
    mine = [r for r in first if r.digest.newsletter_id == newsletter_with_articles.pk]
    assert len(mine) == 1 and mine[0].created
    again = [r for r in second if r.digest.newsletter_id == newsletter_with_articles.pk]
    assert [r.created for r in again] == [False]
    assert Digest.objects.filter(newsletter=newsletter_with_articles).count() == 1
    assert steps_by_hand == [("fan_out", mine[0].digest.pk)]


def test_slot_without_new_articles_is_recorded_as_skipped():
    newsletter = NewsletterFactory(starts_at=timezone.now() - timezone.timedelta(days=3))
    result = digest_start_now(newsletter=newsletter)
    assert result.created
    assert result.digest.state == DigestState.SKIPPED
    assert result.digest.article_ids == []
    assert not Delivery.objects.filter(digest=result.digest).exists()


def test_second_digest_covers_only_articles_since_the_first(newsletter_with_articles):
    now = timezone.now()
    first = digest_create(
        newsletter=newsletter_with_articles, frequency=Frequency.DAILY, slot=now
    ).digest
    assert first.period_start == newsletter_with_articles.starts_at
    assert len(first.article_ids) == 2
    later = ArticleFactory(published_at=now + timezone.timedelta(minutes=5))
    second = digest_create(
        newsletter=newsletter_with_articles,
        frequency=Frequency.DAILY,
        slot=now + timezone.timedelta(minutes=10),
    ).digest
    assert second.period_start == now
    assert second.article_ids == [later.pk]


def _daily_digest(newsletter, **fields) -> Digest:
    return Digest.objects.create(
        newsletter=newsletter,
        frequency=Frequency.DAILY,
        slot=timezone.now(),
        state=DigestState.FANNING_OUT,
        period_start=newsletter.starts_at,
        period_end=timezone.now(),
        **{"article_ids": [1], **fields},
    )


def test_start_counts_the_audience_and_claims_write_each_reader_once(
    newsletter_with_articles, settings
):
    settings.NEWSLETTER_BATCH_SIZE = 25
    seed_subscribers(newsletter_with_articles, 120, language_every=3)
    SubscriptionFactory(
        newsletter=newsletter_with_articles, state=SubscriptionState.PENDING, confirmed_at=None
    )
    SubscriptionFactory(newsletter=newsletter_with_articles, state=SubscriptionState.UNSUBSCRIBED)
    digest = _daily_digest(newsletter_with_articles)
    assert digest_fan_out(digest_id=digest.pk) == 120
    # A repeated start (e.g. a redelivered message) changes nothing.
    assert digest_fan_out(digest_id=digest.pk) == 0
    digest.refresh_from_db()
    assert digest.state == DigestState.SENDING and digest.recipients == 120
    # Nothing is written per reader at the start: each claim writes its own readers.
    assert not Delivery.objects.filter(digest=digest).exists()
    batches = claims_all(digest.pk)
    rows = Delivery.objects.filter(digest=digest)
    assert rows.count() == 120 == sum(b.size for b in batches)
    assert rows.values("subscription").distinct().count() == 120
    for batch in batches:
        in_batch = rows.filter(pk__gte=batch.first_delivery_id, pk__lte=batch.last_delivery_id)
        assert in_batch.count() == batch.size <= 25
        assert set(in_batch.values_list("language", flat=True)) == {batch.language}
    assert batch_claim(digest_id=digest.pk) is None


def test_the_audience_is_fixed_when_sending_starts(newsletter_with_articles, settings):
    """Readers who confirm or sign up after the start are not added; readers who leave
    before their turn are never written down; a reader's turn comes once."""
    settings.NEWSLETTER_BATCH_SIZE = 10
    subs = seed_subscribers(newsletter_with_articles, 40)
    waiting = SubscriptionFactory(
        newsletter=newsletter_with_articles, state=SubscriptionState.PENDING, confirmed_at=None
    )
    digest = _daily_digest(newsletter_with_articles)
    digest_fan_out(digest_id=digest.pk)
    first = batch_claim(digest_id=digest.pk)
    Subscription.objects.filter(pk=waiting.pk).update(
        state=SubscriptionState.CONFIRMED, confirmed_at=timezone.now()
    )
    late = SubscriptionFactory(newsletter=newsletter_with_articles)
    leaving = subs[-1]
    subscription_revoke(subscription_id=leaving.pk, channel="link")
    claims_all(digest.pk)
    written = set(Delivery.objects.filter(digest=digest).values_list("subscription", flat=True))
    assert written == {s.pk for s in subs[:-1]}
    assert first.size == 10 and late.pk not in written and waiting.pk not in written
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.SENDING)
    Batch.objects.filter(digest=digest).update(state=BatchState.SENT)
    assert digest_finish_check(digest_id=digest.pk)
    digest.refresh_from_db()
    # The report's recipients are the readers actually written down.
    assert digest.recipients == 39


def _fanned_out(newsletter, n, **kwargs) -> Digest:
    seed_subscribers(newsletter, n, **kwargs)
    digest = _daily_digest(newsletter, article_ids=[], subject="Betreff")
    digest_fan_out(digest_id=digest.pk)
    digest.refresh_from_db()
    return digest


def test_claims_are_disjoint_and_cut_at_language_changes(newsletter_with_articles, settings):
    settings.NEWSLETTER_BATCH_SIZE = 30
    digest = _fanned_out(newsletter_with_articles, 100, language_every=4)
    batches = []
    while (batch := batch_claim(digest_id=digest.pk)) is not None:
        batches.append(batch)
    covered = [
        pk
        for b in batches
        for pk in Delivery.objects.filter(
            digest=digest, pk__gte=b.first_delivery_id, pk__lte=b.last_delivery_id
        ).values_list("pk", flat=True)
    ]
    assert sorted(covered) == list(
        Delivery.objects.filter(digest=digest).order_by("pk").values_list("pk", flat=True)
    )
    assert len(covered) == len(set(covered)) == 100
    for b in batches:
        languages = set(
            Delivery.objects.filter(
                digest=digest, pk__gte=b.first_delivery_id, pk__lte=b.last_delivery_id
            ).values_list("language", flat=True)
        )
        assert languages == {b.language}
        assert b.size <= 30
    assert batch_claim(digest_id=digest.pk) is None


def test_paused_digest_is_not_claimed(newsletter_with_articles):
    digest = _fanned_out(newsletter_with_articles, 10)
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.PAUSED)
    assert batch_claim(digest_id=digest.pk) is None


def test_batch_goes_out_in_one_call_with_personal_headers(
    newsletter_with_articles, mailgun_in_process
):
    fake = mailgun_in_process
    newsletter_with_articles.subject_template = "{newsletter}:\r\n{first_title}\nBcc: x@evil.org"
    newsletter_with_articles.save()
    ArticleFactory(title="Titel mit\r\nUmbruch")
    digest = digest_create(
        newsletter=newsletter_with_articles, frequency=Frequency.DAILY, slot=timezone.now()
    ).digest
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.FANNING_OUT)
    subs = seed_subscribers(newsletter_with_articles, 60, language_every=3)
    digest_fan_out(digest_id=digest.pk)
    result = digest_drain(digest_id=digest.pk)
    assert result.done
    assert fake.stats.accepted_calls == Batch.objects.filter(digest=digest).count() >= 2
    counts = fake.accepted_addresses(digest.pk)
    assert counts == {s.email: 1 for s in subs}, fake.received[:1]
    by_email = {r.email: r for r in fake.received if r.digest_id == str(digest.pk)}
    sample = by_email[subs[0].email]
    assert "\r" not in sample.subject and "\n" not in sample.subject
    assert sample.subject.startswith("Meinung am Morgen:")
    unsubscribe = [k for k in sample.headers if k.lower() == "list-unsubscribe"]
    assert len(unsubscribe) == 1
    # The page opens in the language the mail was written in (German for this reader).
    assert re.fullmatch(
        r"<http://testserver/n/abmelden/[^>/?]+/\?lang=de>", sample.headers[unsubscribe[0]]
    )
    assert sample.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Id" in sample.headers
    message_ids = {r.headers["Message-Id"] for r in by_email.values()}
    assert len(message_ids) == len(subs)
    # The personal link in the body is the same one as in the header.
    link = sample.headers[unsubscribe[0]].strip("<>")
    assert link in sample.text and link in sample.html
    assert "%recipient" not in sample.text + sample.html
    assert "Zinsen steigen" in sample.text and "Meinungsäußerung" in sample.text
    english = by_email[subs[2].email]
    assert "opinion of our editors" in english.text
    # Dates as the site shows them, in the reader's language.
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d Uhr", sample.text)
    assert "Uhr" not in english.text
    assert "Verlag Beispiel GmbH" in sample.text
    digest.refresh_from_db()
    assert digest.state == DigestState.DONE
    assert sum(Batch.objects.filter(digest=digest).values_list("sent_count", flat=True)) == 60


def test_revoked_before_send_is_skipped_not_mailed(newsletter_with_articles, mailgun_in_process):
    fake = mailgun_in_process
    digest = _fanned_out(newsletter_with_articles, 20)
    claimed = batch_claim(digest_id=digest.pk)
    # Claimed, not yet sent: the re-check at send time leaves the reader out.
    gone = Delivery.objects.filter(digest=digest).order_by("pk")[5]
    subscription_revoke(subscription_id=gone.subscription_id, channel="link")
    batch_send(batch_id=claimed.pk, token=claimed.attempts)
    digest_drain(digest_id=digest.pk)
    gone.refresh_from_db()
    assert gone.state == DeliveryState.SKIPPED
    assert gone.subscription.email not in fake.accepted_addresses(digest.pk)
    assert len(fake.accepted_addresses(digest.pk)) == 19


def test_refused_addresses_fail_and_are_suppressed_the_rest_goes_out(
    newsletter_with_articles, mailgun_in_process
):
    fake = mailgun_in_process
    digest = _fanned_out(newsletter_with_articles, 30)
    fake.refuse = {"r7@example.org"}
    digest_drain(digest_id=digest.pk)
    refused = Delivery.objects.get(digest=digest, subscription__email="r7@example.org")
    assert refused.state == DeliveryState.FAILED
    assert refused.subscription.state == SubscriptionState.SUPPRESSED
    assert ConsentEvent.objects.filter(
        subscription=refused.subscription, kind="suppressed"
    ).exists()
    counts = fake.accepted_addresses(digest.pk)
    assert len(counts) == 29 and set(counts.values()) == {1}


def test_transient_failure_is_retried_as_the_same_range(
    newsletter_with_articles, mailgun_in_process, settings
):
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 0
    fake = mailgun_in_process
    digest = _fanned_out(newsletter_with_articles, 10)
    fake.fail_every = 1
    batch = batch_claim(digest_id=digest.pk)
    assert batch_send(batch_id=batch.pk, token=batch.attempts).state == BatchState.RETRY
    fake.fail_every = 0
    again = batch_claim(digest_id=digest.pk)
    assert again.pk == batch.pk and again.attempts == 2
    assert batch_send(batch_id=again.pk, token=again.attempts).state == BatchState.SENT
    assert fake.accepted_addresses(digest.pk) == {f"r{i}@example.org": 1 for i in range(1, 11)}


def test_dropped_answer_is_uncertain_until_a_webhook_proves_the_send(
    newsletter_with_articles, mailgun_in_process
):
    fake = mailgun_in_process
    fake.webhook_mode = "first"
    digest = _fanned_out(newsletter_with_articles, 10)
    fake.drop_every = 1
    batch = batch_claim(digest_id=digest.pk)
    assert batch_send(batch_id=batch.pk, token=batch.attempts).state == BatchState.UNCERTAIN
    fake.drop_every = 0
    fake.wait_webhooks()
    result = digest_drain(digest_id=digest.pk)
    assert result.done
    batch.refresh_from_db()
    assert batch.state == BatchState.SENT and batch.sent_count == 10
    assert fake.duplicates == 0


def test_batch_signers_write_djangos_tokens_bit_for_bit(monkeypatch, settings):
    """The batch signers derive their key once and encode the clock once a second; every token
    is still the one Django's signing writes, for the values links carry and for any other."""
    import time

    from django.core import signing

    from newsletter.tokens import (
        DELIVERY_REF,
        PREFERENCES,
        UNSUBSCRIBE,
        BatchTimestampSigner,
        LinkSigners,
        delivery_ref_signer,
        make_delivery_ref,
        read_delivery_ref,
    )

    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.5)
    signers = LinkSigners()
    for value in (1, 4711, 2**40):
        assert signers.unsubscribe.sign_object(value, compress=False) == signing.dumps(
            value, salt=UNSUBSCRIBE, compress=False
        )
    for value in ("12." + "ab" * 32, "ä", 'a"b', "x\\y", "", 1.5, True, None, [1, "x"]):
        assert signers.preferences.sign_object(value, compress=False) == signing.dumps(
            value, salt=PREFERENCES, compress=False
        )
    ref = delivery_ref_signer()
    assert make_delivery_ref(99, ref) == signing.Signer(salt=DELIVERY_REF).sign("99")
    assert read_delivery_ref(make_delivery_ref(99, ref)) == 99
    # Verifying stays Django's own, old keys included.
    old = signing.dumps(7, key="an-old-secret-key", salt=UNSUBSCRIBE, compress=False)
    settings.SECRET_KEY_FALLBACKS = ["an-old-secret-key"]
    assert BatchTimestampSigner(salt=UNSUBSCRIBE).unsign_object(old) == 7


def test_batch_signer_tokens_are_ordinary_tokens():
    from django.core import signing

    from newsletter.tokens import (
        UNSUBSCRIBE,
        LinkSigners,
        make_preferences_token,
        make_unsubscribe_token,
        read_preferences_token,
        read_unsubscribe_token,
    )

    signers = LinkSigners()
    token = make_unsubscribe_token(4711, signers)
    assert read_unsubscribe_token(token) == 4711
    assert read_preferences_token(make_preferences_token(12, "ab" * 32, signers)) == (
        12,
        "ab" * 32,
    )
    # Same bytes as Django's own signing within the same second.
    if token.split(":")[1] == signing.b62_encode(int(__import__("time").time())):
        assert token == signing.dumps(4711, salt=UNSUBSCRIBE, compress=False)
    with pytest.raises(Exception, match="ignature"):
        read_unsubscribe_token(signers.preferences.sign_object(4711, compress=False))


def test_a_reader_who_changes_language_mid_send_is_still_claimed_once(
    newsletter_with_articles, settings
):
    """One cursor for all languages: a claim takes the next readers whatever their language
    and makes one batch per language, the second queued for the next claim. A reader who
    switches language before their turn gets the mailing once, in the new language; one who
    switches after it keeps the one batch they were in."""
    settings.NEWSLETTER_BATCH_SIZE = 10
    digest = _fanned_out(newsletter_with_articles, 40, language_every=2)
    subs = list(Subscription.objects.filter(newsletter=newsletter_with_articles).order_by("id"))
    first = batch_claim(digest_id=digest.pk)
    # Readers 1-10, half of them English: a German batch for this claim, an English one queued.
    assert (first.language, first.size, first.state) == ("de", 5, BatchState.SENDING)
    queued = Batch.objects.get(digest=digest, state=BatchState.RETRY)
    assert (queued.language, queued.size, queued.attempts) == ("en", 5, 0)
    assert batch_claim(digest_id=digest.pk).pk == queued.pk  # taken at once, attempt 1
    ahead, behind = subs[15], subs[2]
    assert ahead.language == "en" and behind.language == "de"
    Subscription.objects.filter(pk=ahead.pk).update(language="de")
    Subscription.objects.filter(pk=behind.pk).update(language="en")
    claims_all(digest.pk)
    covered = claimed_readers(digest)
    assert covered == {s.pk: 1 for s in subs}
    languages = dict(Delivery.objects.filter(digest=digest).values_list("subscription", "language"))
    assert (languages[ahead.pk], languages[behind.pk]) == ("de", "de")
    for batch in Batch.objects.filter(digest=digest):
        rows = Delivery.objects.filter(
            digest=digest, pk__gte=batch.first_delivery_id, pk__lte=batch.last_delivery_id
        )
        assert set(rows.values_list("language", flat=True)) == {batch.language}


def test_portable_claim_never_widens_a_batch_over_rows_already_claimed(
    newsletter_with_articles, settings, monkeypatch
):
    """The local run's path (no INSERT … RETURNING in WITH): two batches per claim, one per
    language, each an exact range; a reader who switches language after their turn is not
    taken again, and no batch's range takes in another's rows."""
    from newsletter.services.digest_sending import claim

    monkeypatch.setattr(claim, "_deliveries_write_postgresql", claim._deliveries_write_portable)
    settings.NEWSLETTER_BATCH_SIZE = 10
    digest = _fanned_out(newsletter_with_articles, 40, language_every=2)
    subs = list(Subscription.objects.filter(newsletter=newsletter_with_articles).order_by("id"))
    batch_claim(digest_id=digest.pk)
    Subscription.objects.filter(pk=subs[2].pk).update(language="en")
    claims_all(digest.pk)
    covered = claimed_readers(digest)
    assert covered == {s.pk: 1 for s in subs}
    assert sum(b.size for b in Batch.objects.filter(digest=digest)) == 40
