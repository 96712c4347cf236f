"""`make run` in a fresh copy of the project, on a port other than 8000, and the README's
`manage.py` commands run beside it exactly as the README writes them."""

import email
import email.policy
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, spawn_group, stop_group
from tests.site.local_run import local_env

README = ROOT / "README.md"
# What a fresh clone does not have: local state, caches, compiled catalogues, secrets.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "var", "staticfiles", ".env", "*.mo", "__pycache__", ".*_cache", ".hypothesis"
)


def readme_commands() -> list[str]:
    """Every `manage.py` command the README shows: inline code, indented and fenced blocks.
    Templates with <placeholders> are not commands."""
    text = README.read_text()
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    candidates = [
        *re.findall(r"`([^`\n]+)`", text),
        *(line[4:] for line in text.splitlines() if line.startswith("    ")),
        *(line for block in fenced for line in block.splitlines()),
    ]
    return [
        c.strip()
        for c in candidates
        if re.search(r"make manage ARGS=|manage\.py [a-z]", c) and "<" not in c
    ]


def readme_production_minimum() -> dict[str, str]:
    """The variables of the README's production minimum, <placeholders> filled in."""
    text = README.read_text()
    start = text.index("the minimum is")
    block = text[start : text.index("plus, once `ANYMAIL_ESP` is set", start)]
    pairs = re.findall(r"^    (\w+)=(\S+)", block, flags=re.M)
    return {k: secrets.token_urlsafe(40) if v.startswith("<") else v for k, v in pairs}


class Forms(HTMLParser):
    """The forms of a page: action and the values of their named inputs."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append((attrs.get("action") or "", {}))
        elif tag in {"input", "button"} and self.forms and attrs.get("name"):
            self.forms[-1][1][attrs["name"]] = attrs.get("value") or ""

    def containing(self, field: str) -> tuple[str, dict[str, str]]:
        return next(form for form in self.forms if field in form[1])


@pytest.fixture(scope="module")
def made_run(tmp_path_factory) -> Iterator[tuple[Path, int]]:
    """`PORT=<free port> make run` in a copy of the checkout with no local state and nothing
    in the environment but PATH and HOME (the venv is shared: building one takes minutes)."""
    base = tmp_path_factory.mktemp("fresh")
    clone = base / "clone"
    shutil.copytree(ROOT, clone, ignore=NOT_IN_A_CLONE, symlinks=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {
        "PATH": local_env(base)["PATH"],
        "HOME": str(base),
        "PORT": str(port),
        # The signup below is sent by a test, not typed: no minimum fill time.
        "NEWSLETTER_SIGNUP_MIN_SECONDS": "0",
    }
    log_path = base / "make-run.log"
    # -o: never rebuild the shared venv from the copy (its stamp is make test's business).
    proc = spawn_group(
        ["make", "-o", ".venv/.installed", "run"], env=env, log_path=log_path, cwd=clone
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        yield clone, port
    finally:
        stop_group(proc)


def _mails(clone: Path) -> list[email.message.EmailMessage]:
    separator = b"\n" + b"-" * 79 + b"\n"
    folder = clone / "var" / "mail"
    return [
        email.message_from_bytes(chunk, policy=email.policy.default)
        for path in sorted(folder.iterdir() if folder.exists() else [])
        for chunk in path.read_bytes().split(separator)
        if chunk.strip()
    ]


def _text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _subscribe_and_confirm(base: str, address: str, clone: Path) -> email.message.EmailMessage:
    """Through the served pages, as a reader: the signup box, then the confirmation link."""
    session = requests.Session()
    page = session.get(f"{base}/artikel/gold-als-versicherung/", timeout=10)
    action, fields = Forms(page.text).containing("started")
    answer = session.post(f"{base}{action}", data={**fields, "email": address}, timeout=10)
    assert answer.status_code == 200 and "/anmelden/danke/" in answer.url, answer.text[:2000]
    [confirmation] = [m for m in _mails(clone) if m["To"] == address]
    link = re.search(r"https?://\S+/n/bestaetigen/\S+/", _text(confirmation)).group(0)
    confirm_page = session.get(link.replace("localhost", "127.0.0.1"), timeout=10)
    [(action, fields)] = [f for f in Forms(confirm_page.text).forms if "/bestaetigen/" in f[0]]
    confirmed = session.post(f"{base}{action}", data=fields, timeout=10)
    assert confirmed.status_code == 200, confirmed.text[:2000]
    return confirmation


def test_make_run_on_another_port_links_to_that_port_in_pages_and_mail(made_run):
    clone, port = made_run
    base = f"http://127.0.0.1:{port}"
    page = requests.get(f"{base}/artikel/gold-als-versicherung/", timeout=10).text
    assert (
        f'<link rel="canonical" href="http://localhost:{port}/artikel/gold-als-versicherung/">'
        in page
    )

    confirmation = _subscribe_and_confirm(base, "leser@example.org", clone)
    links = re.findall(r"https?://[^\s\"'<>]+", _text(confirmation))
    assert links and all(link.startswith(f"http://localhost:{port}/") for link in links), links


def test_the_readme_manage_commands_work_as_written_next_to_make_run(made_run):
    clone, port = made_run
    base = f"http://127.0.0.1:{port}"
    _subscribe_and_confirm(base, "leserin@example.org", clone)
    commands = readme_commands()
    assert any("createsuperuser --noinput" in c for c in commands), commands
    password = secrets.token_urlsafe(16)
    for command in commands:
        if command.startswith("manage.py"):
            # The production line: with exactly the README's minimum, nothing else.
            env = {"PATH": local_env(clone)["PATH"], **readme_production_minimum()}
            command = f".venv/bin/python {command}"
        else:
            # Another terminal of the same user, who started `make run` on this PORT.
            env = {"PATH": local_env(clone)["PATH"], "HOME": str(clone), "PORT": str(port)}
        result = subprocess.run(
            ["bash", "-c", command.replace("=…", f"={password}")],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"

    # The superuser of the README logs in to the admin of the running server.
    session = requests.Session()
    login = session.get(f"{base}/admin/login/", timeout=10)
    _action, fields = Forms(login.text).containing("username")
    admin = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={**fields, "username": "admin", "password": password},
        timeout=10,
    )
    assert admin.url == f"{base}/admin/" and "logout" in admin.text, admin.text[:2000]
    # The README's digest reached the confirmed reader, with links to the running server.
    [digest] = [
        m for m in _mails(clone) if m["To"] == "leserin@example.org" and "/artikel/" in _text(m)
    ]
    assert f"http://localhost:{port}/artikel/" in _text(digest)
