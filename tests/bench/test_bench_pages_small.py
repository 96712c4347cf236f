"""bench/pages.py at a small size: every scenario runs and answers without errors.

Speed is the benchmark's business; this proves that each scenario reaches the page it claims
to measure (200s, a real signup redirect, uncached requests that are all page misses) and that
the digest sent alongside is exact, so that the figures the README quotes can be reproduced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.worker


def test_small_pages_bench_runs_every_scenario_without_errors():
    db = os.environ.get("DJANGO_TEST_DB_NAME", "test_meinung") + "_bench_pages"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/pages.py",
            "--seconds",
            "1",
            "--runs",
            "1",
            "--archive",
            "3000",
            "--digest-n",
            "60000",
            "--gunicorn-workers",
            "2",
            "--db",
            db,
            "--redis-db",
            "12",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    for scenario in (
        "article_cached",
        "list_cached",
        "article_uncached",
        "article_cache_off",
        "list_cache_off",
        "signup_post",
        "article_during_digest",
    ):
        figures = result[scenario]
        assert figures["errors"] == 0, (scenario, figures)
        assert figures["rps"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0, scenario
    digest = result["article_during_digest"]["digest"]
    assert digest["accepted"] == digest["n"] == 60_000
    assert (digest["duplicates"], digest["missing"]) == (0, 0)
    assert "p99_vs_idle" in result["article_during_digest"]
