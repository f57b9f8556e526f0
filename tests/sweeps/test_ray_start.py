"""How the Ray executor starts or joins Ray, with ray.init and the cluster faked: --ray starts a Ray
of its own (never joins one running here), an authentication refusal says what to set, a --threads
no node can hold is refused (a Ray started here) or warned of (a cluster), --ray-address auto with
no Ray fails before the --out folder is created."""
import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="the Ray tests need the cluster extra: make install adds it")

from ferristor.cli.main import cli  # noqa: E402
from ferristor.errors import FerristorWarning  # noqa: E402
from ferristor.sweeps import ray_executor  # noqa: E402
from ferristor.sweeps.ray_executor import RayExecutor, RayUnavailable, cannot_reach  # noqa: E402


@pytest.fixture
def fake_init(monkeypatch):
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **kw: calls.append((a, kw)))
    return calls


@pytest.mark.parametrize("cpus", [None, 1])
def test_ray_starts_a_ray_of_its_own(fake_init, cpus):
    """Before: ray.init(num_cpus=…) joined a Ray running here (and failed on num_cpus: 'When connecting
    to an existing cluster, num_cpus … must not be provided')."""
    ex = RayExecutor(num_cpus=cpus)
    ex.start({}, None)
    (args, kw), = fake_init
    assert kw["address"] == "local" and kw["num_cpus"] == cpus and ex.started_ray


def test_ray_address_joins_the_cluster(fake_init, monkeypatch):
    monkeypatch.setattr(ray_executor, "check_reachable", lambda address: None)
    RayExecutor(address="10.0.0.1:6379").start({}, None)
    assert fake_init[0][1]["address"] == "10.0.0.1:6379"


def _failed_to_connect_after(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as e:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379.\nmore") from e
    except ConnectionError as e:
        return e


@pytest.mark.parametrize("error, log", [
    (_failed_to_connect_after(RuntimeError("Status: InvalidAuthToken: token missing")), ""),
    (ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379."), "[C++] ... InvalidAuthToken ... UNAUTHENTICATED"),
])
def test_an_authentication_refusal_says_what_to_set(error, log):
    """Before: 'cannot start or reach Ray (Failed to connect to Ray cluster at …)', the cause unsaid."""
    text = cannot_reach("10.0.0.1:6379", error, log)
    assert text.startswith("--ray-address 10.0.0.1:6379: the Ray cluster refused this driver's authentication "
                           "(Failed to connect to Ray cluster at 10.0.0.1:6379.)"), text
    assert "export RAY_AUTH_MODE=token" in text and "RAY_AUTH_TOKEN" in text and "\n" not in text


def test_another_failure_is_said_as_it_is():
    text = cannot_reach("10.0.0.1:6379", ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379."))
    assert text == "--ray-address 10.0.0.1:6379: cannot start or reach Ray (Failed to connect to Ray cluster at 10.0.0.1:6379.)"


def test_an_init_failure_is_one_error_naming_auth(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_executor, "check_reachable", lambda address: None)

    def init(**kw):
        raise _failed_to_connect_after(ray.exceptions.AuthenticationError("Authentication failed"))
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(RayUnavailable, match="refused this driver's authentication.*RAY_AUTH_MODE=token"):
        RayExecutor(address="10.0.0.1:6379").start({}, None)


class _Cluster:
    def __init__(self, *cpus, dead=()):
        self._nodes = [{"Alive": True, "Resources": {"CPU": float(c)}} for c in cpus] + \
                      [{"Alive": False, "Resources": {"CPU": float(c)}} for c in dead]

    def nodes(self):
        return self._nodes


def _executor(address, cluster):
    ex = RayExecutor(address=address)
    ex.ray = cluster
    return ex


def test_threads_no_cluster_node_has_are_warned_of_once(recwarn):
    """Before: the tasks waited for ever, Ray's 'cannot be scheduled' in its logs only."""
    ex = _executor("10.0.0.1:6379", _Cluster(4, 2, dead=(16,)))
    ex._check_fits(4)
    assert not recwarn.list
    with pytest.warns(FerristorWarning, match=r"--threads 8: no node of the Ray cluster at 10.0.0.1:6379 has 8 CPUs "
                                              r"\(its largest alive node has 4\).*autoscaler"):
        ex._check_fits(8)
    ex._check_fits(8)  # said once
    assert not [w for w in recwarn.list if issubclass(w.category, FerristorWarning)]


def test_threads_the_local_ray_cannot_hold_are_refused():
    with pytest.raises(RayUnavailable, match="--threads 8: each trial asks Ray for 8 CPUs, and the Ray started here has 2"):
        _executor(None, _Cluster(2))._check_fits(8)


def test_ray_address_auto_without_a_ray_creates_nothing(tmp_path, monkeypatch):
    """Before: OUT/ and OUT/sweep.sqlite were created, then ray.init failed."""
    import ray._private.services as services

    def none(addr, temp_dir=None):
        raise ConnectionError("Could not find any running Ray instance.")
    monkeypatch.setattr(services, "canonicalize_bootstrap_address", none)
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=1", "--set", "epochs=0.005", "--ray-address", "auto",
                                 "--out", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == ("error: --ray-address auto: no Ray cluster found running on this machine; start one "
                                "with 'ray start --head', or give its address (HOST:PORT)"), r.output
    assert not (tmp_path / "s").exists()
