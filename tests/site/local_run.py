"""The embedded default of `make run`, driven in a clean environment from the tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def local_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """None of the suite's PostgreSQL/Redis variables: SQLite and state under tmp_path."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_DEBUG": "1",
        "VAR_DIR": str(tmp_path / "var"),
        "DJANGO_ENV_FILE": str(tmp_path / "no.env"),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
