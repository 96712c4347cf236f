"""bench/pages.py at a small size: every scenario runs and answers without errors.

Speed is the benchmark's business; this proves that each scenario reaches the page it claims
to measure (200s, a real signup redirect, uncached requests that are all page misses) and that
the digest sent alongside is exact, so that the figures the README quotes can be reproduced.
"""

from __future__ import annotations

import pytest

from tests.bench.helpers import run_bench

pytestmark = pytest.mark.worker


def test_small_pages_bench_runs_every_scenario_without_errors():
    result = run_bench(
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
        "--redis-db",
        "12",
        db_suffix="_bench_pages",
    )
    for scenario in (
        "article_cached",
        "list_cached",
        "article_uncached",
        "article_image_cached",
        "article_image_uncached",
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
    states = result["signup_states"]
    for state in ("new", "pending", "confirmed", "unsubscribed", "suppressed"):
        assert states[state]["errors"] == 0, (state, states)
        assert states[state]["requests"] > 0 and states[state]["p50_ms"] > 0, state
    assert states["p50_spread"] >= 0
