"""`make run` with a broker configured: the web server, one Celery worker and the beat."""

import os
import time
import urllib.request
import uuid

from tests.conftest import free_port, spawn_group, stop_group
from tests.site.local_run import local_env, manage


def test_run_script_starts_web_worker_and_beat_when_a_broker_is_set(tmp_path):
    port = free_port()
    env = local_env(
        tmp_path,
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        CELERY_TASK_DEFAULT_QUEUE=f"run-script-{uuid.uuid4().hex[:8]}",
    )
    manage(env, "migrate", "--noinput", "-v0")
    log_path = tmp_path / "run.log"
    proc = spawn_group(["bash", "scripts/run-local.sh", str(port)], env=env, log_path=log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            text = log_path.read_text(errors="replace")
            served = False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    served = r.status == 200
            except OSError:
                pass
            if served and " ready." in text and "beat: Starting" in text:
                break
            assert proc.poll() is None, text
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
    finally:
        stop_group(proc)
