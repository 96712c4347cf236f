"""bench/admin.py at a small size: it seeds what it says and every page it measures answers
200 with the same number of queries in every round, so the README's figures can be
reproduced at any N."""

from __future__ import annotations

import os

from tests.bench.helpers import run_bench


def test_small_admin_bench_seeds_and_measures_every_page():
    # The suite's own Redis db (the bench empties it first), not one another run may use.
    redis_db = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[-1]
    result = run_bench(
        "bench/admin.py",
        "--n",
        "3000",
        "--rounds",
        "3",
        "--redis-db",
        redis_db or "0",
        db_suffix="_bench_admin",
    )
    rows = result["rows"]
    assert rows["subscription"] == 3000
    # A request and a confirmation mail for everyone, 2,700 confirmations, 300 revocations,
    # 1,200 changes of preferences.
    assert rows["consentevent"] == 3000 * 2 + 2700 + 300 + 1200
    assert rows["delivery"] == 2400
    pages = result["pages"]
    assert set(pages) == {
        "dashboard",
        "subscriptions",
        "subscriptions_filter",
        "subscriptions_search",
        "subscription_detail",
        "suppression_search",
        "digests",
        "campaigns",
        "digest_report",
    }
    for name, figures in pages.items():
        assert len(figures["queries"]) == 1, name
        assert figures["p95_ms"] > 0
    # Rebuilt from the roll-up: one query for the figures instead of five grouped counts.
    assert result["dashboard_cold"]["dashboard_rebuilt"]["queries"] == [5]
    # The roll-up counted what the seed wrote; the campaign went, through two real workers,
    # to every confirmed reader exactly once.
    assert result["roll_up"]["rows"] > 0
    campaign = result["campaign"]
    assert campaign["state"] == "done"
    assert campaign["n"] == campaign["accepted"] == 2400
    assert (campaign["duplicates"], campaign["missing"], campaign["unconfirmed"]) == (0, 0, 0)
    assert campaign["fanout_s"] < 60 and len(campaign["worker_peak_rss_mb"]) == 2
    assert result["machine"]["cores"]
