"""The image, built and run as an operator would: podman, then docker-compose through podman's API.

No container registry is reachable here, so the Dockerfile's `FROM python:3.11-slim` is a
Debian bookworm made by debootstrap (bookworm's python3 is 3.11; /usr/local/bin/python like the
official image), trusting this machine's CA bundle and pip settings so pip reaches the package
index as the host does. It is cached under /var/cache per ISO week. The compose file's postgres
and redis images are replaced, by an override that changes nothing but `image:`, with Debian's
PostgreSQL 15 and Redis 7 on that base (tests/ops/standins/).

This machine has no systemd, so podman cannot schedule health checks; the test runs each
container's own HEALTHCHECK with `podman healthcheck run`, and for compose's `service_healthy`
a thread does what the timer would.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.image

IMAGE = "localhost/meinung-newsletter:latest"
BASE_TAGS = ("docker.io/library/python:3.11-slim", "localhost/python:3.11-slim")
STANDINS = {
    "postgres": ("localhost/meinung-standin-postgres:15", "postgres.Containerfile"),
    "redis": ("localhost/meinung-standin-redis:7", "redis.Containerfile"),
    # The cache's Redis runs the same stand-in with its own command line (maxmemory, LRU).
    "redis-cache": ("localhost/meinung-standin-redis:7", "redis.Containerfile"),
}
CACHE = Path(os.environ.get("IMAGE_TEST_CACHE", "/var/cache/meinung-image"))
TOOLS = {
    "podman": "podman",
    "runc": "runc",
    "iptables": "iptables",
    "debootstrap": "debootstrap",
    "docker-compose": "docker-compose",
}
# Containers and compose projects of this run only (several suites may share the machine).
PREFIX = f"meinung-imgtest-{uuid.uuid4().hex[:6]}"


class Phases:
    """Wall-clock seconds per phase, printed as they end (the suite's budget is minutes)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.started = time.monotonic()

    def run(self, name: str, fn: Callable[[], object]) -> object:
        began = time.monotonic()
        try:
            return fn()
        finally:
            self.write(
                f"[image] {name}: {time.monotonic() - began:.1f} s "
                f"(total {time.monotonic() - self.started:.1f} s)"
            )


def _sh(args: list[str], *, env: dict[str, str], timeout: float = 120, check: bool = True, **kw):
    result = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    return result


def _wait(what: str, condition: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.5)


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory) -> dict[str, str]:
    """podman's environment: a containers.conf with runc and default ulimits this machine
    grants, and an image store of the test's own under the cache directory.

    runc, not crun: on a machine whose cgroups are mounted in hybrid mode (v1 controllers
    beside an empty v2 tree, as on some CI hosts) crun refuses every container with "cgroups
    in hybrid mode not supported", while runc runs them.

    podman's defaults ask runc for open-file and process limits above the hard limits here,
    and root in this sandbox lacks CAP_SYS_RESOURCE to raise them: every container then fails
    with "error setting rlimit type 7" (nofile) or "type 6" (nproc). The process limit must
    also stay within conmon's, which podman starts with 32,768. The store of its own keeps the
    test's `python:3.11-slim` from replacing a real one in the machine's store, and its layer
    cache makes a warm run rebuild only what changed.
    """
    missing = [
        f"{tool} (apt-get install {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)
    ]
    if missing:
        pytest.fail(
            "the image test needs " + ", ".join(missing) + "; scripts/test-tools.sh installs them"
        )
    if os.geteuid() != 0:
        pytest.fail("the image test runs rootful podman and debootstrap: run it as root")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    folder = tmp_path_factory.mktemp("podman")
    conf = folder / "containers.conf"
    conf.write_text(
        f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        '[engine]\nruntime = "runc"\n'
    )
    # One run-time directory per store: two stores must never share its locks and mounts.
    runroot = Path("/run/meinung-image-test") / str(CACHE).strip("/").replace("/", "-")
    storage = folder / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{CACHE / "storage"}"\nrunroot = "{runroot}"\n'
    )
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "CONTAINERS_CONF": str(conf),
        "CONTAINERS_STORAGE_CONF": str(storage),
    }


def _base_image(env: dict[str, str]) -> str:
    """The stand-in for python:3.11-slim, made once per ISO week (security updates)."""
    year, week, _ = datetime.date.today().isocalendar()
    key = f"bookworm-{year}w{week:02d}"
    inspect = _sh(["podman", "image", "inspect", BASE_TAGS[0]], env=env, check=False)
    if inspect.returncode == 0:
        labels = json.loads(inspect.stdout)[0].get("Labels") or {}
        if labels.get("meinung.base") == key:
            return "cached"
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"{key}.tar"
    if not tarball.exists():
        rootfs = CACHE / f"{key}.rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        packages = "python3,python3-venv,python3-pip,ca-certificates"
        debootstrap = ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm"]
        _sh([*debootstrap, str(rootfs), "http://deb.debian.org/debian"], env=env, timeout=900)
        for name in ("python", "python3"):
            (rootfs / "usr/local/bin" / name).symlink_to("/usr/bin/python3")
        # The machine's CA bundle and pip settings: HTTPS leaves through a proxy whose CA only
        # the host's bundle holds, and pip is told to use it here as it is on the host.
        shutil.copy(
            "/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt"
        )
        (rootfs / "etc/pip.conf").write_text(
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
        )
        for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            leftover.unlink()
        _sh(["tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", "."], env=env, timeout=300)
        os.replace(str(tarball) + ".part", tarball)
        shutil.rmtree(rootfs)
        for old in CACHE.glob("bookworm-*.tar"):
            if old != tarball:
                old.unlink()
    changes = [f"LABEL meinung.base={key}", "ENV LANG=C.UTF-8", 'CMD ["python3"]']
    flags = [arg for change in changes for arg in ("--change", change)]
    _sh(["podman", "import", *flags, str(tarball), BASE_TAGS[0]], env=env, timeout=300)
    _sh(["podman", "tag", BASE_TAGS[0], BASE_TAGS[1]], env=env)
    return "built"


def _build(env: dict[str, str]) -> None:
    # --format docker: the OCI format has no HEALTHCHECK, podman would drop it.
    build = ["podman", "build", "--format", "docker", "--pull=never"]
    _sh([*build, "-f", "docker/Dockerfile", "-t", IMAGE, "."], env=env, cwd=ROOT, timeout=1200)
    standins = ROOT / "tests" / "ops" / "standins"
    for tag, containerfile in dict(STANDINS.values()).items():
        _sh([*build, "-f", containerfile, "-t", tag, "."], env=env, cwd=standins, timeout=900)


def _remove_our_containers(env: dict[str, str]) -> None:
    names = _sh(
        ["podman", "ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{PREFIX}-"],
        env=env,
        check=False,
    ).stdout.split()
    if names:
        _sh(["podman", "rm", "-f", "-t", "5", *names], env=env, check=False, timeout=120)


@pytest.fixture(scope="module")
def image(podman_env, request) -> Iterator[Phases]:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    phases = Phases(write)
    # Checked at once: if podman cannot start a container here, nothing else can be tried.
    base = phases.run("base image (debootstrap, cached per week)", lambda: _base_image(podman_env))
    phases.write(f"[image] base image: {base}")
    ran = _sh(
        [
            "podman",
            "run",
            "--rm",
            "--network",
            "none",
            BASE_TAGS[0],
            "python",
            "-c",
            "import sys; print(sys.version_info[:2])",
        ],
        env=podman_env,
    )
    assert ran.stdout.strip() == "(3, 11)"
    phases.run("build app image and stand-ins", lambda: _build(podman_env))
    yield phases
    _remove_our_containers(podman_env)


@pytest.fixture(scope="module")
def container_db() -> Iterator[str]:
    """A database of this test's own on the machine's PostgreSQL, for the containers."""
    name = f"{os.environ.get('DJANGO_TEST_DB_NAME', 'test_meinung')}_container"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _podman(env: dict[str, str], *args: str, timeout: float = 120, check: bool = True):
    return _sh(["podman", *args], env=env, timeout=timeout, check=check)


def _healthy(env: dict[str, str], container: str) -> subprocess.CompletedProcess:
    return _podman(env, "healthcheck", "run", container, timeout=90, check=False)


def _becomes_healthy(env: dict[str, str], container: str, timeout: float = 120) -> None:
    """As the engine sees it: unhealthy answers are retried within the start period."""
    deadline = time.monotonic() + timeout
    while (result := _healthy(env, container)).returncode != 0:
        assert time.monotonic() < deadline, (container, result.stdout, result.stderr)
        time.sleep(1)


def _mail_files(env: dict[str, str], container: str) -> list[str]:
    listing = _podman(
        env, "exec", container, "sh", "-c", "cat /app/var/mail/*.log 2>/dev/null", check=False
    )
    return [part for part in listing.stdout.split("\n" + "-" * 79) if part.strip()]


def test_image_serves_runs_tasks_and_passes_its_health_checks(image, podman_env, container_db):
    env = podman_env
    port = free_port()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")
    env_file = Path(ROOT / "var")
    env_file.mkdir(exist_ok=True)
    env_file = env_file / f"image-test-{uuid.uuid4().hex[:8]}.env"
    env_file.write_text(
        "\n".join(
            [
                "DJANGO_DEBUG=0",
                "DJANGO_SECRET_KEY=image-test-" + "s" * 50,
                "NEWSLETTER_ADDRESS_HMAC_KEY=image-test-address-key",
                "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
                "DJANGO_SECURE_SSL_REDIRECT=0",
                f"SITE_URL=http://127.0.0.1:{port}",
                f"DATABASE_URL={container_db}",
                f"REDIS_URL={redis_url}",
                f"CELERY_BROKER_URL={redis_url}",
                f"CACHE_KEY_PREFIX={PREFIX}-{port}",
                # Not the default: gunicorn and the web health check must both follow it.
                f"PORT={port}",
                "GUNICORN_WORKERS=2",
                "",
            ]
        )
    )
    run = ["run", "--network", "host", "--env-file", str(env_file)]
    try:
        image.run("migrate", lambda: _podman(env, *run, "--rm", IMAGE, "migrate", timeout=300))
        image.run(
            "seed_demo",
            lambda: _podman(env, *run, "--rm", IMAGE, "manage", "seed_demo", timeout=300),
        )
        names = {role: f"{PREFIX}-{role}" for role in ("web", "worker", "beat")}
        args = {"web": ["web"], "worker": ["worker", "--concurrency=1"], "beat": ["beat"]}
        for role, name in names.items():
            _podman(env, *run, "-d", "--name", name, IMAGE, *args[role])

        base = f"http://127.0.0.1:{port}"
        image.run(
            "web ready", lambda: _wait("/readyz 200", lambda: _get(f"{base}/readyz")[0] == 200, 120)
        )
        status, body = _get(f"{base}/readyz")
        assert status == 200
        checks = json.loads(body)["checks"]
        assert {"database", "migrations", "redis", "broker"} <= set(checks)

        status, page = _get(f"{base}/")
        assert status == 200
        assert b"<html" in page.lower()
        css = next(
            part.split('"')[0]
            for part in page.decode().split('href="')[1:]
            if part.split('"')[0].endswith(".css")
        )
        assert _get(f"{base}{css}")[0] == 200  # whitenoise, from the image

        # The default EMAIL_URL writes files under var/mail, which must belong to app.
        sent = _podman(
            env,
            "exec",
            names["web"],
            "python",
            "manage.py",
            "sendtestemail",
            "ops@example.org",
            timeout=120,
        )
        assert sent.returncode == 0
        assert any("ops@example.org" in mail for mail in _mail_files(env, names["web"]))

        # A signup in the web container; its confirmation mail is a task for the worker.
        address = f"leser-{uuid.uuid4().hex[:6]}@example.org"
        signup = (
            "from newsletter.models import Newsletter\n"
            "from newsletter.services.consent.signup import subscription_request\n"
            "newsletter = Newsletter.objects.order_by('id').first()\n"
            f"subscription_request(address='{address}', newsletter=newsletter, ip=None,"
            " user_agent='image test', url='/', form='image-test', language='de')\n"
        )
        _podman(env, "exec", names["web"], "python", "manage.py", "shell", "-c", signup)
        image.run(
            "worker sends the confirmation",
            lambda: _wait(
                "the worker's confirmation mail",
                lambda: any(address in mail for mail in _mail_files(env, names["worker"])),
                120,
            ),
        )

        for name in names.values():
            users = _podman(env, "top", name, "user").stdout.split()[1:]
            assert users and "root" not in users, (name, users)
            assert _podman(env, "exec", name, "id", "-u").stdout.strip() != "0"

        def healthchecks() -> None:
            for name in names.values():
                _becomes_healthy(env, name)

        image.run("health checks per role", healthchecks)
        inspected = json.loads(_podman(env, "inspect", names["web"]).stdout)[0]
        assert inspected["Config"]["Healthcheck"]["Test"] == ["CMD", "/app/docker/healthcheck.sh"]

        # The checks are not vacuous: a beat whose schedule went stale and a worker asked
        # under another node name are reported unhealthy.
        _podman(
            env,
            "exec",
            names["beat"],
            "sh",
            "-c",
            "touch -d '-20 minutes' /tmp/celerybeat-schedule*",
        )
        assert _healthy(env, names["beat"]).returncode != 0
        node = _podman(env, "exec", names["worker"], "cat", "/tmp/celery-node").stdout.strip()
        assert node.startswith("worker-") and "@" in node
        # A node name of the operator's own would make the check ping the wrong node.
        renamed = _podman(env, *run, "--rm", IMAGE, "worker", "-n", "mine@%h", check=False)
        assert renamed.returncode == 2 and "node name" in renamed.stderr
        _podman(
            env, "exec", names["worker"], "sh", "-c", "echo worker-gone@nowhere > /tmp/celery-node"
        )
        negative = image.run(
            "worker health check, negative", lambda: _healthy(env, names["worker"])
        )
        assert negative.returncode != 0
        _podman(env, "exec", names["worker"], "sh", "-c", f"echo {node} > /tmp/celery-node")
    except BaseException:
        for role in ("web", "worker", "beat"):
            logs = _podman(env, "logs", "--tail", "40", f"{PREFIX}-{role}", check=False)
            image.write(f"[image] --- {role} log ---\n{logs.stdout}{logs.stderr}")
        raise
    finally:
        _remove_our_containers(env)
        env_file.unlink(missing_ok=True)


def test_web_refuses_to_start_when_the_deploy_check_reports_an_error(
    image, podman_env, container_db
):
    """An ESP without its webhook secret (newsletter.E001): anyone could post bounces to the
    tracking URL and suppress the list, so the container stops before it serves."""
    env_file = ROOT / "var" / f"image-test-{uuid.uuid4().hex[:8]}.env"
    env_file.parent.mkdir(exist_ok=True)
    env_file.write_text(
        "\n".join(
            [
                "DJANGO_DEBUG=0",
                "DJANGO_SECRET_KEY=image-test-" + "s" * 50,
                "NEWSLETTER_ADDRESS_HMAC_KEY=image-test-address-key",
                "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
                f"DATABASE_URL={container_db}",
                "ANYMAIL_ESP=mailgun",
                "",
            ]
        )
    )
    name = f"{PREFIX}-deploy-check"
    run = ["run", "--rm", "--network", "host", "--env-file", str(env_file), "--name", name]
    try:
        result = image.run(
            "web deploy check",
            lambda: _podman(podman_env, *run, IMAGE, "web", timeout=120, check=False),
        )
    finally:
        env_file.unlink()
        _podman(podman_env, "rm", "-f", name, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "newsletter.E001" in output, output
    assert "Listening at" not in output, output  # gunicorn never started


class HealthTicker(threading.Thread):
    """What podman's systemd timers do elsewhere: run each container's own health check."""

    def __init__(self, env: dict[str, str], project: str) -> None:
        super().__init__(daemon=True)
        self.env, self.project, self.stop = env, project, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(2):
            listed = _sh(
                [
                    "podman",
                    "ps",
                    "--filter",
                    f"label=com.docker.compose.project={self.project}",
                    "--format",
                    "{{.Names}} {{.Status}}",
                ],
                env=self.env,
                check=False,
            )
            for line in listed.stdout.splitlines():
                name, _, status = line.partition(" ")
                if "(starting)" in status or "(unhealthy)" in status:
                    _healthy(self.env, name)


def test_compose_brings_the_stack_up_through_podmans_docker_api(image, podman_env, tmp_path):
    env = podman_env
    socket_path = Path(f"/tmp/{PREFIX}-{uuid.uuid4().hex[:8]}.sock")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    project = f"{PREFIX.replace('-', '')}{uuid.uuid4().hex[:6]}"
    web_port = free_port()
    (tmp_path / "docker").mkdir()
    shutil.copy(ROOT / "docker" / "compose.yml", tmp_path / "docker" / "compose.yml")
    dotenv = (ROOT / ".env.example").read_text()
    for old, new in {
        "DJANGO_SECRET_KEY=change-me": "DJANGO_SECRET_KEY=compose-test-" + "k" * 50,
        "NEWSLETTER_ADDRESS_HMAC_KEY=change-me": "NEWSLETTER_ADDRESS_HMAC_KEY=compose-test-key",
        "DJANGO_ALLOWED_HOSTS=meinung.example.org": "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
        "POSTGRES_PASSWORD=change-me": "POSTGRES_PASSWORD=compose-pg-pw",
        "meinung:change-me@postgres": "meinung:compose-pg-pw@postgres",
        "ANYMAIL_ESP=mailgun": "ANYMAIL_ESP=",
    }.items():
        assert old in dotenv, old
        dotenv = dotenv.replace(old, new)
    # PORT would move gunicorn off the mapped port if compose did not pin it.
    dotenv += f"\nDJANGO_SECURE_SSL_REDIRECT=0\nPORT=9999\nWEB_PORT={web_port}\n"
    (tmp_path / "docker" / ".env").write_text(dotenv)
    override = {"services": {svc: {"image": tag} for svc, (tag, _) in STANDINS.items()}}
    (tmp_path / "docker" / "standins.yml").write_text(yaml.safe_dump(override))
    compose_env = {**env, "DOCKER_HOST": f"unix://{socket_path}", "COMPOSE_HTTP_TIMEOUT": "300"}
    compose = [
        "docker-compose",
        "-p",
        project,
        "-f",
        "docker/compose.yml",
        "-f",
        "docker/standins.yml",
    ]
    ticker = HealthTicker(env, project)
    try:
        _wait("podman's API socket", socket_path.exists, 30)
        ticker.start()
        up = image.run(
            "compose up",
            lambda: _sh(
                [*compose, "up", "-d", "--no-build"],
                env=compose_env,
                cwd=tmp_path,
                timeout=420,
                check=False,
            ),
        )
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        base = f"http://127.0.0.1:{web_port}"
        image.run(
            "compose web ready",
            lambda: _wait(
                "/readyz 200 through the port mapping",
                lambda: _get(f"{base}/readyz")[0] == 200,
                120,
            ),
        )
        assert _get(f"{base}/")[0] == 200

        ps = _sh(
            [
                "podman",
                "ps",
                "-a",
                "--filter",
                f"label=com.docker.compose.project={project}",
                "--format",
                "json",
            ],
            env=env,
        )
        containers = {c["Labels"]["com.docker.compose.service"]: c for c in json.loads(ps.stdout)}
        assert set(containers) == {
            "migrate",
            "web",
            "worker",
            "beat",
            "postgres",
            "redis",
            "redis-cache",
        }
        assert containers["migrate"]["ExitCode"] == 0 and containers["migrate"]["Exited"]

        def healthchecks() -> None:
            for svc in ("web", "worker", "beat", "postgres", "redis", "redis-cache"):
                _becomes_healthy(env, containers[svc]["Id"])

        image.run("compose health checks", healthchecks)
        pg_env = json.loads(
            _sh(["podman", "inspect", containers["postgres"]["Id"]], env=env).stdout
        )
        pg_vars = {item.split("=", 1)[0] for item in pg_env[0]["Config"]["Env"]}
        assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= pg_vars
        assert not {"DJANGO_SECRET_KEY", "NEWSLETTER_ADDRESS_HMAC_KEY", "DATABASE_URL"} & pg_vars
    finally:
        ticker.stop.set()
        down = _sh(
            [*compose, "down", "-v", "-t", "5"],
            env=compose_env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        service.terminate()
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
        socket_path.unlink(missing_ok=True)
        assert down.returncode == 0, down.stderr[-2000:]
