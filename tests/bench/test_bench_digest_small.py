"""bench/digest.py at a small N: the benchmark's own accounting must be exact.

Speed is the benchmark's business; this only proves that the measured path delivers each
confirmed subscriber exactly once, leaves out everyone else, and reports it in its JSON.
"""

from __future__ import annotations

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
