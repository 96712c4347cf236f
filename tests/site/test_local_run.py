"""The embedded default of `make run`: SQLite under VAR_DIR, tasks in-process, mail as files.

Runs the real commands in a clean environment (none of the suite's PostgreSQL/Redis variables),
so the local path of every flow — signup, confirmation, a digest — is proven on SQLite too.
"""

import email
import email.policy
from pathlib import Path

from tests.site.local_run import local_env, manage

SUBSCRIBE_AND_CONFIRM = """
from newsletter.models import Newsletter, Subscription
from newsletter.services.consent import subscription_confirm, subscription_request
newsletter = Newsletter.objects.get(slug="meinung-am-morgen")
subscription_request(address="Leserin@Example.ORG", newsletter=newsletter, ip="127.0.0.1",
                     user_agent="test", url="/", form="test", language="de")
subscription = Subscription.objects.get()
subscription_confirm(subscription_id=subscription.id, confirm_round=subscription.confirm_round,
                     ip="127.0.0.1", user_agent="test")
"""

DIGEST_STATE = """
from newsletter.models import Digest
print(*Digest.objects.values_list("state", "recipients").get())
"""


def _manage(tmp_path: Path, *args: str) -> str:
    return manage(local_env(tmp_path), *args)


def test_local_default_runs_every_flow_on_sqlite_with_mail_in_files(tmp_path):
    _manage(tmp_path, "migrate", "--noinput", "-v0")
    _manage(tmp_path, "seed_demo")
    _manage(tmp_path, "seed_demo")  # idempotent
    assert (tmp_path / "var" / "db.sqlite3").exists()

    _manage(tmp_path, "shell", "-c", SUBSCRIBE_AND_CONFIRM)
    _manage(tmp_path, "send_digest", "meinung-am-morgen", "--now")
    state = _manage(tmp_path, "shell", "-c", DIGEST_STATE).splitlines()[-1]
    assert state.split() == ["done", "1"]

    mails = _mails(tmp_path / "var" / "mail")
    assert len(mails) == 3  # confirmation, welcome, digest
    [confirmation] = [m for m in mails if "/n/bestaetigen/" in _text(m)]
    [digest] = [m for m in mails if "Meinungsäußerung" in _text(m)]
    assert confirmation["To"] == "Leserin@example.org"
    assert digest["To"] == "Leserin@example.org"
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Meinungsäußerung unserer Redaktion" in _text(digest)


def _mails(folder: Path) -> list[email.message.EmailMessage]:
    """Django's file backend writes each message followed by a line of dashes."""
    separator = b"\n" + b"-" * 79 + b"\n"
    return [
        email.message_from_bytes(chunk, policy=email.policy.default)
        for path in sorted(folder.iterdir())
        for chunk in path.read_bytes().split(separator)
        if chunk.strip()
    ]


def _text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
