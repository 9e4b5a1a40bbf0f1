"""Job kinds that exist only for tests: slow, controllable work to watch progress, cancel and restart.

The tests' Celery workers load this module with ``--include tests.job_kinds_for_tests``.
"""
import time

from jobs.registry import job_kind


def count_slowly(ctx, n: int = 10, delay: float = 0.1, fail_at: int | None = None) -> dict:
    for i in range(n):
        time.sleep(delay)
        if fail_at == i:
            raise RuntimeError(f"failed on purpose at step {i}")
        ctx.progress((i + 1) / n, f"counted {i + 1} of {n}")
    return {"counted": n}


job_kind("test_count", title="Count slowly (tests)")(count_slowly)
# The same work on a queue that only the restart test's worker consumes.
job_kind("test_count_isolated", queue="test-isolated", title="Count slowly on its own queue (tests)")(count_slowly)
