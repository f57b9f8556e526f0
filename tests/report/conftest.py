"""Fixtures of the report tests: small real runs and sweeps, and a headless Debian Chromium.

The browser comes from Debian's ``chromium`` and ``chromium-driver`` packages, installed here with
apt-get when missing (CI runs as root). Without a browser the browser tests fail, never skip: they
are the issue's acceptance test.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # screenshots kept for people to look at (gitignored)


def _install_chromium() -> str | None:
    """Install Debian's chromium + chromium-driver; None on success, else why not."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root or no apt-get: install them with `apt-get install -y chromium chromium-driver`"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]  # other apt users on a shared machine: wait, don't fail
    for cmd in (["apt-get", *lock, "update", "-q"],
                ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode:
            return f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout).strip()[-500:]}"
    return None


def _have_chromium() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> tuple[str, str]:
    """Paths of the chromium binary and its driver, installing them once when missing. The test
    workers (pytest-xdist) share one lock file, so one installs while the others wait and then
    find the browser there (apt's own locks do not cover a concurrent ``apt-get update``)."""
    if not _have_chromium():
        import fcntl
        lock_path = tmp_path_factory.getbasetemp().parent / "chromium-install.lock"  # shared by the workers
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            why = None if _have_chromium() else _install_chromium()
        if why or not _have_chromium():
            pytest.fail(f"the report's browser test needs Debian's chromium and chromium-driver: {why or 'not found after install'}")
    return CHROMIUM, CHROMEDRIVER


# --- small real runs and sweeps -----------------------------------------------------------------

def synthetic_mnist(n_train: int = 400, n_test: int = 200, seed: int = 0):
    """MNIST-shaped data (784 inputs, 10 classes) that a few hundred samples learn: noisy prototypes."""
    import torch

    from ferristor.data import Dataset
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(10, 784, generator=g) * 2 - 1

    def draw(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return (protos[y] + 0.8 * torch.randn(n, 784, generator=g)).clamp(-1, 1), y
    (xtr, ytr), (xte, yte) = draw(n_train), draw(n_test)
    return Dataset("mnist", xtr, ytr, xte, yte, 10)


@pytest.fixture(scope="session")
def offline_mnist():
    return synthetic_mnist()


def _cli_on(data, *args):
    """Run a ferristor command whose training reads ``data`` in place of MNIST (the real code path,
    no files); the substitution ends with the command, so no other test sees it. Both loaders: `train`
    reads through experiments.train, a sweep (`reproduce`) through ferristor.data (it had trained the
    small sweep on the full MNIST: 12,000 samples a point, 30 s of the fast tier)."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    with pytest.MonkeyPatch.context() as mp:
        for loader in ("ferristor.experiments.train.load_dataset", "ferristor.data.load_dataset"):
            mp.setattr(loader, lambda name, data_dir=None, **kw: data)
        r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="session")
def small_run(offline_mnist, tmp_path_factory, worker_id) -> Path:
    """A two-seed hm-var run with three evaluations, written by the real `ferristor train`."""
    return _built_once(tmp_path_factory, worker_id, "small-run", lambda out: _cli_on(
        offline_mnist, "train", "--mode", "hm-var", "--epochs", "0.75", "--eval-every", "0.25", "--seeds", "0-1", "--k", "20",
        "--out", out, "--no-progress"))


@pytest.fixture(scope="session")
def small_sweep(offline_mnist, tmp_path_factory, worker_id) -> Path:
    """A k sweep (3 points × 2 seeds) written by the real `ferristor reproduce fig5c`; returns its fig5cde folder.
    0.15 × the paper's 10 epochs of the 400 samples: 600 a point, so k = 100 still transfers (6 times)."""
    return _built_once(tmp_path_factory, worker_id, "reproduce", lambda out: _cli_on(
        offline_mnist, "reproduce", "fig5c", "--seeds", "0-1", "--epoch-scale", "0.15", "--k", "5,20,100", "--out", out,
        "--no-progress")) / "fig5cde"


def _built_once(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """``build(folder)`` once for all test workers (pytest-xdist): the first to ask builds it under a
    lock shared by the workers, the others wait and read it (tests copy it before changing anything).
    One process: its own temporary folder, as a session fixture."""
    if worker_id == "master":
        out = tmp_path_factory.mktemp("report") / name
        build(out)
        return out
    import fcntl
    root = tmp_path_factory.getbasetemp().parent  # this session's folder, holding each worker's own
    out, done = root / name, root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # a worker that failed part-way
            build(out)
            done.touch()
    return out


# --- the browser ---------------------------------------------------------------------------------

# Flags for a closed network: without them Chromium stalls trying to reach its services.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1300,900")


class Page:
    """A report opened in the browser: what it logged, what it fetched, and a full-page screenshot."""

    def __init__(self, driver, path: Path):
        import json
        driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages left
        driver.get(path.resolve().as_uri())
        self.driver = driver
        self.console = driver.get_log("browser")
        self.errors = [e for e in self.console if e.get("level") == "SEVERE"]
        events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        self.requests = [ev["params"]["request"]["url"] for ev in events if ev.get("method") == "Network.requestWillBeSent"]

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def text(self, css: str) -> str:
        return self.js("var e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)

    def screenshot(self, name: str) -> Path:
        import base64
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory):
    """One headless Chromium for the session; ``browser(path)`` opens a page and returns a :class:`Page`."""
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers on the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    binary, driver_path = chromium
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield lambda path: Page(driver, Path(path))
    finally:
        driver.quit()
