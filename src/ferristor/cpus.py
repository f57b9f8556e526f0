"""The CPUs this process may run on: the bound of every thread and worker count."""
from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs in this process's affinity mask (what a container or ``taskset`` allows), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def describe() -> str:
    """The CPU in words, for benchmark tables: the model name the kernel reports (``platform.processor()``
    is empty on Linux) and LLVM's name of the core numba builds for, e.g. 'AMD EPYC (znver3), 2 CPUs'."""
    import platform
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:  # not Linux
        pass
    name = name or platform.processor() or platform.machine()
    try:
        from llvmlite import binding as ll
        name += f" ({ll.get_host_cpu_name()})"
    except ImportError:
        pass
    return f"{name}, {available_cpus()} CPUs"
