"""bench/digest.py at a small N: the benchmark's own accounting must be exact.

Speed is the benchmark's business; this only proves that the measured path delivers each
confirmed subscriber exactly once, leaves out everyone else, and reports it in its JSON.
"""

from __future__ import annotations

import os

import pytest

from tests.bench.helpers import run_bench

N = 3_000

pytestmark = pytest.mark.worker


def test_small_digest_bench_is_exact():
    result = run_bench(
        "bench/digest.py",
        "--n",
        str(N),
        "--naive-n",
        "20",
        "--raw-n",
        "1000",
        "--redis-db",
        "15",
        "--timeout",
        "240",
        db_suffix="_bench_small",
    )
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


def test_small_kill_scenario_is_exact_and_reports_recovery():
    # The suite's own Redis db: the bench flushes the db it is given.
    redis_db = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[1]
    result = run_bench(
        "bench/digest.py",
        "--n",
        "1000",
        "--naive-n",
        "0",
        "--raw-n",
        "0",
        "--faults",
        "--fault-scenarios",
        "kill_3x",
        "--kill-n",
        "8000",
        "--set",
        "NEWSLETTER_BATCH_SIZE=250",
        "--redis-db",
        redis_db,
        "--timeout",
        "240",
        db_suffix="_bench_kill",
    )
    killed = result["faults"]["kill_3x"]
    assert killed["per_run"][-1]["kills"] == 3
    assert killed["accepted"] == 8000
    assert (killed["duplicates"], killed["missing"], killed["unconfirmed"]) == (0, 0, 0)
    assert killed["rate_vs_fault_free"] > 0
    starts = killed["start_to_first_claim_s"]
    assert len(starts) == 3 and all(s["from_spawn"] is not None for s in starts), starts
    machine = result["machine"]
    for key in ("cpu_model", "cores", "python", "django", "postgresql", "redis"):
        assert machine[key], key
    assert len(machine["load_before"]) == 3 and len(machine["load_after"]) == 3


def test_small_campaign_bench_is_exact_and_reports_the_fan_out_rate():
    redis_db = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[1]
    result = run_bench(
        "bench/digest.py",
        "--campaign",
        "--n",
        "2000",
        "--naive-n",
        "0",
        "--raw-n",
        "0",
        "--redis-db",
        redis_db,
        "--timeout",
        "240",
        db_suffix="_bench_campaign",
    )
    run = result["per_run"][0]
    assert run["kind"] == "campaign" and run["state"] == "done"
    assert result["accepted"] == run["entitled"] == 2000
    assert (result["duplicates"], result["missing"], result["unconfirmed"]) == (0, 0, 0)
    assert result["fanout_rows_per_s"] > 0
