"""The sweep driver: runs every unfinished trial on an executor and is the only writer of the store.

Guarantees, whatever is killed when (driver or worker, kill -9 included):

* a finished trial is never lost: it is committed in one transaction the moment its results arrive;
* a wrong one is never recorded: a trial counts as done only with its complete results, checked
  against its config and seeds; evaluation rows streamed before a crash are replaced by the final
  history; rows of unfinished trials are never shown as results;
* the same command again resumes: finished trials are skipped, interrupted ones restart from their
  latest checkpoint (held in the store, shipped to the worker), so the numbers equal an
  uninterrupted sweep's (training is deterministic in the config and resumes bit for bit);
* a trial that keeps failing is retried ``max_retries`` times, then recorded as failed with its
  error (``--retry-failed`` tries it again later);
* trials that differ only in the ledger's costs and ratings (``trials.training_key``) train once:
  the others are priced from its results (``trials.priced``), at once if it finished before;
* one driver per sweep folder: a second one is refused at once (``ferristor.locking``), and so is a
  ``train`` (or any command claiming the folder as its ``--out``): :func:`sweep_lock`.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import FerristorWarning
from ..locking import exclusive_all
from .executors import Executor, ProcessExecutor
from .progress import Progress
from .provenance import code_version
from .store import UnreadableStore, open_store
from .trials import EXECUTION_FIELDS, Trial, priced, training_key
from .worker import Job

LOCK_NAME = ".sweep.lock"
SPEC_TRIALS = "spec_trials"  # meta: a hash of the trial keys the recorded spec expanded to (_trial_set)
RUN_LOCK_NAME = ".lock"  # what ``train`` and every command claiming an --out hold (experiments.run_folder.LOCK)


# How long a driver tries again for a folder lock another process holds: ``run.driver_running`` (the
# probe of ``results`` and ``--dry-run``) holds .sweep.lock shared for an instant, which must not make
# a driver starting then refuse the folder, naming the last holder the lock file records.
LOCK_WAIT_S = 1.0


@contextlib.contextmanager
def sweep_lock(folder: str | Path):
    """Hold ``folder`` as its one writer: ``.sweep.lock`` (sweeps, ``results --import``, ``reproduce``'s
    figures), then ``.lock``, the lock of ``train`` and the other commands' ``--out``, so a sweep and a
    run never write one folder at once. Reentrant in one process; FolderBusy, naming the holder, if
    another process holds either for longer than ``LOCK_WAIT_S`` (a probe's instant is waited out)."""
    with exclusive_all(folder, (LOCK_NAME, RUN_LOCK_NAME), "sweep folder", LOCK_WAIT_S) as held:
        yield held


@dataclass
class Outcome:
    folder: Path
    trials: list[Trial]
    status: dict[str, str]  # key → pending/running/done/failed
    errors: dict[str, str] = field(default_factory=dict)  # key → last error of failed trials
    ran: int = 0  # trials finished by this call
    priced: int = 0  # of which priced from a twin's training (other ledger costs), not trained

    def count(self, status: str) -> int:
        return sum(s == status for s in self.status.values())


def run_sweep(trials: list[Trial], folder: str | Path, datasets: dict, *, executor: Executor | None = None,
              max_retries: int = 2, retry_failed: bool = False, progress: bool = True,
              meta: dict[str, Any] | None = None, name: str | None = None) -> Outcome:
    """Run the trials not yet done in ``folder``'s store; ``datasets`` maps each dataset name the
    trials use to the loaded Dataset (the tensors their keys fingerprint)."""
    folder = Path(folder)
    with sweep_lock(folder):
        store = open_store(folder)
        try:
            return _Run(store, folder, trials, datasets, executor or ProcessExecutor(1), max_retries,
                        progress, name or folder.name).run(retry_failed, meta)
        finally:
            store.close()


class _Run:
    def __init__(self, store, folder, trials, datasets, executor, max_retries, progress, name):
        self.store, self.folder, self.trials, self.datasets = store, folder, trials, datasets
        self.executor, self.max_retries, self.show, self.name = executor, max_retries, progress, name
        self.by_key = {t.key: t for t in trials}
        self.todo: collections.deque[Trial] = collections.deque()
        self.running: set[str] = set()
        self.ran = self.priced = 0
        self.twins: dict[str, list[Trial]] = {}  # training key → pending trials waiting for its training

    def run(self, retry_failed: bool, meta: dict | None) -> Outcome:
        store = self.store
        self._no_unreadable_trials()
        store.register(self.trials)
        for k, v in (meta or {}).items():
            value, before = json.dumps(v, sort_keys=True), store.meta(k)
            if k == "spec":
                self._record_spec(value, before)
            store.set_meta(k, value)
        status = store.status(self.by_key)
        if retry_failed:
            store.retry_failed([k for k, r in status.items() if r["status"] == "failed"])
            status = store.status(self.by_key)
        self._queue([t for t in self.trials if status[t.key]["status"] == "pending"])
        status = store.status(self.by_key)
        done = sum(r["status"] == "done" for r in status.values())
        failed = sum(r["status"] == "failed" for r in status.values())
        started = bool(self.todo)
        if started:
            self.executor.start(self.datasets, self.sink)  # before the bar: a start error is the only output
        self.bar = Progress(len(self.trials), done, failed, self.name, self.show)
        try:
            if started:
                self._loop()
        finally:
            self.bar.close()
            if started:
                self.executor.close()
        final = store.status(self.by_key)
        return Outcome(self.folder, self.trials, {k: r["status"] for k, r in final.items()},
                       {k: r["error"] for k, r in final.items() if r["status"] == "failed"}, self.ran, self.priced)

    def _no_unreadable_trials(self) -> None:
        """Refuse a store whose row of one of these trials cannot say what the trial is (its params,
        config or identity unreadable JSON): the key matches, so a rerun had counted a done one as
        done, results skipping it ("2/2 trials done, 0 ran now" over a damaged row). A damaged result
        alone is left to the caller, which reads the results (reproduce says it, naming --fresh)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FerristorWarning)
            self.store.trials()
        for key, row in self.store.damaged.items():
            lost = [c for c in ("params", "config", "identity") if row.get(c) is None]
            if key in self.by_key and lost:
                raise UnreadableStore(self.store.path, f"trial {key}: {self.store.unreadable.get(key, 'damaged')}")

    def _record_spec(self, value: str, before: str | None) -> None:
        """Keep the recorded spec this run's (``value``) replaces in ``earlier_specs`` (oldest first)
        when it expanded to other trials (another sweep --merge'd in, a grid grown or run in part), so
        no sweep that wrote the store goes unrecorded; a rerun of the same trials (other threads,
        values reordered or written otherwise) only replaces it. The trials are told by ``spec_trials``,
        a hash of the keys each recorded spec expanded to; a store from before it was kept compares
        the specs without their name and execution fields."""
        store = self.store
        ours, theirs = _trial_set(self.trials), store.meta(SPEC_TRIALS)
        if before is not None and before != value:
            same = theirs == ours if theirs is not None else _same_spec(before, value)
            if not same:
                try:
                    earlier = json.loads(store.meta("earlier_specs") or "[]")
                    earlier = earlier if isinstance(earlier, list) else [earlier]
                except ValueError:
                    earlier = [store.meta("earlier_specs")]
                try:
                    replaced = json.loads(before)
                except ValueError:
                    replaced = before
                if replaced not in earlier:  # a spec run again after another: recorded once
                    earlier.append(replaced)
                store.set_meta("earlier_specs", json.dumps(earlier, sort_keys=True))
        store.set_meta(SPEC_TRIALS, ours)

    def _queue(self, pending: list[Trial]) -> None:
        """Queue the pending trials, one per training key: one whose twin (the same training, other
        ledger costs) is done in the store is priced from it now, and the rest of a group wait for
        the first one's results."""
        finished = {}
        for row in self.store.trials("done"):
            finished.setdefault(training_key(row["identity"]), row)
        for t in pending:
            tk = training_key(t.identity)
            if tk in finished and self._price(t, finished[tk]["result"], None, finished[tk]["key"],
                                              finished[tk].get("code_version")):
                continue
            if tk in self.twins:
                self.twins[tk].append(t)
            else:
                self.twins[tk] = []
                self.todo.append(t)

    def _price(self, t: Trial, results: dict, source: Trial | None, source_key: str, version: str | None) -> bool:
        """Record ``t`` as done with the results of ``source`` (a trial of this sweep, shown on the bar;
        None: one finished before) priced at its costs; False (nothing recorded) if they do not check
        out as ``t``'s."""
        out = priced(t, results, source_key)
        if _check(t, out):
            return False
        self.store.finish(t.key, out, version or code_version())
        self.ran += 1
        self.priced += 1
        if source is not None:
            self.bar.priced(t.params, out, source.params)
        return True

    def _loop(self) -> None:
        while self.todo or self.executor.busy():
            while self.todo and self.executor.has_room():
                t = self.todo.popleft()
                attempt = self.store.mark_running(t.key)
                ckpt = self.store.checkpoint(t.key)
                self.executor.submit(Job(t.key, t.config, attempt, ckpt[1] if ckpt else None,
                                         threads=t.config.get("threads", 1)))
            self.executor.poll(0.5)

    # -- events from the executor -----------------------------------------------------------------
    def sink(self, key: str, kind: str, payload: Any) -> None:
        t = self.by_key[key]
        if kind == "started":
            self.running.add(key)
            self.store.set_worker(key, f"{payload['host']}:{payload['pid']}")
            self.bar.started(t.params, f"{payload['host']}:{payload['pid']}", payload["attempt"])
        elif kind == "eval":
            self.store.add_eval(key, t.seeds, payload)
        elif kind == "checkpoint":
            self.store.save_checkpoint(key, int(payload["step"]), payload["state"])
        elif kind == "checkpoint_dropped":  # unreadable or not loading: gone, so no retry gets it again
            self.store.drop_checkpoint(key)
            from .progress import label
            with self.bar.external():
                warnings.warn(FerristorWarning(
                    f"trial {label(t.params)} [{key}]: its checkpoint in {self.folder} cannot be used: {payload}; "
                    f"dropped, the trial starts over from step 0 (to the same numbers: training is deterministic)"),
                    stacklevel=2)
        elif kind == "done":
            problem = _check(t, payload)
            if problem:
                return self._failed(t, f"RuntimeError: the worker returned wrong results: {problem}")
            version = payload.get("code_version") or code_version()
            self.store.finish(key, payload, version)  # the worker's own record
            self.running.discard(key)
            self.ran += 1
            self.bar.finished(t.params, payload)
            for twin in self.twins.pop(training_key(t.identity), []):
                if not self._price(twin, payload, t, key, version):
                    self.todo.append(twin)
        elif kind in ("error", "crashed"):
            self._failed(t, str(payload))
        else:
            raise ValueError(f"unknown event {kind!r} from the executor")

    def _failed(self, t: Trial, error: str) -> None:
        failures = self.store.failures(t.key) + 1
        give_up = failures > self.max_retries
        self.store.fail(t.key, error, give_up)
        self.bar.failed_attempt(t.params, error, retry=not give_up, was_running=t.key in self.running)
        self.running.discard(t.key)
        if not give_up:
            self.todo.append(t)  # resubmitted with the latest checkpoint the store holds
        else:  # its twins train themselves (and most likely fail the same way, each with its own record)
            self.todo.extend(self.twins.pop(training_key(t.identity), []))


def _trial_set(trials: list[Trial]) -> str:
    """A hash of a spec's trial keys (in any order): two specs with the same one run the same trials."""
    return hashlib.sha256("\n".join(sorted(t.key for t in trials)).encode()).hexdigest()


def _same_spec(a: str, b: str) -> bool:
    """Whether two recorded specs (JSON) are one, their name and execution fields (threads, …) aside."""
    from .run import _comparable
    try:
        return _comparable(json.loads(a)) == _comparable(json.loads(b))
    except (ValueError, TypeError, AttributeError):
        return False


def _check(t: Trial, results: Any) -> str | None:
    """Why ``results`` cannot be this trial's, or None."""
    if not isinstance(results, dict) or not results.get("history"):
        return "no evaluation history"
    if results.get("seeds") != t.seeds:
        return f"seeds {results.get('seeds')} instead of {t.seeds}"
    got = {k: v for k, v in json.loads(json.dumps(results.get("config", {}))).items() if k not in EXECUTION_FIELDS}
    want = {k: v for k, v in t.config.items() if k not in EXECUTION_FIELDS}
    if got != want:
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        return f"another config (differs in {', '.join(diff)})"
    if any(len(h["test_accuracy"]) != len(t.seeds) for h in results["history"]):
        return "an evaluation without one accuracy per seed"
    return None


def summary_lines(outcome: Outcome) -> Iterable[str]:
    from .progress import label
    n = len(outcome.trials)
    yield (f"sweep {outcome.folder}: {outcome.count('done')}/{n} trial{'s' if n != 1 else ''} done, {outcome.count('failed')} failed, "
           f"{outcome.count('pending') + outcome.count('running')} not run; {outcome.ran} ran now"
           + (f" ({outcome.priced} priced from a twin's training: other ledger costs, no training)" if outcome.priced else ""))
    for t in outcome.trials:
        if outcome.status.get(t.key) == "failed":
            err = (outcome.errors.get(t.key) or "").strip().splitlines()
            yield f"  FAILED {label(t.params)} [{t.key}]: {err[0] if err else 'unknown error'}"
    if outcome.count("failed"):
        yield "  (rerun with --retry-failed to try the failed trials again)"
