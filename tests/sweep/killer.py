"""A run-process body that dies hard (SIGKILL) for one grid point: a stand-in for the OOM killer.

Importable by spawned children (they unpickle the target by module and name).
"""

from __future__ import annotations

import os
import signal

from scalefree.sweep import executors

DOOMED_WEIGHT_DECAY = 5e-4


def child(task, send, *rest) -> None:
    if task.config.weight_decay == DOOMED_WEIGHT_DECAY:
        os.kill(os.getpid(), signal.SIGKILL)
    executors._child(task, send, *rest)
