"""Bad sweep input refused before any work, naming it as the user wrote it (exit 2), and points of
one folder told apart: a data_dir per trial, networks that do not fit their data, more worker
processes than cores, two points of the same axis values from other base settings."""
import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.sweeps.run import plan
from ferristor.sweeps.spec import SpecError, SweepSpec, build_spec
from ferristor.sweeps.store import open_store, store_path
from ferristor.sweeps.trials import expand

from .conftest import small_spec

FP = {"mnist": "f" * 64}


def _one_line_exit_2(r, message):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.strip().startswith("error: " + message), r.output


def test_data_dir_in_set_is_refused_before_any_work(tmp_path):
    """It used to be accepted and ignored (the workers train on the driver's data, from --data-dir)."""
    r = CliRunner().invoke(cli, ["sweep", "--no-progress", "--set", "epochs=0.01", "--grid", "rule.k=10",
                                 "--set", "data_dir=/nonexistent", "--in-process", "--out", str(tmp_path / "s")])
    _one_line_exit_2(r, "--set 'data_dir=/nonexistent': not a setting of a spec file or --set: use --data-dir")
    assert not store_path(tmp_path / "s").exists()


@pytest.mark.parametrize("grid, message", [
    ("network.sizes=[[700,100,10]]", "--grid network.sizes=[700, 100, 10]: network.sizes=(700, 100, 10) is not allowed: "
                                     "expected an input size of 784, the features of dataset 'mnist'"),
    ("network.sizes=[[784,100,10],[784,100,3]]", "--grid network.sizes=[784, 100, 3]: dataset 'mnist': training labels "
                                                 "span 0…9 but the network has 3 outputs"),
    ("batch=1,5000", "--grid batch=5000: batch=5000 is not allowed: expected at most 2,000, the training samples"),
])
def test_a_network_that_does_not_fit_its_data_is_refused_by_the_plan(tiny_mnist, tmp_path, grid, message):
    """Before: listed by --dry-run, then recorded as a FAILED trial (exit 1)."""
    with pytest.raises(SpecError) as e:
        plan(small_spec(grid), tmp_path, given={"mnist": tiny_mnist})
    assert str(e.value).startswith(message)
    assert not store_path(tmp_path).exists()


def test_a_point_of_a_spec_file_that_does_not_fit_is_named(tiny_mnist, tmp_path):
    (tmp_path / "s.toml").write_text('[base]\nepochs = 0.01\n[[points]]\n"network.sizes" = [784, 20, 10]\n'
                                     '[[points]]\n"network.sizes" = [784, 20, 3]\n')
    with pytest.raises(SpecError, match=r'^the point \{"network.sizes": \[784, 20, 3\]\}: .*3 outputs'):
        plan(build_spec(tmp_path / "s.toml"), tmp_path / "out", given={"mnist": tiny_mnist})


@pytest.mark.parametrize("dry", [False, True])
def test_misfit_network_on_the_command_line_is_exit_2(mnist_data_dir, tmp_path, dry):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    r = CliRunner().invoke(cli, ["sweep", "--no-progress", "--set", "epochs=0.01", "--grid", "network.sizes=[[700,100,10]]",
                                 *(["--dry-run"] if dry else ["--in-process"]), "--out", str(tmp_path), *data])
    _one_line_exit_2(r, "--grid network.sizes=[700, 100, 10]: network.sizes=(700, 100, 10) is not allowed")
    assert not store_path(tmp_path).exists()


def test_more_workers_than_cores_is_refused_as_reproduce_refuses_it(monkeypatch, mnist_data_dir, tmp_path):
    import ferristor.cli.sweep as cli_sweep
    monkeypatch.setattr(cli_sweep, "cpu_count", lambda: 2)
    args = ["sweep", "--no-progress", "--set", "epochs=0.01", "--out", str(tmp_path)]
    # refused before the data are looked for (this data root does not exist)
    r = CliRunner().invoke(cli, [*args, "--workers", "3", "--data-dir", str(tmp_path / "no-data")])
    _one_line_exit_2(r, "--workers 3: at most 2 (this machine's cores) for trials on the CPU")
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    dry = CliRunner().invoke(cli, [*args, "--workers", "3", "--dry-run", *data])  # a plan for a larger machine: said
    assert dry.exit_code == 0 and dry.output.strip().splitlines()[-1].endswith(
        "(this machine has 2 core(s): a run here refuses --workers 3)"), dry.output
    for fine in (["--workers", "2"], ["--workers", "1", "--in-process"]):
        ok = CliRunner().invoke(cli, [*args, *fine, "--dry-run", *data])
        assert ok.exit_code == 0 and "refuses" not in ok.output, ok.output
    # in-process runs one trial at a time: more workers are refused, naming both, not taken and ignored
    _one_line_exit_2(CliRunner().invoke(cli, [*args, "--workers", "3", "--in-process", "--dry-run", *data]),
                     "--workers 3 and --in-process: choose one executor")
    # trials that all run on a CUDA device share it as threads, more of them than the cores
    assert cli_sweep._too_many_workers(SweepSpec(base={"device": "cuda"}), 3, False) is None
    assert cli_sweep._too_many_workers(SweepSpec(grid={"device": ["cuda", "cpu"]}), 3, False) is not None


def test_points_of_equal_params_are_told_apart_by_their_base_settings(tmp_path):
    """A folder swept twice with other --set bases: two 'rule.k=10' points, once labelled alike."""
    store = open_store(tmp_path)
    a = expand(build_spec(None, sets=("epochs=0.01",), grids=("rule.k=10,100",)), FP)
    b = expand(build_spec(None, sets=("epochs=0.02",), grids=("rule.k=10",)), FP)
    c = expand(build_spec(None, sets=("epochs=0.02",), grids=("rule.k=10",)), {"mnist": "0" * 64})  # other data
    store.register(a + b + c)
    params = {t["key"]: t["params"] for t in store.trials()}
    store.close()
    assert params[a[0].key] == {"rule.k": 10, "epochs": 0.01, "data": "f" * 12}
    assert params[b[0].key] == {"rule.k": 10, "epochs": 0.02, "data": "f" * 12}
    assert params[c[0].key] == {"rule.k": 10, "epochs": 0.02, "data": "0" * 12}
    assert params[a[1].key] == {"rule.k": 100}  # alone with its params: as the sweep named it


def test_a_value_or_point_given_twice_is_refused_not_collapsed(tmp_path):
    """rule.k=10,10 and two equal [[points]] had silently become one trial."""
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=10,100,10", "--set", "epochs=0.01", "--dry-run",
                                 "--out", str(tmp_path / "s")])
    _one_line_exit_2(r, "--grid rule.k: 10 is given twice: each value once")
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=100,1e2", "--set", "epochs=0.01", "--dry-run",
                                 "--out", str(tmp_path / "s")])  # 1e2 is taken as the integer 100: one trial
    _one_line_exit_2(r, "--grid rule.k: 100.0 is given twice (the same value as 100 before): each value once")
    spec = tmp_path / "spec.toml"
    spec.write_text('[base]\nepochs = 0.01\n[[points]]\nmode = "hm"\n[[points]]\nmode = "hm-var"\n[[points]]\nmode = "hm"\n')
    r = CliRunner().invoke(cli, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "s2")])
    _one_line_exit_2(r, 'the point {"mode": "hm"} is given twice')
    spec.write_text('[base]\nepochs = 0.01\n[[points]]\n"rule.k" = 10\n[[points]]\n"rule.k" = 10.0\n')
    r = CliRunner().invoke(cli, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "s3")])
    _one_line_exit_2(r, 'the point {"rule.k": 10.0} is given twice')
