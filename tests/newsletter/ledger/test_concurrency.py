"""Concurrent writers on separate connections: the chain never forks and has no gaps."""

import threading
import time

import pytest
from django.db import connection

from newsletter.models import ConsentEvent, Newsletter
from newsletter.services.consent import (
    consent_text_default_publish,
    subscription_confirm,
    subscription_request,
)
from newsletter.services.ledger import chain_verify
from tests.newsletter.factories import NewsletterFactory

WRITERS = 6
SIGNUPS_EACH = 8


def _writer(newsletter_id: int, writer: int, errors: list[BaseException], start) -> None:
    try:
        newsletter = Newsletter.objects.get(id=newsletter_id)
        start.wait(timeout=30)
        for n in range(SIGNUPS_EACH):
            subscription = subscription_request(
                address=f"w{writer}-{n}@example.org",
                newsletter=newsletter,
                ip=f"192.0.2.{writer}",
                user_agent=f"writer {writer}",
                url="http://testserver/",
                form="signup_box",
                language="de",
            )
            subscription_confirm(
                subscription_id=subscription.id,
                confirm_round=subscription.confirm_round,
                ip=f"198.51.100.{writer}",
                user_agent="Mailreader",
            )
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_and_confirmations_keep_one_gap_free_chain(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    newsletter = NewsletterFactory(welcome_mail=False)
    consent_text_default_publish(newsletter=newsletter)
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)
    threads = [
        threading.Thread(target=_writer, args=(newsletter.id, writer, errors, start))
        for writer in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert errors == []
    seqs = list(ConsentEvent.objects.order_by("chain_seq").values_list("chain_seq", flat=True))
    # requested, confirmation_sent (the eager mail task), confirmed per signup
    assert len(seqs) >= WRITERS * SIGNUPS_EACH * 2
    assert seqs == list(range(1, len(seqs) + 1))
    report = chain_verify()
    assert report.ok, report.breaks
    assert report.events == len(seqs)
    # The writers really interleaved: the chain is not one writer's block after another's.
    writers_in_order = [
        ua
        for ua in ConsentEvent.objects.order_by("chain_seq").values_list("user_agent", flat=True)
        if ua.startswith("writer")
    ]
    switches = sum(
        1 for a, b in zip(writers_in_order, writers_in_order[1:], strict=False) if a != b
    )
    assert switches > WRITERS


@pytest.mark.django_db(transaction=True)
def test_verify_while_signups_commit_sees_no_break(settings):
    """The daily check runs on a live site: links appended during the walk are no break."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    newsletter = NewsletterFactory(welcome_mail=False)
    consent_text_default_publish(newsletter=newsletter)
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_signing_up() -> None:
        try:
            n = 0
            while not stop.is_set():
                n += 1
                subscription_request(
                    address=f"live-{n}@example.org",
                    newsletter=Newsletter.objects.get(id=newsletter.id),
                    ip="192.0.2.1",
                    user_agent="live",
                    url="http://testserver/",
                    form="signup_box",
                    language="de",
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    writer = threading.Thread(target=keep_signing_up)
    writer.start()
    try:
        reports = []
        deadline = time.monotonic() + 60
        while len(reports) < 30 and time.monotonic() < deadline:
            reports.append(chain_verify())
    finally:
        stop.set()
        writer.join(timeout=60)
    assert errors == []
    assert [r.breaks for r in reports if not r.ok] == []
    assert reports[-1].events > reports[0].events  # the chain really grew during the walks
