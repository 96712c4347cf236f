"""The container files: compose validates with Debian's docker-compose, scripts lint clean."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _tool(path: str | None, package: str) -> str:
    """Never skipped: `make test` installs the tool (scripts/test-tools.sh)."""
    if path is None:
        pytest.fail(f"missing: apt-get install {package} (or run `make test`)")
    return path


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """A copy of the compose file beside a docker/.env made from .env.example, as an operator
    has it."""
    (tmp_path / "docker").mkdir()
    shutil.copy(ROOT / "docker" / "compose.yml", tmp_path / "docker" / "compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / "docker" / ".env")
    return tmp_path


def _config(project: Path) -> dict:
    result = _compose(project, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _compose(project: Path, *args: str) -> subprocess.CompletedProcess:
    binary = _tool(shutil.which("docker-compose"), "docker-compose")
    env = {"PATH": os.environ["PATH"], "HOME": str(project)}
    return subprocess.run(
        [binary, "-f", "docker/compose.yml", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_validates(compose_project):
    result = _compose(compose_project, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_wires_the_stack_in_order(compose_project):
    config = _config(compose_project)
    services = config["services"]
    assert set(services) >= {"web", "worker", "beat", "migrate", "postgres", "redis", "mailpit"}
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["mailpit"]["profiles"] == ["dev"]
    assert "--appendonly" in services["redis"]["command"]
    assert set(config["volumes"]) == {"media", "postgres-data", "redis-data"}
    # Uploaded pictures outlive the web container (the app serves them from there).
    assert "/app/var/media" in str(services["web"]["volumes"])
    # Secrets reach the containers from .env, never from the compose file itself.
    assert services["web"]["environment"]["DJANGO_SECRET_KEY"] == "change-me"
    raw = (ROOT / "docker" / "compose.yml").read_text()
    assert "SECRET_KEY" not in raw and "change-me" not in raw


def test_postgres_gets_only_its_own_variables(compose_project):
    env = compose_project / "docker" / ".env"
    env.write_text(
        env.read_text().replace("POSTGRES_PASSWORD=change-me", "POSTGRES_PASSWORD=pg-pw")
    )
    postgres = _config(compose_project)["services"]["postgres"]
    assert postgres["environment"] == {
        "POSTGRES_USER": "meinung",
        "POSTGRES_PASSWORD": "pg-pw",
        "POSTGRES_DB": "meinung",
    }


def test_port_in_env_file_cannot_move_gunicorn_off_the_mapped_port(compose_project):
    env = compose_project / "docker" / ".env"
    env.write_text(env.read_text() + "PORT=9999\nWEB_PORT=8123\n")
    web = _config(compose_project)["services"]["web"]
    # gunicorn and the image's health check read PORT; the mapping targets the same port.
    assert web["environment"]["PORT"] == "8000"
    assert [(str(p["published"]), p["target"]) for p in web["ports"]] == [("8123", 8000)]


def test_every_long_running_role_keeps_the_images_health_check(compose_project):
    services = _config(compose_project)["services"]
    for name in ("web", "worker", "beat"):
        assert "healthcheck" not in services[name], name
    assert services["migrate"]["healthcheck"] == {"test": ["NONE"]}  # disable: true
    assert "HOSTNAME" not in (ROOT / "docker" / "compose.yml").read_text()


def _compose_config(project: Path) -> dict:
    result = _compose(project, "config")
    assert result.returncode == 0, result.stderr
    import yaml

    return yaml.safe_load(result.stdout)


@pytest.fixture
def redis_server_from(tmp_path: Path):
    """Runs a compose service's redis-server command on a free local port; yields a client."""
    import redis

    started: list[subprocess.Popen] = []

    def start(command: list[str]) -> redis.Redis:
        port = free_port()
        local = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
        server = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", *command[1:], *local],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(server)
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                assert server.poll() is None, f"redis-server refused {command}"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    yield start
    for server in started:
        server.kill()
        server.wait(10)


def test_cache_and_broker_get_redis_servers_with_their_own_eviction_policy(
    compose_project, redis_server_from
):
    """The cache may evict and is bounded; the broker never drops a queued task. The policy
    is per server, so they are two services, and each command runs as written."""
    services = _compose_config(compose_project)["services"]
    cache = redis_server_from(services["redis-cache"]["command"])
    broker = redis_server_from(services["redis"]["command"])
    assert cache.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    assert int(cache.config_get("maxmemory")["maxmemory"]) == 256 * 1024 * 1024
    assert broker.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert broker.config_get("appendonly") == {"appendonly": "yes"}

    for role in ("web", "worker", "beat"):
        environment = services[role]["environment"]
        assert urlparse(environment["REDIS_CACHE_URL"]).hostname == "redis-cache"
        assert urlparse(environment["CELERY_BROKER_URL"]).hostname == "redis"
        assert services[role]["depends_on"]["redis-cache"]["condition"] == "service_healthy"
        assert services[role]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_file_refuses_a_missing_env_file(tmp_path):
    (tmp_path / "docker").mkdir()
    shutil.copy(ROOT / "docker" / "compose.yml", tmp_path / "docker" / "compose.yml")
    result = _compose(tmp_path, "config", "-q")
    assert result.returncode != 0
    assert ".env" in result.stderr


def test_entrypoint_parses_with_bash_n():
    result = subprocess.run(
        ["bash", "-n", str(ROOT / "docker" / "entrypoint.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "script",
    [
        "docker/entrypoint.sh",
        "docker/healthcheck.sh",
        "scripts/run-local.sh",
        ".ci/run",
        "tests/ops/standins/postgres-entrypoint.sh",
        "tests/ops/standins/redis-entrypoint.sh",
    ],
    ids=str,
)
def test_shell_scripts_are_shellcheck_clean(script):
    shellcheck = _tool(shutil.which("shellcheck"), "shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(ROOT / script)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["entrypoint.sh", "healthcheck.sh"])
def test_container_scripts_are_executable(script):
    assert os.access(ROOT / "docker" / script, os.X_OK)


def _gunicorn_workers(env: dict[str, str]) -> int:
    code = "import runpy; print(runpy.run_path('docker/gunicorn.conf.py')['workers'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


def test_gunicorn_workers_follow_the_cpu_formula_capped_and_overridable():
    expected = min(os.cpu_count() * 2 + 1, 12)
    assert _gunicorn_workers({}) == expected
    assert _gunicorn_workers({"GUNICORN_MAX_WORKERS": "2"}) == min(expected, 2)
    assert _gunicorn_workers({"GUNICORN_WORKERS": "7"}) == 7


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", "**/.env", ".git", ".venv", "var"):
        assert entry in ignored
