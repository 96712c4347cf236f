"""bench/digest.py at a small N: the benchmark's own accounting must be exact.

Speed is the benchmark's business; this only proves that the measured path delivers each
confirmed subscriber exactly once, leaves out everyone else, and reports it in its JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
N = 3_000

pytestmark = pytest.mark.worker


def test_small_digest_bench_is_exact():
    db = os.environ.get("DJANGO_TEST_DB_NAME", "test_meinung") + "_bench_small"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/digest.py",
            "--n",
            str(N),
            "--naive-n",
            "20",
            "--raw-n",
            "1000",
            "--db",
            db,
            "--redis-db",
            "15",
            "--timeout",
            "240",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["n"] == N
    assert result["workers"] == 2
    assert result["accepted"] == N
    assert (result["duplicates"], result["missing"], result["unconfirmed"]) == (0, 0, 0)
    run = result["per_run"][0]
    assert run["state"] == "done"
    assert run["entitled"] == N
    for key in (
        "fanout_s",
        "recipients_per_s",
        "naive_recipients_per_s",
        "raw_ceiling_recipients_per_s",
        "api_calls",
        "cpu_us_per_recipient",
        "worker_peak_rss_mb",
    ):
        assert key in result, key
