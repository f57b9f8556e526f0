"""The Ray executor on a local Ray (2 CPUs, no dashboard), started once for this module."""
import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need the cluster extra: make install adds it")

from ferristor.sweeps.ray_executor import RayExecutor, RayUnavailable  # noqa: E402
from ferristor.sweeps.run import plan, run_plan  # noqa: E402
from ferristor.sweeps.store import open_store  # noqa: E402

from .conftest import rows, small_spec  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_process_executors_results(local_ray, tiny_mnist, tmp_path):
    """The same grid on a local Ray, on 2 local worker processes and in this process: the same rows."""
    spec = small_spec()
    on_ray = run_plan(plan(spec, tmp_path / "ray", given={"mnist": tiny_mnist}), executor=RayExecutor(), progress=False)
    local = run_plan(plan(spec, tmp_path / "proc", given={"mnist": tiny_mnist}), workers=2, progress=False)
    assert on_ray.count("done") == local.count("done") == 2
    assert rows(tmp_path / "ray") == rows(tmp_path / "proc")
    run_plan(plan(spec, tmp_path / "here", given={"mnist": tiny_mnist}), in_process=True, progress=False)
    assert rows(tmp_path / "here") == rows(tmp_path / "proc")
    store = open_store(tmp_path / "ray", readonly=True)
    assert all(t["worker"] and int(t["worker"].rsplit(":", 1)[1]) != os.getpid() for t in store.trials())
    store.close()


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_from_its_checkpoint(local_ray, tiny_mnist, tmp_path):
    """SIGKILL the Ray worker process running the trial once the driver holds a checkpoint of it."""
    spec = small_spec("rule.k=10", sets=("epochs=1", "eval_every=0.25", "checkpoint_every=0.05"), seeds="0-1")
    ref = run_plan(plan(spec, tmp_path / "ref", given={"mnist": tiny_mnist}), in_process=True, progress=False)
    p = plan(spec, tmp_path / "ray", given={"mnist": tiny_mnist})
    result, killed = {}, []
    th = threading.Thread(target=lambda: result.setdefault("out", run_plan(p, executor=RayExecutor(), progress=False)))
    th.start()
    deadline = time.time() + 60
    while time.time() < deadline and th.is_alive() and not killed:
        time.sleep(0.05)
        try:
            store = open_store(tmp_path / "ray", readonly=True)
        except Exception:  # noqa: BLE001 — not created yet
            continue
        try:
            has_ckpt = store.db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] > 0
            worker = store.trials()[0]["worker"]
        finally:
            store.close()
        if has_ckpt and worker:
            os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
            killed.append(worker)
    th.join(timeout=90)
    assert killed, "the trial finished before it could be killed"
    out = result["out"]
    assert out.count("done") == 1
    assert rows(tmp_path / "ray") == rows(tmp_path / "ref")
    store = open_store(tmp_path / "ray", readonly=True)
    t = store.trials()[0]
    assert t["attempts"] == 2 and t["failures"] == 1 and t["worker"] != killed[0]
    store.close()
    assert ref.count("done") == 1


def test_unreachable_address_is_one_clear_error():
    with pytest.raises(RayUnavailable, match="--ray-address 127.0.0.1:9: no Ray cluster reachable there"):
        RayExecutor(address="127.0.0.1:9").start({}, None)
    with pytest.raises(RayUnavailable, match="expected HOST:PORT"):
        RayExecutor(address="nowhere").start({}, None)
