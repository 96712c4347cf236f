"""The web role for real: gunicorn with docker/gunicorn.conf.py, probed like the container is."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, spawn_group, stop_group, suite_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn_server(tmp_path, db):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # The server reads this suite's test database (pages query it, e.g. for the 404 page).
        "DATABASE_URL": suite_database_url(),
        "PORT": str(port),
        "GUNICORN_WORKERS": "1",
        "LOG_FORMAT": "json",
        "LOG_REQUESTS": "1",
    }
    proc = spawn_group(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "docker/gunicorn.conf.py",
            "config.wsgi:application",
        ],
        env=env,
        log_path=log_path,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield port, log_path, env
    finally:
        stop_group(proc)


def _healthcheck_command() -> list[str]:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    match = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", dockerfile, re.S)
    assert match, "the Dockerfile has a HEALTHCHECK in exec form"
    return json.loads(match.group(1))


def _run_healthcheck_as(role: str, *, port: int, tmp_path: Path) -> subprocess.CompletedProcess:
    """The image's HEALTHCHECK command from this checkout, in a container of the given role
    (the file docker/entrypoint.sh writes), with only the environment the image gives it."""
    assert _healthcheck_command() == ["/app/docker/healthcheck.sh"]
    role_file = tmp_path / "container-role"
    role_file.write_text(f"{role}\n")
    env = {
        "PORT": str(port),
        "CONTAINER_ROLE_FILE": str(role_file),
        # The image's `python` is the one that runs the app; here, this suite's.
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
    }
    return subprocess.run(
        [str(ROOT / "docker" / "healthcheck.sh")], env=env, capture_output=True, timeout=10
    )


def test_the_image_healthcheck_command_passes_against_gunicorn(gunicorn_server, tmp_path):
    port, _log, _env = gunicorn_server
    result = _run_healthcheck_as("web", port=port, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_healthcheck_command_fails_when_nothing_serves(tmp_path):
    result = _run_healthcheck_as("web", port=free_port(), tmp_path=tmp_path)
    assert result.returncode != 0
    assert b"Connection refused" in result.stderr, result.stderr


def test_gunicorn_logs_json_lines_with_the_request_id(gunicorn_server):
    port, log_path, _env = gunicorn_server
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/gibt-es-nicht/", headers={"X-Request-ID": "probe-123"}
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 404, log_path.read_text()
        assert error.headers["X-Request-ID"] == "probe-123"
    deadline = time.monotonic() + 10
    while '"probe-123"' not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line, gunicorn's own included
    [access] = [e for e in entries if e.get("request_id") == "probe-123"]
    assert (access["logger"], access["status"], access["path"]) == (
        "config.request",
        404,
        "/gibt-es-nicht/",
    )
    assert any(e["logger"] == "gunicorn.error" for e in entries)


def test_gunicorn_logs_no_link_token(gunicorn_server):
    """Behind gunicorn as in the image, a personal link's token never reaches the log."""
    port, log_path, _env = gunicorn_server
    token = "Zm9vYmFy:1uTok:SecretPart_42"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/n/abmelden/{token}/", headers={"X-Request-ID": "tok-1"}
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 400, log_path.read_text()
    deadline = time.monotonic() + 10
    while '"tok-1"' not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    text = log_path.read_text()
    assert "SecretPart_42" not in text and "Zm9vYmFy" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    [line] = [e for e in entries if e.get("request_id") == "tok-1" and e.get("path")]
    assert line["path"] == "/n/abmelden/<token>/"
