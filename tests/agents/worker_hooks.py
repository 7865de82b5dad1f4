"""Test-only hooks for real worker processes; never imported by Warden itself.

A test starts a worker with `--include tests.agents.worker_hooks` and, in the worker's
environment, `WARDEN_TEST_HOLD_TASK=<task name>` and `WARDEN_TEST_HOLD_LOCK=<path>`. Before a
task of that name runs (so before it claims anything in the database), the worker writes
`<path>.held` with the task's arguments and then blocks on an exclusive `flock` of `<path>`,
which the test holds. The test waits for the `.held` file and kills the worker there: the
kill lands at a known point in the task, with no sleep and no race.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from celery.signals import task_prerun


@task_prerun.connect
def hold_before_the_task(task: Any = None, args: Any = None, **_: Any) -> None:
    lock = os.environ.get("WARDEN_TEST_HOLD_LOCK")
    if not lock or task is None or task.name != os.environ.get("WARDEN_TEST_HOLD_TASK"):
        return
    Path(f"{lock}.held").write_text(json.dumps(list(args or ())))
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks for as long as the test holds the lock
