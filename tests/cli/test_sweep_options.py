"""``ferristor sweep``'s executor options and ``ferristor results``' output: an option the chosen
executor would ignore is refused, naming both; --threads is bounded by this machine's cores only
where trials run here; --dry-run's wall time follows what runs at once."""
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.cpus import available_cpus

SPEC = ["sweep", "--grid", "rule.k=10,100", "--set", "mode=hm", "--set", "epochs=0.01", "--set", "test_limit=200",
        "--seeds", "0-1"]


def _invoke(args, tmp_path, data_dir):
    return CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o"), *(["--data-dir", data_dir] if data_dir else [])])


def _one_error_line(r, message):
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.output


@pytest.fixture
def cores(monkeypatch):
    """``cores(n)``: this process (the driver) sees n cores; Ray's and the workers' processes see theirs."""
    def set_cores(n):
        monkeypatch.setattr("ferristor.experiments.config.available_cpus", lambda: n)
        monkeypatch.setattr("ferristor.cli.sweep.cpu_count", lambda: n)
    return set_cores


@pytest.mark.parametrize("args, message", [
    (["--ray", "--workers", "2"], "error: --workers 2 and --ray: choose one executor (Ray runs as many trials at once as "
                                  "its --ray-cpus allow"),
    (["--ray-address", "auto", "--workers", "1"], "error: --workers 1 and --ray-address: choose one executor"),
    (["--ray-cpus", "2"], "error: --ray-cpus 2: only with --ray (the CPUs of a Ray started here)"),
    # in-process runs one trial at a time: --workers 3 had been taken and ignored
    (["--in-process", "--workers", "3"], "error: --workers 3 and --in-process: choose one executor (--in-process runs "
                                         "one trial at a time in this process; --workers 3 without it runs 3 worker processes)"),
    (["--ray-address", "auto", "--ray-cpus", "2"], "error: --ray-cpus 2: only with --ray"),
    (["--ray-address", ""], "error: --ray-address '': expected HOST:PORT"),
    (["--ray-address", "auto", "--threads", "0"], "error: --threads 0 is not allowed: expected an integer ≥ 1"),
    (["--ray-address", "auto", "--set", "threads=0"], "error: --set threads: threads=0 is not allowed: expected an integer ≥ 1"),
    (["--ray", "--ray-cpus", "1", "--threads", "2"], "error: --threads 2 with --ray-cpus 1: each trial asks Ray for 2 CPUs "
                                                     "and would never start"),
])
def test_an_option_the_executor_would_ignore_is_refused(args, message, tmp_path, mnist_data_dir, cores):
    cores(4)  # --threads 2 is not refused for want of cores first
    _one_error_line(_invoke([*SPEC, *args, "--dry-run"], tmp_path, mnist_data_dir), message)
    assert not (tmp_path / "o").exists()


def test_threads_beyond_this_machine_are_refused_here_and_asked_of_a_ray_cluster(tmp_path, mnist_data_dir, cores):
    cores(2)
    _one_error_line(_invoke([*SPEC, "--threads", "4", "--dry-run"], tmp_path, mnist_data_dir),
                    "error: --threads 4 is not allowed: expected a value in [1, 2]")
    _one_error_line(_invoke([*SPEC, "--ray", "--threads", "4", "--dry-run"], tmp_path, mnist_data_dir),
                    "error: --threads 4 is not allowed: expected a value in [1, 2]")  # a Ray here has these cores
    for threads in (["--threads", "4"], ["--set", "threads=4"]):
        r = _invoke([*SPEC, "--ray-address", "auto", *threads, "--dry-run"], tmp_path, mnist_data_dir)
        assert r.exit_code == 0, r.output
        assert r.output.strip().splitlines()[-1].endswith("(at best: the Ray cluster at auto running every trial at once, "
                                                          "4 CPU(s) each; fewer free CPUs take longer)"), r.output


@pytest.mark.parametrize("args, at_once", [
    (["--ray", "--ray-cpus", "2"], 2), (["--ray", "--ray-cpus", "1"], 1), (["--ray", "--ray-cpus", "4", "--threads", "2"], 2),
    (["--ray"], 3), (["--ray", "--threads", "3"], 1), (["--in-process"], 1), (["--workers", "2"], 2), ([], 1),
])
def test_dry_run_wall_time_follows_what_runs_at_once(args, at_once, tmp_path, mnist_data_dir, cores):
    cores(3)  # a local Ray's default: all of them
    r = _invoke([*SPEC, *args, "--dry-run"], tmp_path, mnist_data_dir)
    assert r.exit_code == 0, r.output
    # trials, not workers: a Ray runs tasks, not worker processes
    assert f"with {at_once} trial{'s' if at_once != 1 else ''} at once about" in r.output.strip().splitlines()[-1], r.output


K_WARNING = ("warning: rule.k={}: larger than the 6 samples this run trains each replica on: no transfer will happen, "
             "so the memristors keep their initial weights")
SIGMA_WARNING = "warning: transfer model 'ideal' does not use them: transfer.sigma_levels=0.3 has no effect"


@pytest.mark.slow
def test_a_worker_process_warnings_are_clean_lines_and_no_progress_keeps_the_event_lines(tmp_path, mnist_data_dir):
    """The driver shows the sigma warning (the worker meets it again: not repeated), the worker its own
    (k beyond the run's samples), each as one 'warning: …' line; no bar, but the trial's lines."""
    r = subprocess.run([sys.executable, "-m", "ferristor.cli.main", "sweep", "--grid", "rule.k=10", "--set", "mode=hm",
                        "--set", "epochs=0.0001", "--set", "test_limit=100", "--set", "transfer.sigma_levels=0.3",
                        "--no-progress", "--out", str(tmp_path / "o"), *(["--data-dir", mnist_data_dir] if mnist_data_dir else [])],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [SIGMA_WARNING, K_WARNING.format(10)], r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("start  rule.k=10  on ") and lines[1].startswith("done   rule.k=10  accuracy "), r.stdout


ray = None


@pytest.fixture(scope="module")
def local_ray():
    global ray
    ray = pytest.importorskip("ray", reason="the Ray tests need the cluster extra: make install adds it")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 cores for Ray's workers")
def test_a_ray_cluster_runs_trials_on_more_threads_than_the_driver_has_and_its_warnings_are_one_line_each(
        local_ray, tmp_path, mnist_data_dir, cores):
    """--ray-address auto joins the Ray this test started (2 CPUs); the driver sees 1 core."""
    cores(1)
    r = _invoke(["sweep", "--grid", "rule.k=10,100", "--set", "mode=hm", "--set", "epochs=0.0001", "--set", "test_limit=100",
                 "--set", "transfer.sigma_levels=0.3", "--ray-address", "auto", "--threads", "2", "--no-progress"],
                tmp_path, mnist_data_dir)
    assert r.exit_code == 0, r.output
    from ferristor.sweeps.store import open_store
    store = open_store(tmp_path / "o", readonly=True)
    try:
        assert [t["result"]["config"]["threads"] for t in store.trials("done")] == [2, 2]  # as trained on the nodes
    finally:
        store.close()
    # the driver's warning once (the tasks meet it again), each task's own once: clean lines, no file or source line
    assert sorted(r.stderr.splitlines()) == [K_WARNING.format(100), K_WARNING.format(10), SIGMA_WARNING], r.stderr


# --- results -o: the file holds what its name says, in a folder that exists ---------------------------

@pytest.fixture
def empty_sweep(tmp_path):
    """A results store without a finished trial: results writes its columns, in any format."""
    from ferristor.sweeps.store import open_store
    (tmp_path / "sw").mkdir()
    open_store(tmp_path / "sw").close()
    return tmp_path / "sw"


@pytest.mark.parametrize("args, name, starts", [
    ([], "r.csv", b"trial,dataset,"), ([], "r.parquet", b"PAR1"), ([], "r.txt", b"(no rows"), ([], "r", b"(no rows"),
    ([], "R.CSV", b"trial,"), (["--format", "csv"], "r.parquet.csv", b"trial,"), (["--format", "csv"], "r.json", b"trial,"),
    (["--format", "table"], "r.txt", b"(no rows"),
])
def test_results_writes_the_format_its_output_names(args, name, starts, empty_sweep, tmp_path):
    if starts == b"PAR1":
        pytest.importorskip("pyarrow", reason="Parquet needs the results extra")
    r = CliRunner().invoke(cli, ["results", str(empty_sweep), *args, "-o", str(tmp_path / name)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / name).read_bytes().startswith(starts)


@pytest.mark.parametrize("args, name, message", [
    (["--format", "csv"], "r.parquet", "error: --format csv: does not match --output {path} (a .parquet file holds parquet): "
                                       "give --format parquet, or leave --format out"),
    (["--format", "table"], "r.CSV", "error: --format table: does not match --output {path} (a .csv file holds csv)"),
    ([], "r.json", "error: --output {path}: results writes no .json file: name a .csv, .parquet or text file, or give "
                   "--format (table, csv or parquet)"),
    ([], "typo/dir/r.csv", "error: --output {path}: its folder {parent} does not exist (create it first)"),
])
def test_results_output_that_would_not_hold_what_its_name_says_is_refused(args, name, message, empty_sweep, tmp_path):
    path = tmp_path / name
    r = CliRunner().invoke(cli, ["results", str(empty_sweep), *args, "-o", str(path)])
    _one_error_line(r, message.format(path=path, parent=path.parent))
    assert not path.exists() and not (tmp_path / "typo").exists()  # nothing written, no folder created


def test_results_parquet_without_a_file_is_refused(empty_sweep):
    _one_error_line(CliRunner().invoke(cli, ["results", str(empty_sweep), "--format", "parquet"]),
                    "error: --format parquet: give a file with --output")


POINTS = """seeds = "0-1"
[base]
mode = "hm"
epochs = 0.01
test_limit = 200
[[points]]
"rule.k" = 10
threads = 4
[[points]]
"rule.k" = 100
threads = 8
"""


def test_a_threads_grid_or_point_is_bounded_as_threads_is(tmp_path, mnist_data_dir, cores):
    """A grid's or a point's threads had been refused beyond this machine's cores with --ray-address
    too, where --threads is CPUs of a cluster node: they follow --threads' rule now."""
    cores(2)
    for where in ([], ["--ray"]):  # trials run here
        _one_error_line(_invoke([*SPEC, "--grid", "threads=4", *where, "--dry-run"], tmp_path, mnist_data_dir),
                        "error: --grid threads=4: threads=4 is not allowed: expected a value in [1, 2]")
    r = _invoke([*SPEC, "--grid", "threads=8", "--ray-address", "auto", "--dry-run"], tmp_path, mnist_data_dir)
    assert r.exit_code == 0, r.output
    _one_error_line(_invoke([*SPEC, "--grid", "threads=0", "--ray-address", "auto", "--dry-run"], tmp_path, mnist_data_dir),
                    "error: --grid threads=0: threads=0 is not allowed: expected an integer ≥ 1 (CPUs of a node")
    spec = tmp_path / "points.toml"
    spec.write_text(POINTS)
    here = CliRunner().invoke(cli, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "p"),
                                    *(["--data-dir", mnist_data_dir] if mnist_data_dir else [])])
    assert here.exit_code == 2 and "threads=4 is not allowed: expected a value in [1, 2]" in here.output, here.output
    r = CliRunner().invoke(cli, ["sweep", str(spec), "--ray-address", "auto", "--dry-run", "--out", str(tmp_path / "p"),
                                 *(["--data-dir", mnist_data_dir] if mnist_data_dir else [])])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert "rule.k=10" in lines[1] and "threads=4" in lines[1] and "rule.k=100" in lines[2] and "threads=8" in lines[2]
    assert lines[-1].endswith("8 CPU(s) each; fewer free CPUs take longer)"), r.output


def test_each_trial_on_a_ray_cluster_gets_its_own_threads(tmp_path, mnist, cores):
    """What a task asks of Ray (num_cpus = the trial's threads) is its point's, and the spec the store
    records holds the threads as given."""
    from ferristor.cli.sweep import _node_threads, _set_node_threads
    from ferristor.sweeps import spec as sp
    from ferristor.sweeps.run import plan
    cores(2)
    (tmp_path / "points.toml").write_text(POINTS)
    spec = sp.build_spec(tmp_path / "points.toml", grids=("rule.p=0.1,0.2",), check_values=False)
    taken = _node_threads(spec)
    sp.check(spec)
    p = plan(spec, tmp_path / "o", given={"mnist": mnist})
    _set_node_threads(spec, p, taken)
    assert [(t.params["rule.k"], t.params["rule.p"], t.params["threads"], t.config["threads"])
            for t in p.trials] == [(10, 0.1, 4, 4), (10, 0.2, 4, 4), (100, 0.1, 8, 8), (100, 0.2, 8, 8)]
    assert [pt["threads"] for pt in sp.describe(spec)["points"]] == [4, 8]


def test_a_grid_over_how_a_trial_runs_is_refused(tmp_path, mnist_data_dir):
    """No trial's key holds threads (a sweep resumes with other threads), so --grid threads=1,2 had run
    one trial per point and dropped the other value without a word."""
    for where in ([], ["--ray-address", "auto"]):
        _one_error_line(_invoke([*SPEC, "--grid", "threads=1,2", *where, "--dry-run"], tmp_path, mnist_data_dir),
                        "error: --grid threads: threads says how a trial runs, not what it computes (no trial's key "
                        "holds it), so its values would be one trial: give it one value")
    spec = tmp_path / "points.toml"
    spec.write_text('[[points]]\n"rule.k" = 10\nthreads = 1\n[[points]]\n"rule.k" = 10\nthreads = 2\n')
    r = CliRunner().invoke(cli, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "p"),
                                 *(["--data-dir", mnist_data_dir] if mnist_data_dir else [])])
    assert r.exit_code == 2 and r.stderr == ("error: points[0] and points[1] differ only in threads, which says how a "
                                             "trial runs, not what it computes (no trial's key holds it): they would be "
                                             "one trial; drop one\n"), r.output
