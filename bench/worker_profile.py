"""cProfile in a bench worker's pool process, switched on by the ``BENCH_PROFILE`` environment
variable (a path prefix; bench/digest.py --profile sets it for its first worker only).

Only the bench's workers load this module (``--include``), so production workers never carry a
profiler. The profile counts CPU time (``time.process_time``), not wall time, so a worker
waiting on the provider, PostgreSQL or the broker adds nothing: it answers "where does the
worker's CPU per recipient go". It is written after every task, because a bench stops its
workers with a signal and the pool child may not get to run any hook at exit.
"""

from __future__ import annotations

import cProfile
import os
import time

from celery.signals import task_postrun, worker_process_init

_profiles: dict[int, cProfile.Profile] = {}


def profile_path(prefix: str, pid: int) -> str:
    return f"{prefix}.{pid}.prof"


@worker_process_init.connect
def _profile_start(**_kwargs) -> None:
    if os.environ.get("BENCH_PROFILE"):
        profile = cProfile.Profile(time.process_time)
        _profiles[os.getpid()] = profile
        profile.enable()


@task_postrun.connect
def _profile_dump(**_kwargs) -> None:
    profile = _profiles.get(os.getpid())
    if profile is None:
        return
    profile.disable()
    profile.dump_stats(profile_path(os.environ["BENCH_PROFILE"], os.getpid()))
    profile.enable()
