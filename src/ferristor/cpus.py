"""The CPUs this process may run on: the bound of every thread and worker count."""
from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs in this process's affinity mask (what a container or ``taskset`` allows), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
