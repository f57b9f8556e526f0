"""How wide a vector numba's machine code for ferristor's kernels may use.

LLVM tunes Intel's AVX-512 server cores (Skylake-SP to Emerald Rapids) to prefer 256-bit vectors
(its ``prefer-256-bit`` tuning feature). There, ferristor's masked update is bound by the two
execution ports that take 256-bit integer multiplies and shifts (the hash of every weight); with
512-bit registers the same instructions process twice the lanes per µop. Measured on a 2-core
Emerald Rapids (BENCHMARKS.md, "512-bit vectors"): the layer-1 update of 50 steps 0.330 against
0.524 ns per weight on one thread, R = 10 compiled chunks 0.230× against 0.341× the plain PyTorch loop.

The bits do not change: no kernel reorders a sum (no fastmath, ``kernels_cpu``), so the width only
sets how many independent lanes run at once (``tests/test_determinism.py`` trains both widths,
and a generic x86 build, and compares).

``FERRISTOR_VECTOR_WIDTH``: ``512`` (default) lets LLVM use 512-bit vectors where the CPU has
AVX-512 (except the Skylake-SP family, ``DOWNCLOCKING_CPUS``); ``llvm`` keeps LLVM's own tuning. Settings of numba's own
(``NUMBA_CPU_NAME``, ``NUMBA_CPU_FEATURES``) always win, and once numba has compiled anything in
the process its target is fixed, so this applies only when ferristor's kernels are the first — and,
numba having one target per process, to any numba code compiled after them too.
An unknown value warns at import (numba keeps its own width) and stops a run before any work.
"""
from __future__ import annotations

import os
import warnings

from .errors import ConfigError, FerristorWarning

ENV = "FERRISTOR_VECTOR_WIDTH"
CHOICES = ("512", "llvm")
DEFAULT = "512"
_PREFER_256 = "-prefer-256-bit"


def choice() -> str:
    """The user's choice, validated: ``FERRISTOR_VECTOR_WIDTH`` or the default."""
    value = os.environ.get(ENV, DEFAULT)
    if value not in CHOICES:
        raise ConfigError(ENV, value, "'512' (512-bit vectors where the CPU has AVX-512) or 'llvm' (LLVM's own choice)")
    return value


# Skylake-SP and its refreshes lower the whole core's clock while 512-bit instructions run, which is
# why LLVM prefers 256 there in the first place; on them ferristor keeps LLVM's choice (not measured).
DOWNCLOCKING_CPUS = ("skylake-avx512", "cascadelake", "cooperlake")


def features_for(host_features: str, width: str, cpu_name: str = "") -> str | None:
    """The LLVM feature string numba should target for ``width`` on CPU ``cpu_name`` (LLVM's name),
    or None to leave numba's own."""
    if width != "512" or "+avx512f" not in host_features.split(",") or cpu_name in DOWNCLOCKING_CPUS:
        return None
    return f"{host_features},{_PREFER_256}"


def configure() -> str | None:
    """Set numba's target features for this process if nothing has fixed them yet; returns the
    features set, or None where numba keeps its own (no AVX-512, ``llvm`` chosen, numba's
    settings given, or its CPU target already built)."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features
    from numba.core.registry import cpu_target

    try:
        width = choice()
    except ConfigError as e:  # at import: warn and keep numba's own; the CLI refuses it (ExperimentConfig)
        warnings.warn(FerristorWarning(f"not allowed (expected {e.allowed}); numba keeps its own vector width",
                                       ENV, e.value), stacklevel=2)
        return None
    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return None
    if "_toplevel_target_context" in cpu_target.__dict__:  # built: its target machine is fixed
        return None
    from llvmlite import binding as ll
    features = features_for(get_host_cpu_features(), width, ll.get_host_cpu_name())
    if features is not None:
        config.CPU_FEATURES = features
    return features


def in_effect() -> str:
    """'512' where numba's target in this process lifts LLVM's 256-bit preference, else 'llvm' (its
    own choice for the CPU): for run records, since it moves the speed, never the results."""
    from numba.core import config
    features = config.CPU_FEATURES or ""
    return "512" if _PREFER_256 in features.split(",") else "llvm"
