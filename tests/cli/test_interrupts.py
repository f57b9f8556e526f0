"""Ctrl-C: exit status 130 (128 + SIGINT) and one line, ``interrupted``, which for a command that
resumes says that rerunning it resumes; never click's "Aborted!" with status 1 (an unexpected
error), never a traceback, from the driver or from a sweep's worker processes."""
import json
import os
import signal
import subprocess
import sys
import time

import click
import pytest
import torch
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.data.registry import Dataset

RESUME = "interrupted: rerun the same command to resume from the last checkpoint"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("warning: ")]


@pytest.fixture
def tiny(monkeypatch):
    import ferristor.experiments.train as train_module
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 10
    x = (torch.rand(60, 784, generator=g) - 0.5) + y[:, None] / 10
    data = Dataset("mnist", x, y, x[:20], y[:20], 10)
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **kw: data)
    return data


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, click.exceptions.Abort])
def test_ctrl_c_in_train_exits_130_saying_a_rerun_resumes(tmp_path, tiny, monkeypatch, interrupt):
    import ferristor.experiments.fit as fit_module

    def stop(*a, **k):
        raise interrupt()
    monkeypatch.setattr(fit_module, "evaluate", stop)  # mid-run, after the first training steps
    r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--no-progress"])
    assert r.exit_code == 130, r.output
    assert _lines(r.stderr) == [RESUME] and "Aborted!" not in r.output and "Traceback" not in r.output


def test_ctrl_c_in_a_command_that_does_not_resume_just_says_interrupted(tmp_path, monkeypatch):
    import ferristor.sweeps.store as store_module

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(store_module, "open_store", stop)
    r = CliRunner().invoke(cli, ["results", str(tmp_path)])
    assert r.exit_code == 130 and _lines(r.stderr) == ["interrupted"], r.output


def _sweep_command(out, data_dir):
    """The CLI as a terminal runs it: SIGINT raises KeyboardInterrupt (whatever this test process
    inherited), in a process group of its own, so a Ctrl-C can be sent to the group as a terminal does."""
    argv = ["ferristor", "sweep", "--grid", "rule.k=10,100", "--set", "mode=hm", "--set", "epochs=0.5",
            "--set", "eval_every=0.01", "--set", "checkpoint_every=0.01", "--set", "test_limit=300", "--seeds", "0-1",
            "--workers", "1", "--no-progress", "--out", str(out), *(["--data-dir", data_dir] if data_dir else [])]
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            f"sys.argv = {argv!r}\nfrom ferristor.cli.main import main\nmain()\n")
    return [sys.executable, "-c", code]


def _running_worker(folder) -> int | None:
    """The pid of the worker process training a trial that has streamed an evaluation, once there is one."""
    from ferristor.sweeps.store import open_store
    try:
        store = open_store(folder, readonly=True)
    except Exception:  # noqa: BLE001 — not created yet
        return None
    try:
        row = store.db.execute("SELECT t.worker FROM trials t JOIN evals e ON e.trial = t.key "
                               "WHERE t.status = 'running' AND t.worker IS NOT NULL LIMIT 1").fetchone()
        return int(row[0].rsplit(":", 1)[1]) if row else None
    except Exception:  # noqa: BLE001 — tables not created yet
        return None
    finally:
        store.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_with_worker_processes_is_one_line_and_130(mnist_data_dir, tmp_path):
    """SIGINT to the sweep's whole process group (what a terminal's Ctrl-C does) while a worker
    process trains: the worker ignores it, the driver stops, kills the worker and says one line."""
    out = tmp_path / "s"
    driver = subprocess.Popen(_sweep_command(out, mnist_data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        deadline = time.time() + 240
        worker = None
        while worker is None and time.time() < deadline and driver.poll() is None:
            time.sleep(0.1)
            worker = _running_worker(out)
        assert worker is not None, driver.communicate(timeout=60)
        os.killpg(driver.pid, signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "Aborted!" not in stderr, stderr
    assert _lines(stderr)[-1] == RESUME, stderr
    end = time.time() + 10
    while _alive(worker) and time.time() < end:  # killed by the driver; init reaps it once the driver is gone
        time.sleep(0.1)
    assert not _alive(worker)
    lock = json.loads((out / ".sweep.lock").read_text())
    assert lock["pid"] == driver.pid  # (the lock itself went with the driver: a rerun takes it at once)


# --- a Ctrl-C while the commands load (torch, numba: about a second) --------------------------------

def _console_script() -> str:
    """The ``ferristor`` console script as pyproject.toml declares it (``module:function``)."""
    import tomllib
    from pathlib import Path
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["scripts"]["ferristor"]


def _run_console_script(prelude: str, *args: str) -> subprocess.CompletedProcess:
    """The console script run as pip's generated one runs it (``sys.exit(function())``), after
    ``prelude``, in a process whose SIGINT raises KeyboardInterrupt (a terminal's Ctrl-C)."""
    module, function = _console_script().split(":")
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            f"{prelude}\nsys.argv = ['ferristor', *{list(args)!r}]\n"
            f"from {module} import {function}\nsys.exit({function}())\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


# A real SIGINT, sent by the process to itself at the moment it starts importing torch: the Ctrl-C
# of a user who pressed it in the first second, at a deterministic point (no race with a timer).
_SIGINT_IN_IMPORT_TORCH = """
import importlib.abc, os
class _CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, _CtrlC())
"""


@pytest.mark.parametrize("command", [["params"], ["train", "--help"]])
def test_ctrl_c_while_the_commands_load_is_one_line_and_130(command):
    p = _run_console_script(_SIGINT_IN_IMPORT_TORCH, *command)
    assert p.returncode == 130, p.stderr
    assert p.stderr == "interrupted\n" and p.stdout == "", p.stderr


def test_the_console_script_runs_the_commands():
    p = _run_console_script("", "--version")
    assert p.returncode == 0 and "0.1.0" in p.stdout, p.stderr


def test_the_console_script_and_the_package_import_nothing_heavy():
    """What runs before the console script's ``try`` (``import ferristor``, its module) loads no torch,
    numba or click: a Ctrl-C there would escape as a traceback."""
    module = _console_script().split(":")[0]
    code = (f"import sys, ferristor, {module}\n"
            "print(sorted(m for m in ('torch', 'numba', 'numpy', 'click') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stderr


def test_every_public_name_of_the_package_still_resolves():
    import ferristor
    for name in ferristor.__all__:
        assert getattr(ferristor, name) is not None, name
