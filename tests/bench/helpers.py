"""Running a bench script the way a reader of the README does, and reading its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def run_bench(script: str, *args: str, db_suffix: str) -> dict:
    """`script` with `args` on a database of its own beside the suite's; the JSON of its last
    stdout line. A failing run fails the test with the end of what it logged."""
    db = os.environ.get("DJANGO_TEST_DB_NAME", "test_meinung") + db_suffix
    completed = subprocess.run(
        [sys.executable, script, *args, "--db", db],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
