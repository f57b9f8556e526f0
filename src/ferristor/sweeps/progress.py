"""The sweep's progress: one bar (trials done / running / failed, ETA) and one line per trial event.

``Progress(..., enabled)``: True shows both, :data:`LINES` the event lines only (``--no-progress``:
a retry after a killed worker stays visible without a bar), False nothing (Python callers, tests).
"""
from __future__ import annotations

import json
import sys

import numpy as np

LINES = "lines"  # the event lines without the bar


def bars_aside():
    """A block that writes to the terminal itself (a warning): any bar steps aside meanwhile. A class
    method of tqdm's, over every bar of this process, so an executor relaying a worker's warning needs
    no handle on the driver's bar."""
    from tqdm.auto import tqdm
    return tqdm.external_write_mode(file=sys.stderr)


def label(params: dict) -> str:
    return " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in params.items()) or "(base)"


def _a_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a stream without isatty, or closed
        return False


def seeds_word(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


class Progress:
    def __init__(self, total: int, done: int, failed: int, name: str, enabled: bool | str = True):
        self.enabled, self.running, self.failed = enabled, 0, failed
        self.bar = None
        if enabled is True and not _a_terminal(sys.stderr):
            self.enabled = enabled = LINES  # a log file or pipe: the start/done lines, not a bar's \r frames
        if enabled is True:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=done + failed, desc=f"sweep {name}", unit="trial",
                            dynamic_ncols=True, mininterval=0.5)
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"running {self.running}, failed {self.failed}")

    def external(self):
        """A block that writes to the terminal itself (a warning): the bar steps aside meanwhile."""
        import contextlib
        return contextlib.nullcontext() if self.bar is None else bars_aside()

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)  # to stdout, above the bar (on stderr)
        elif self.enabled:
            import click
            click.echo(text)  # where the bar's lines go

    def started(self, params: dict, worker: str, attempt: int) -> None:
        self.running += 1
        self._postfix()
        self.line(f"start  {label(params)}  on {worker}" + (f"  (attempt {attempt})" if attempt > 1 else ""))

    def finished(self, params: dict, results: dict) -> None:
        self.running -= 1
        self._done(f"done   {label(params)}", results, f"  {results['timing']['train_seconds']:.1f} s")

    def priced(self, params: dict, results: dict, twin: dict) -> None:
        """A trial priced from its twin's training (``twin``'s params): other ledger costs, no training."""
        self._done(f"priced {label(params)}", results, f"  (the training of {label(twin)}, other ledger costs)")

    def _done(self, head: str, results: dict, tail: str) -> None:
        acc = 100 * np.asarray(results["final_test_accuracy"])
        spread = f" ± {acc.std(ddof=1):.2f}" if acc.size > 1 else ""
        from ..experiments.compare import device_cells
        devices = device_cells(results)  # energy, memristor ops per device, margins: what a device sweep varies
        self.line(f"{head}  accuracy {acc.mean():.2f}{spread} % ({seeds_word(acc.size)})"
                  + (f"  {devices[0]} · {devices[1]} memristor ops / device" if devices else "") + tail)
        if self.bar is not None:
            self.bar.update(1)
        self._postfix()

    def failed_attempt(self, params: dict, error: str, retry: bool, was_running: bool) -> None:
        self.running -= was_running
        first = error.strip().splitlines()[0] if error.strip() else "unknown error"
        if retry:
            self.line(f"retry  {label(params)}  after: {first}")
        else:
            self.failed += 1
            self.line(f"FAILED {label(params)}  {first}")
            if self.bar is not None:
                self.bar.update(1)
        self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
