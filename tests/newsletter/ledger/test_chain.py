"""The hash chain over consent events: appends, tampering through SQL, erasure, retention."""

import hashlib
import hmac
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import connection
from django.utils import timezone

from newsletter import chain
from newsletter.models import ChainHead, ChainPrune, ConsentEvent, ConsentEventKind
from newsletter.services import ledger as ledger_service
from newsletter.services.consent import (
    consent_retention_run,
    subscriber_erase,
    subscription_revoke,
)
from newsletter.services.ledger import chain_verify

pytestmark = pytest.mark.django_db


def verify(capsys) -> tuple[int, str]:
    """consent_verify's exit status and what it printed."""
    try:
        call_command("consent_verify")
    except CommandError as error:
        code, message = error.returncode, str(error)
    else:
        code, message = 0, ""
    out = capsys.readouterr()
    return code, out.out + out.err + message


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def ledger(signup, confirm):
    """Three subscribers: confirmed, confirmed and revoked, pending; 8 chained events."""
    first = signup("eins@example.org")
    confirm(first)
    second = signup("zwei@example.org")
    confirm(second)
    subscription_revoke(subscription_id=second.id, channel="link", ip="192.0.2.9")
    signup("drei@example.org", ip="2001:DB8:0::0001")  # spelled unlike host(inet) gives it back
    return list(ConsentEvent.objects.order_by("chain_seq"))


def test_events_form_one_gap_free_chain(ledger, capsys):
    assert [e.chain_seq for e in ledger] == list(range(1, len(ledger) + 1))
    assert ledger[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.row_hash for a, b in zip(ledger, ledger[1:], strict=False))
    head = ChainHead.objects.get()
    assert (head.seq, head.row_hash) == (ledger[-1].chain_seq, ledger[-1].row_hash)
    code, output = verify(capsys)
    assert code == 0, output
    assert f"positions 1–{len(ledger)}, {len(ledger)} events" in output


def _event(ledger, kind, nth=0):
    return [e for e in ledger if e.kind == kind][nth]


@pytest.mark.parametrize(
    ("kind", "statement", "field"),
    [
        (
            "requested",
            "UPDATE newsletter_consentevent SET ip = '10.1.2.3' WHERE id = %s",
            "personal_digest",
        ),
        (
            "confirmed",
            "UPDATE newsletter_consentevent SET user_agent = 'x' WHERE id = %s",
            "personal_digest",
        ),
        (
            "revoked",
            "UPDATE newsletter_consentevent SET note = 'forged' WHERE id = %s",
            "personal_digest",
        ),
        (
            "confirmed",
            "UPDATE newsletter_consentevent SET at = at - interval '3 days' WHERE id = %s",
            "at",
        ),
        (
            "requested",
            "UPDATE newsletter_consentevent SET text_sha256 = repeat('a', 64) WHERE id = %s",
            "text_sha256",
        ),
        (
            "revoked",
            "UPDATE newsletter_consentevent SET channel = 'admin' WHERE id = %s",
            "row_hash",
        ),
        (
            "requested",
            "UPDATE newsletter_consentevent SET redacted = true, ip = NULL WHERE id = %s",
            "redacted",
        ),
    ],
)
def test_a_changed_row_is_named(ledger, capsys, kind, statement, field):
    event = _event(ledger, kind)
    sql(statement, [event.id])
    code, output = verify(capsys)
    assert code == 1
    assert f"position {event.chain_seq} (event id {event.id}): {field}:" in output


def test_a_deleted_row_is_named(ledger, capsys):
    victim = ledger[3]
    sql("DELETE FROM newsletter_consentevent WHERE id = %s", [victim.id])
    # As run from the shell: the exit status is what a cron job or CI sees.
    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "consent_verify"])
    assert exit_.value.code == 1
    output = "".join(capsys.readouterr())
    assert f"position {victim.chain_seq} (no event): chain_seq: positions 4–4 are missing" in output
    assert f"next is event id {ledger[4].id}" in output


def test_a_deleted_last_row_is_named(ledger, capsys):
    sql("DELETE FROM newsletter_consentevent WHERE id = %s", [ledger[-1].id])
    code, output = verify(capsys)
    assert code == 1
    assert f"position {ledger[-1].chain_seq} (no event): head:" in output


def test_an_inserted_row_is_named(ledger, capsys):
    # A forged confirmation appended at the end, linked to the real head: without the row as
    # it was hashed the forger can only copy a hash.
    last = ledger[-1]
    sql(
        """INSERT INTO newsletter_consentevent (newsletter_id, address_hmac, kind, at, ip,
               user_agent, url, channel, form, text_sha256, message_id, note, chain_seq,
               prev_hash, row_hash, personal_digest, prune_digest, redacted)
           SELECT newsletter_id, address_hmac, 'confirmed', at, ip, user_agent, url, channel,
               form, '', message_id, note, chain_seq + 1, row_hash, row_hash, personal_digest,
               '', false
           FROM newsletter_consentevent WHERE id = %s""",
        [last.id],
    )
    forged = ConsentEvent.objects.get(chain_seq=last.chain_seq + 1)
    code, output = verify(capsys)
    assert code == 1
    assert f"position {forged.chain_seq} (event id {forged.id}): row_hash:" in output


def test_an_inserted_row_in_the_middle_is_named(ledger, capsys):
    sql("UPDATE newsletter_consentevent SET chain_seq = chain_seq + 100 WHERE chain_seq >= 3")
    sql("UPDATE newsletter_consentevent SET chain_seq = chain_seq - 99 WHERE chain_seq >= 103")
    sql(
        """INSERT INTO newsletter_consentevent (newsletter_id, address_hmac, kind, at, ip,
               user_agent, url, channel, form, text_sha256, message_id, note, chain_seq,
               prev_hash, row_hash, personal_digest, prune_digest, redacted)
           SELECT newsletter_id, address_hmac, kind, at, ip, user_agent, url, channel, form,
               text_sha256, message_id, note, 3, row_hash, row_hash, personal_digest, '', false
           FROM newsletter_consentevent WHERE chain_seq = 2"""
    )
    inserted = ConsentEvent.objects.get(chain_seq=3)
    code, output = verify(capsys)
    assert code == 1
    assert f"position 3 (event id {inserted.id}): row_hash:" in output


def test_swapped_positions_are_named(ledger, capsys):
    a, b = ledger[2], ledger[5]
    sql("UPDATE newsletter_consentevent SET chain_seq = -1 WHERE id = %s", [a.id])
    sql("UPDATE newsletter_consentevent SET chain_seq = %s WHERE id = %s", [a.chain_seq, b.id])
    sql("UPDATE newsletter_consentevent SET chain_seq = %s WHERE id = %s", [b.chain_seq, a.id])
    code, output = verify(capsys)
    assert code == 1
    assert f"position {a.chain_seq} (event id {b.id}): prev_hash:" in output


def test_a_changed_prune_record_is_named(ledger, signup, settings, capsys):
    stale = ConsentEvent.objects.filter(kind="requested").last().subscription
    stale.requested_at = timezone.now() - timedelta(days=30)
    stale.save(update_fields=["requested_at"])
    consent_retention_run()
    assert verify(capsys)[0] == 0
    sql("UPDATE newsletter_chainprune SET row_hash = repeat('b', 64)")
    code, output = verify(capsys)
    assert code == 1
    assert "prev_hash:" in output or "prune_digest:" in output


def test_chain_stays_intact_after_erasure(ledger, capsys):
    revoked = _event(ledger, "revoked")
    assert subscriber_erase(address_hmac=revoked.address_hmac) == 1
    redacted = ConsentEvent.objects.filter(address_hmac=revoked.address_hmac, redacted=True)
    assert redacted.count() == 3 and not redacted.exclude(ip=None).exists()
    code, output = verify(capsys)
    assert code == 0, output
    erased = ConsentEvent.objects.get(kind="erased")
    assert erased.chain_seq == ChainHead.objects.get().seq


@pytest.mark.parametrize("window", [None, 2], ids=["one-window", "windows-of-two"])
def test_chain_stays_intact_after_retention_deletes_old_events(
    ledger, signup, settings, capsys, monkeypatch, window
):
    if window:
        # Pruned links and events then meet at window borders too (see _chain_rows_windowed).
        monkeypatch.setattr(ledger_service, "CHAIN_WINDOW", window)
    revoked = _event(ledger, "revoked")
    long_ago = timezone.now() - timedelta(days=settings.NEWSLETTER_RETENTION_DAYS + 1)
    revoked.subscription.__class__.objects.filter(id=revoked.subscription_id).update(
        unsubscribed_at=long_ago
    )
    erased_key = _event(ledger, "confirmed").address_hmac
    subscriber_erase(address_hmac=erased_key)
    ConsentEvent.objects.filter(address_hmac=erased_key).update(at=long_ago)
    deleted = set(
        ConsentEvent.objects.filter(
            address_hmac__in=[erased_key, revoked.address_hmac]
        ).values_list("chain_seq", flat=True)
    )

    consent_retention_run()

    assert set(ChainPrune.objects.values_list("chain_seq", flat=True)) == deleted
    retention = ConsentEvent.objects.get(kind=ConsentEventKind.RETENTION)
    assert set(ChainPrune.objects.values_list("retention_seq", flat=True)) == {retention.chain_seq}
    signup("danach@example.org")  # the walk goes on past the retention event
    code, output = verify(capsys)
    # The `at` changed above is in the pruned rows only: their hashes are all that is left.
    assert code == 0, output
    assert f"{len(deleted)} pruned links" in output
    assert ChainHead.objects.get().seq == retention.chain_seq + 1
    streamed = list(ledger_service._chain_rows_windowed(0, None))
    assert streamed == list(ledger_service._chain_rows_portable(0, None))


def test_a_deleted_row_posing_as_pruned_is_named(ledger, capsys):
    victim = ledger[2]
    sql("DELETE FROM newsletter_consentevent WHERE id = %s", [victim.id])
    sql(
        "INSERT INTO newsletter_chainprune (chain_seq, row_hash, retention_seq) "
        "VALUES (%s, %s, %s)",
        [victim.chain_seq, victim.row_hash, 10_000],
    )
    code, output = verify(capsys)
    assert code == 1
    assert f"position {victim.chain_seq} (no event): prune record: names retention event" in output


def test_verify_from_a_position_links_to_its_hash(ledger):
    report = chain_verify(after_seq=4, prev_hash=ledger[3].row_hash)
    assert report.ok and report.events == len(ledger) - 4
    wrong = chain_verify(after_seq=4, prev_hash="f" * 64)
    assert [b.field for b in wrong.breaks] == ["prev_hash"]


def test_migration_chains_existing_events_in_id_order(ledger):
    chain_existing = import_module("newsletter.migrations.0009_consent_hash_chain").chain_existing
    sql(
        "UPDATE newsletter_consentevent SET chain_seq = -id, prev_hash = '', row_hash = '', "
        "personal_digest = ''"
    )
    ChainHead.objects.all().delete()
    chain_existing(apps, None)
    rows = list(ConsentEvent.objects.order_by("id").values_list("chain_seq", "row_hash"))
    assert [seq for seq, _hash in rows] == list(range(1, len(ledger) + 1))
    assert rows == [(e.chain_seq, e.row_hash) for e in ledger]
    assert chain_verify().ok


def test_text_that_copy_escapes_is_hashed_as_written(signup, capsys):
    subscription = signup("sonder@example.org", user_agent="Agent\\2.0 (tab\there)")
    subscription_revoke(
        subscription_id=subscription.id, channel="admin", note="Zeile 1\nZeile 2 \\ „Zitat“"
    )
    assert verify(capsys)[0] == 0
    event = ConsentEvent.objects.get(kind="revoked")
    sql("UPDATE newsletter_consentevent SET note = 'Zeile 1' WHERE id = %s", [event.id])
    code, output = verify(capsys)
    assert code == 1 and f"(event id {event.id}): personal_digest" in output


@pytest.mark.parametrize("key", [b"", b"k", b"k" * 64, b"k" * 65, bytes(range(200))])
@pytest.mark.parametrize("message", [b"", b"1:x", "ä„“".encode() * 40])
def test_the_verifiers_hashes_equal_the_standard_ones(key, message):
    assert chain.hmac_sha256_hex(key)(message) == hmac.digest(key, message, "sha256").hex()
    assert chain.sha256_hex()(message) == hashlib.sha256(message).hexdigest()


def test_an_archived_head_no_longer_matching_is_named(ledger, capsys):
    head = ledger[4]
    call_command("consent_verify", anchor=[f"{head.chain_seq}:{head.row_hash}"])
    # Someone with the database and the key changes a time and rehashes the whole chain: the
    # chain is consistent again, only the head kept outside the database shows it.
    sql("UPDATE newsletter_consentevent SET at = at - interval '1 day' WHERE id = %s", [head.id])
    ChainHead.objects.all().delete()
    import_module("newsletter.migrations.0009_consent_hash_chain").chain_existing(apps, None)
    call_command("consent_verify")
    with pytest.raises(CommandError):
        call_command("consent_verify", anchor=[f"{head.chain_seq}:{head.row_hash}"])
    assert f"position {head.chain_seq} (event id {head.id}): anchor:" in capsys.readouterr().err
    with pytest.raises(CommandError, match="SEQ:HASH"):
        call_command("consent_verify", anchor=["5:nothex"])


def test_the_portable_walk_reads_the_same_links_as_copy(ledger):
    """The local run's SQLite has no COPY: its walk, built from the ORM, must hand the
    verifier exactly the rows PostgreSQL streams, or a local verify would report breaks."""
    streamed = list(ledger_service._chain_rows_windowed(0, None))
    portable = list(ledger_service._chain_rows_portable(0, None))
    assert portable == streamed
    assert len(portable) == len(ledger)


def test_personal_data_written_back_into_a_redacted_row_is_named(ledger, capsys):
    revoked = _event(ledger, "revoked")
    assert subscriber_erase(address_hmac=revoked.address_hmac) == 1
    requested = ConsentEvent.objects.get(address_hmac=revoked.address_hmac, kind="requested")
    assert (requested.ip, requested.user_agent, requested.url, requested.note) == (None, "", "", "")
    # The row still says redacted, and its erasure is in the chain: only its content lies.
    sql("UPDATE newsletter_consentevent SET ip = '203.0.113.7' WHERE id = %s", [requested.id])
    code, output = verify(capsys)
    assert code == 1
    assert f"position {requested.chain_seq} (event id {requested.id}): redacted:" in output
    assert "still holds an ip, user agent, page or note" in output


@pytest.mark.parametrize(
    "statement",
    [
        """UPDATE newsletter_consentevent SET data = '{"language": "en"}' WHERE id = %s""",
        "UPDATE newsletter_consentevent SET data = '{}' WHERE id = %s",
        "UPDATE newsletter_consentevent SET actor_id = (SELECT max(id) FROM auth_user) "
        "WHERE id = %s",
    ],
)
def test_a_changed_actor_or_structured_change_is_named(
    ledger, capsys, django_user_model, statement
):
    django_user_model.objects.create_user("jemand")
    requested = _event(ledger, "requested")
    assert requested.data == {"language": "de"}  # chained with the extension of chain.py
    sql(statement, [requested.id])
    code, output = verify(capsys)
    assert code == 1
    assert f"position {requested.chain_seq} (event id {requested.id}): row_hash:" in output


def test_rows_without_actor_or_data_hash_as_before_these_fields_existed():
    fields = {
        "chain_seq": 7,
        "kind": "confirmed",
        "at": timezone.now(),
        "newsletter_id": 1,
        "address_hmac": "a" * 64,
        "channel": "",
        "form": "",
        "consent_text_id": None,
        "text_sha256": "",
        "message_id": "",
        "prune_digest": "",
    }
    before = "".join(
        f"{len(str(v))}:{v}" if v is not None else "0:"
        for v in (
            *list(fields.values())[:2],
            chain.at_text(fields["at"]),
            *list(fields.values())[3:],
        )
    )
    assert chain.canonical_text(**fields) == before
    assert chain.canonical_text(**fields, actor_id=None, data={}) == before
    assert chain.canonical_text(**fields, actor_id=3, data={}) == before + "1:32:{}"


def test_an_admin_erasure_is_a_new_event_naming_its_actor(ledger, capsys, django_user_model):
    chefin = django_user_model.objects.create_user("chefin", is_staff=True)
    revoked = _event(ledger, "revoked")
    kept = {
        e.id: (e.kind, e.at, e.row_hash)
        for e in ConsentEvent.objects.filter(address_hmac=revoked.address_hmac)
    }
    assert subscriber_erase(address_hmac=revoked.address_hmac, channel="admin", actor=chefin) == 1
    erased = ConsentEvent.objects.get(address_hmac=revoked.address_hmac, kind="erased")
    assert erased.actor == chefin and erased.id not in kept
    # The old rows keep what the chain covers; only their personal fields went blank.
    after = ConsentEvent.objects.filter(id__in=kept)
    assert {e.id: (e.kind, e.at, e.row_hash) for e in after} == kept
    code, output = verify(capsys)
    assert code == 0, output
