"""The daily check: verify from the last checkpoint, record the head, mail it to the archive."""

import logging

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from newsletter.models import ChainCheckpoint, ChainHead, ConsentEvent
from newsletter.tasks.ledger import chain_checkpoint_task

pytestmark = pytest.mark.django_db


def test_beat_runs_the_check_daily():
    entry = django_settings.CELERY_BEAT_SCHEDULE["newsletter-consent-chain-checkpoint"]
    assert entry == {"task": "newsletter.tasks.ledger.chain_checkpoint_task", "schedule": 86400.0}


def test_checkpoint_records_and_mails_the_head_then_continues_from_it(
    signup, confirm, settings, django_capture_on_commit_callbacks, caplog
):
    settings.NEWSLETTER_EVIDENCE_ARCHIVE_EMAIL = "beweisarchiv@example.org"
    confirm(signup("eins@example.org"))
    caplog.set_level(logging.INFO, logger="newsletter.services.ledger")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert chain_checkpoint_task.delay().get() == 2

    head = ChainHead.objects.get()
    first = ChainCheckpoint.objects.get()
    assert (first.seq, first.row_hash, first.verified_from_seq, first.events_verified) == (
        2,
        head.row_hash,
        0,
        2,
    )
    assert first.event_id == ConsentEvent.objects.get(chain_seq=2).id
    assert first.mailed_to == "beweisarchiv@example.org"
    [message] = mail.outbox
    assert message.to == ["beweisarchiv@example.org"]
    assert "Position 2" in message.subject
    assert f"--anchor 2:{head.row_hash}" in message.body
    assert f"position 2 hash {head.row_hash}" in caplog.text

    confirm(signup("zwei@example.org"))
    with django_capture_on_commit_callbacks(execute=True):
        chain_checkpoint_task.delay()
    second = ChainCheckpoint.objects.order_by("-id").first()
    assert (second.seq, second.verified_from_seq, second.events_verified) == (4, 2, 2)
    assert len(mail.outbox) == 2


def test_a_break_after_the_checkpoint_records_nothing_and_logs_it(
    signup, confirm, settings, caplog
):
    settings.NEWSLETTER_EVIDENCE_ARCHIVE_EMAIL = ""
    confirm(signup("eins@example.org"))
    chain_checkpoint_task.delay()
    later = signup("zwei@example.org")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE newsletter_consentevent SET ip = '10.0.0.1' WHERE subscription_id = %s",
            [later.id],
        )
    caplog.set_level(logging.ERROR, logger="newsletter.services.ledger")

    assert chain_checkpoint_task.delay().get() is None

    assert ChainCheckpoint.objects.count() == 1
    assert "consent chain broken: chain broken at position 3" in caplog.text
    assert mail.outbox == [] or all("Position" not in m.subject for m in mail.outbox)


def test_newsletter_managers_see_the_checkpoints_read_only(client, signup):
    user = User.objects.create_user("verwaltung", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Newsletter-Verwaltung"))
    client.force_login(user)
    signup("eins@example.org")
    checkpoint = chain_checkpoint_task.delay().get()
    page = client.get(reverse("admin:newsletter_chaincheckpoint_changelist"))
    assert page.status_code == 200
    assert ChainHead.objects.get().row_hash in page.content.decode()
    assert checkpoint == 1
    assert client.get(reverse("admin:newsletter_chaincheckpoint_add")).status_code == 403


def test_verify_from_checkpoint_walks_only_what_is_new(signup, confirm, capsys):
    confirm(signup("eins@example.org"))
    chain_checkpoint_task.delay()
    signup("zwei@example.org")
    call_command("consent_verify", from_checkpoint=True)
    assert "positions 3–3, 1 events" in capsys.readouterr().out
    # A change before the checkpoint is the full walk's (and the archived head's) business.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE newsletter_consentevent SET ip = '10.0.0.2' WHERE chain_seq = 1")
    call_command("consent_verify", from_checkpoint=True)
    with pytest.raises(CommandError):
        call_command("consent_verify")
