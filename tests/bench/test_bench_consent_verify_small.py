"""bench/consent_verify.py at a small N: it verifies a chain it built and names a changed row.

Speed is the benchmark's business; this proves that the seeded chain is the one the writes
would have made (the command finds it intact) and that the tampering it measures is found.
"""

from __future__ import annotations

from tests.bench.helpers import run_bench


def test_small_verify_bench_builds_an_intact_chain_and_finds_the_change():
    result = run_bench("bench/consent_verify.py", "--n", "4000", db_suffix="_verify")
    assert result["n"] == 4000
    assert result["tamper_found"] is True
    assert result["events_per_s"] > 0 and result["extrapolated_10m_seconds"] > 0
