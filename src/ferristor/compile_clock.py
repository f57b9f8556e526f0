"""How long numba spends building kernels or loading them from its disk cache during a run.

The first run on a machine compiles every kernel it calls — tens of seconds, once; later processes
load them from the cache — a few seconds (~3 s for ``ferristor train`` on the 2-core development
machine). A run's speed is its steady state only without that cost, so ``fit`` times it apart and
reports both (``timing.compile_seconds``).
"""
from __future__ import annotations

_KIND = "numba:compiler_lock"  # held around every build and cache load (numba.core.compiler_lock)


class CompileClock:
    """Context manager: ``seconds`` is the time spent under numba's compiler lock while installed
    (nested builds counted once). Reading it mid-run is allowed: take differences around a section."""

    def __init__(self) -> None:
        self._listener = None

    def __enter__(self) -> "CompileClock":
        from numba.core import event  # here, not at import: fit's module stays light
        self._listener = event.TimingListener()
        event.register(_KIND, self._listener)
        return self

    def __exit__(self, *exc) -> None:
        from numba.core import event
        event.unregister(_KIND, self._listener)

    @property
    def seconds(self) -> float:
        return self._listener.duration if self._listener is not None and self._listener.done else 0.0
