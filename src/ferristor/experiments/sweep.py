"""A resumable sweep runner: each trial is a config dict, each finished trial one JSON file.

A trial is identified by a stable hash of its JSON-normalised config, so a rerun of the same sweep
(after Ctrl-C, a crash or a killed job) finds what is done and runs only the rest. Each result is
written atomically the moment it arrives; an unreadable or mismatched file counts as not done.

Where trials run is an :class:`Executor`: the local one (default) runs them one after another in
this process; :class:`ProcessExecutor` runs N at once in worker processes (one per core for
batch-1 training). A cluster executor (e.g. Ray) only has to implement ``map`` and yield results
as they finish; saving stays in the driver process, so workers need no shared disk.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from ..atomic import atomic_write
from ..errors import ConfigError

KEY_LENGTH = 16  # hex digits of sha256: collisions are negligible for any sweep we will run


def normalise(value: Any, _where: str = "config") -> Any:
    """A JSON-ready copy: dataclasses → dicts, tuples → lists, numpy scalars → Python numbers, paths
    → strings. Dict keys must be strings. Ints and floats stay distinct (1 ≠ 1.0), as in JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(f"{_where} key", k, "a string")
        return {k: normalise(v, f"{_where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v, f"{_where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(_where, value, "a finite number (NaN/inf have no stable JSON form)")
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy / torch scalar
        return normalise(value.item(), _where)
    raise ConfigError(_where, value, "a JSON value (dict, list, str, number, bool, None)")


def canonical_json(config: dict) -> str:
    return json.dumps(normalise(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def trial_key(config: dict) -> str:
    """Stable across runs, processes and dict orderings: the same config always gets the same key."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:KEY_LENGTH]


class Executor(Protocol):
    def map(self, fn: Callable[[dict], dict], trials: Sequence[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
        """Run ``fn`` on each (index, config); yield (index, result) as each finishes, in any order.
        An exception from ``fn`` may propagate: results already yielded are kept."""


class LocalExecutor:
    """Runs trials one after another in this process."""

    def map(self, fn: Callable[[dict], dict], trials: Sequence[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
        for index, config in trials:
            yield index, fn(config)


class ProcessExecutor:
    """Runs up to ``workers`` trials at once, each in its own spawned process, and yields results
    as they finish. ``fn`` must be picklable (a module-level function or an instance of a
    module-level class). Trials are deterministic in their config, so the order does not matter."""

    def __init__(self, workers: int):
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError("workers", workers, "an integer ≥ 1")
        self.workers = workers

    def map(self, fn: Callable[[dict], dict], trials: Sequence[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # spawn, not fork: torch and numba keep thread pools that a forked child must not inherit.
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = {pool.submit(fn, config): index for index, config in trials}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    # successes first, so every trial that finished is saved before an error propagates
                    for future in sorted(finished, key=lambda f: f.exception() is not None):
                        yield pending.pop(future), future.result()
            finally:
                for future in pending:  # an error or a closed generator stops the trials not started
                    future.cancel()


def make_executor(workers: int = 1) -> Executor:
    """The local executor for one worker, a process pool for more."""
    return LocalExecutor() if workers == 1 else ProcessExecutor(workers)


def result_path(out_dir: str | os.PathLike, config: dict) -> Path:
    return Path(out_dir) / f"{trial_key(config)}.json"


def load_result(out_dir: str | os.PathLike, config: dict) -> dict | None:
    """The saved result of ``config``, or None if it is absent, corrupt or belongs to another config."""
    path = result_path(out_dir, config)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("config") != normalise(config) or not isinstance(record.get("result"), dict):
        return None
    return record["result"]


def save_result(out_dir: str | os.PathLike, config: dict, result: dict) -> dict:
    """Write the result file atomically; return the result as a rerun will read it back."""
    if not isinstance(result, dict):
        raise TypeError(f"a trial must return a dict, got {type(result).__name__}")
    path = result_path(out_dir, config)
    # Serialise first: a result that is not JSON fails before anything touches the disk.
    text = json.dumps({"key": trial_key(config), "config": normalise(config), "result": result}, indent=1, sort_keys=True)
    with atomic_write(path, "w") as f:
        f.write(text + "\n")
    return json.loads(text)["result"]


def run_sweep(trials: Iterable[dict], fn: Callable[[dict], dict], out_dir: str | os.PathLike,
              progress: bool = True, executor: Executor | None = None) -> list[dict]:
    """Run every trial not finished in ``out_dir``; return all results in trial order.

    ``fn`` receives the JSON-normalised config (lists for tuples) and returns a JSON-serialisable
    dict; the returned results are as read back from disk, so a first run and a rerun agree.
    ``fn`` must be deterministic in its config (seeds belong in the config), since a
    rerun reuses saved results. Identical configs run once and share their result.
    """
    from tqdm.auto import tqdm

    trials = [normalise(t) for t in trials]
    keys = [trial_key(t) for t in trials]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first_of: dict[str, int] = {}  # identical configs run once: the first occurrence stands for all
    for i, k in enumerate(keys):
        first_of.setdefault(k, i)
    done = {k: load_result(out_dir, trials[i]) for k, i in first_of.items()}
    todo = [(i, trials[i]) for k, i in first_of.items() if done[k] is None]
    with tqdm(total=len(first_of), initial=len(first_of) - len(todo), disable=not progress,
              desc=f"sweep {out_dir.name}", unit="trial") as bar:
        for i, result in (executor or LocalExecutor()).map(fn, todo):
            done[keys[i]] = save_result(out_dir, trials[i], result)
            bar.update(1)
    return [done[k] for k in keys]
