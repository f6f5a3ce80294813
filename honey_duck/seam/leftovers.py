"""What writers leave behind when they die, and how the next writer knows it may reclaim it."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs with this PID (one of another user's counts).

    Targets that name their leftovers after the writer's host and PID (staging files,
    staging collections) ask this before reclaiming one.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
