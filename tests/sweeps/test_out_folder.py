"""An --out that holds something else than this sweep is refused before any work, naming what differs
and how to go on: another sweep (its recorded spec would be overwritten and its results mixed with
this one's), trials of no recorded spec, a train run's folder. "Another sweep" is decided by points
(a trial's config without its seeds): a spec sharing one with the stored trials resumes, whatever it
adds or leaves out; --merge adds to another sweep on purpose, keeping both specs."""
import json

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.errors import ConfigError
from ferristor.sweeps.driver import run_sweep
from ferristor.sweeps.run import check_folder
from ferristor.sweeps.spec import build_spec, describe
from ferristor.sweeps.store import open_store


def _spec(*grids, sets=("mode=hm", "epochs=0.005"), seeds="0"):
    return build_spec(None, sets=sets, grids=grids, seeds=seeds)


def _folder(tmp_path, spec, name="kp"):
    folder = tmp_path / name
    folder.mkdir()
    store = open_store(folder)
    store.set_meta("spec", json.dumps(describe(spec), sort_keys=True))
    store.close()
    return folder


def _meta(folder, key="spec"):
    store = open_store(folder, readonly=True)
    try:
        return store.meta(key)
    finally:
        store.close()


def test_another_sweep_in_the_folder_is_refused_naming_what_differs(tmp_path):
    """Before: it ran, exit 0, no warning; meta.spec was overwritten and results mixed both sweeps."""
    folder = _folder(tmp_path, _spec("rule.k=1,10"))
    before = _meta(folder)
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.p=0.1,0.3", "--set", "mode=fp", "--set", "epochs=0.005",
                                 "--in-process", "--no-progress", "--out", str(folder)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    line = r.output.strip()
    assert line.startswith(f"error: --out {folder}: holds another sweep ("), line
    for said in ("mode=hm there, mode=fp here", "--grid rule.k there, not here", "--grid rule.p here, not there",
                 "give another --out", "--merge"):
        assert said in line, line
    assert _meta(folder) == before  # the first sweep's record is intact


def test_dry_run_says_the_same(tmp_path):
    folder = _folder(tmp_path, _spec("rule.k=1,10"))
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=1,10", "--set", "mode=fp", "--set", "epochs=0.005",
                                 "--dry-run", "--out", str(folder)])
    assert r.exit_code == 2 and "holds another sweep (mode=hm there, mode=fp here)" in r.output, r.output


@pytest.mark.parametrize("grid, seeds", [
    ("rule.k=1,10", "0"),  # the same spec: a resume
    ("rule.k=1,10,100", "0"),  # another grid value
    ("rule.k=1,10", "0-2"),  # more seeds
])
def test_the_same_spec_or_one_adding_to_it_resumes(tmp_path, grid, seeds):
    folder = _folder(tmp_path, _spec("rule.k=1,10"))
    check_folder(_spec(grid, seeds=seeds), folder)


def test_other_threads_are_the_same_sweep(tmp_path):
    folder = _folder(tmp_path, _spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", "threads=1")))
    check_folder(_spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", "threads=2")), folder)


@pytest.mark.parametrize("grid, seeds", [("rule.k=1000", "0"), ("rule.k=3,1000", "0-2")])
def test_other_values_along_the_same_axes_from_the_same_base_are_the_same_sweep(tmp_path, grid, seeds):
    """No point in common, but the same axis from the same base: the k sweep grows."""
    folder = _folder(tmp_path, _spec("rule.k=1,10"))
    check_folder(_spec(grid, seeds=seeds), folder)


def test_another_base_sharing_no_point_is_another_sweep_named_without_its_seeds(tmp_path):
    """Seeds make no point: the message names how the specs differ, not the seeds."""
    folder = _folder(tmp_path, _spec("rule.k=1,10"))
    other = _spec("rule.k=1,10", sets=("mode=hm", "epochs=0.01"), seeds="0-2")
    with pytest.raises(ConfigError, match="holds another sweep") as e:
        check_folder(other, folder)
    assert "epochs=0.005 there, epochs=0.01 here" in str(e.value) and "seeds" not in str(e.value), e.value
    check_folder(other, folder, merge=True)


def _stored(tmp_path, *specs, name="kp"):
    """A folder whose store holds the trials of ``specs`` (data fingerprints made up: none is loaded)
    and records the last one, as a sweep of each into it (the later ones with --merge) leaves it."""
    from ferristor.sweeps.trials import datasets_of, expand
    folder = tmp_path / name
    folder.mkdir()
    store = open_store(folder)
    for spec in specs:
        store.register(expand(spec, {d: "f" * 64 for d in datasets_of(spec)}))
    store.set_meta("spec", json.dumps(describe(specs[-1]), sort_keys=True))
    store.close()
    return folder


@pytest.mark.parametrize("grid, sets, seeds, per_trial", [
    ("rule.k=1e1,100", (), "0", None),  # values written otherwise: the same trials
    ("rule.k=10,100", ("rule.lr=0.1",), "0", None),  # a --set at its default (hm's rule.lr)
    ("rule.k=10,100", (), "0-2", 1),  # grow the seeds without training seed 0 again, as the docs say
    ("rule.k=10", (), "0", None),  # a part of the sweep (one trial again, e.g. to retry it)
    ("rule.k=100,1000", (), "0", None),  # a part of it and more
])
def test_a_spec_sharing_a_point_with_the_stored_trials_resumes(tmp_path, grid, sets, seeds, per_trial):
    """Before: refused as another sweep ("rule.k=10 there, not here", "seeds_per_trial all there, 1 here")."""
    folder = _stored(tmp_path, _spec("rule.k=10,100"))
    check_folder(build_spec(None, sets=("mode=hm", "epochs=0.005", *sets), grids=(grid,), seeds=seeds,
                            seeds_per_trial=per_trial), folder)


def test_the_first_command_still_resumes_after_the_sweep_grew_or_took_a_merge(tmp_path):
    """The command that made a folder, rerun (to retry a failed trial) after a larger grid ran into it,
    or after another sweep was --merge'd in (meta.spec then records that one): before, both refused."""
    first, grown = _spec("rule.k=10,100"), _spec("rule.k=10,100,1000")
    check_folder(first, _stored(tmp_path, first, grown, name="grown"))
    merged = _spec("rule.p=0.1,0.3", sets=("mode=fp", "epochs=0.005"))
    folder = _stored(tmp_path, first, merged, name="merged")
    check_folder(first, folder)
    check_folder(merged, folder)
    with pytest.raises(ConfigError, match="holds another sweep"):  # a third one shares no point with either
        check_folder(_spec("rule.k=10,100", sets=("mode=hm", "epochs=0.01")), folder)


def test_no_point_in_common_with_the_stored_trials_is_another_sweep(tmp_path):
    folder = _stored(tmp_path, _spec("rule.k=10,100"))
    with pytest.raises(ConfigError, match=r"holds another sweep \(epochs=0.005 there, epochs=0.01 here\)"):
        check_folder(_spec("rule.k=10,100", sets=("mode=hm", "epochs=0.01")), folder)


def test_merge_keeps_the_spec_it_replaces(tmp_path):
    first, second = _spec("rule.k=1,10"), _spec("rule.p=0.1,0.3", sets=("mode=fp", "epochs=0.005"))
    folder = _folder(tmp_path, first)
    run_sweep([], folder, {}, meta={"spec": describe(second)}, progress=False)
    assert json.loads(_meta(folder)) == json.loads(json.dumps(describe(second)))
    assert json.loads(_meta(folder, "earlier_specs")) == [json.loads(json.dumps(describe(first)))]


def test_trials_of_no_recorded_spec_are_refused_without_merge(tmp_path):
    from ferristor.sweeps.trials import Trial
    folder = tmp_path / "imports"
    folder.mkdir()
    store = open_store(folder)
    store.register([Trial("k" * 64, {"imported": "demo"}, {"seeds": [0]}, {})])
    store.close()
    with pytest.raises(ConfigError, match="holds 1 trial of no recorded sweep"):
        check_folder(_spec("rule.k=1"), folder)
    check_folder(_spec("rule.k=1"), folder, merge=True)


@pytest.mark.parametrize("merge", [False, True])
def test_a_train_run_folder_is_refused(tmp_path, merge):
    """Before: the sweep's store was written beside the run's results.json."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text("{}")
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=1", "--set", "epochs=0.005", "--in-process",
                                 *(["--merge"] if merge else []), "--out", str(folder)])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == (f"error: --out {folder}: holds a train run (results.json), not a sweep: give another "
                                f"--out (ferristor results SWEEP --import {folder} adds the run to a sweep)"), r.output
    assert not (folder / "sweep.sqlite").exists()


@pytest.mark.parametrize("there, here, said", [
    ((), ("rule.lr=0.123",), "no rule.lr there, rule.lr=0.123 here"),
    (("rule.lr=0.123",), (), "rule.lr=0.123 there, no rule.lr here"),
])
def test_a_path_set_on_one_side_only_is_named_not_an_unreadable_spec(tmp_path, there, here, said):
    """Before: json.dumps of the placeholder for "not set" raised TypeError, read as an unreadable store:
    'holds another sweep (its recorded spec cannot be read)'."""
    folder = _folder(tmp_path, _spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", *there)))
    with pytest.raises(ConfigError, match=said):
        check_folder(_spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", *here)), folder)


def _failed(folder, *names):
    """Trials recorded as failed (a run without --retry-failed trains none of them), by name."""
    from ferristor.sweeps.trials import Trial
    trials = [Trial(n * 64, {"n": n}, {"seeds": [0]}, {}) for n in names]
    store = open_store(folder)
    store.register(trials)
    for t in trials:
        store.fail(t.key, "RuntimeError: test", give_up=True)
    store.close()
    return trials


def test_earlier_specs_holds_only_specs_of_other_trials(tmp_path):
    """Before: any other spec text was kept as an "earlier spec", a resume on other threads or with the
    values in another order included; now only a spec whose trials differ from the new one's."""
    folder = tmp_path / "kp"
    folder.mkdir()
    a, b, c = _failed(folder, "a", "b", "c")
    first = _spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", "threads=1"))
    again = _spec("rule.k=10,1", sets=("mode=hm", "epochs=0.005", "threads=2"))  # the same trials
    grown = _spec("rule.k=1,10,100")
    run_sweep([a, b], folder, {}, meta={"spec": describe(first)}, progress=False)
    run_sweep([b, a], folder, {}, meta={"spec": describe(again)}, progress=False)
    assert _meta(folder, "earlier_specs") is None
    assert json.loads(_meta(folder)) == json.loads(json.dumps(describe(again)))
    run_sweep([a, b, c], folder, {}, meta={"spec": describe(grown)}, progress=False)
    assert json.loads(_meta(folder, "earlier_specs")) == [json.loads(json.dumps(describe(again)))]
    run_sweep([a, b], folder, {}, meta={"spec": describe(again)}, progress=False)  # the first part again
    run_sweep([a, b, c], folder, {}, meta={"spec": describe(grown)}, progress=False)  # each kept once
    assert json.loads(_meta(folder, "earlier_specs")) == [json.loads(json.dumps(d)) for d in (describe(again), describe(grown))]


def test_a_store_from_before_spec_trials_compares_the_specs(tmp_path):
    """A store whose spec was recorded before the trial hash was kept: a resume on other threads adds
    no earlier spec (before: it did)."""
    folder = _folder(tmp_path, _spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", "threads=1")))
    run_sweep([], folder, {}, meta={"spec": describe(_spec("rule.k=1,10", sets=("mode=hm", "epochs=0.005", "threads=2")))},
              progress=False)
    assert _meta(folder, "earlier_specs") is None


def test_a_sweep_over_another_axis_sharing_only_the_default_point_is_another_sweep(tmp_path):
    """k = 100 at lr = 0.1 is a point of both (their defaults): one shared point had let an lr sweep run
    into a k sweep's folder silently, leaving a two-axis grid with a hole."""
    folder = _stored(tmp_path, _spec("rule.k=10,100"))
    with pytest.raises(ConfigError, match="holds another sweep"):
        check_folder(_spec("rule.lr=0.05,0.1"), folder)
    check_folder(_spec("rule.lr=0.05,0.1"), folder, merge=True)


def test_seeds_grouped_otherwise_are_refused_not_trained_again(tmp_path):
    """Another --seeds-per-trial makes other trials of the same points: every stored seed would be
    trained and stored twice (hours at real sizes)."""
    def spec(per_trial, seeds="0-1"):
        return build_spec(None, sets=("mode=hm", "epochs=0.005"), grids=("rule.k=10",), seeds=seeds,
                          seeds_per_trial=per_trial)
    folder = _stored(tmp_path, spec(1))
    with pytest.raises(ConfigError, match=r"holds seeds 0, 1 of this sweep's points in trials grouped otherwise"):
        check_folder(spec(None), folder)
    check_folder(spec(1, seeds="0-3"), folder)  # more seeds in the folder's grouping: the old ones are reused
    check_folder(spec(None), folder, merge=True)


def test_spec_changes_compare_values_as_the_config_takes_them_and_unknown_paths_as_written():
    """The refusal's words compare through spec.config_key, as a spec's own repeats are found: 1e1 is
    10 at an int field, in [base], a grid and a point; a path this version does not know (a spec
    recorded by another one) is compared as written, not refused."""
    from ferristor.sweeps.run import spec_changes
    from ferristor.sweeps.spec import config_key

    def record(base, grid=None, points=None):
        return {"base": base, "grid": grid or {}, "points": points or [{}], "seeds": [0]}
    assert config_key(1e1, "rule.k") == config_key(10, "rule.k") == "10"
    assert config_key({"rule.k": 1e1, "no.such": 1.0}) == '{"no.such": 1.0, "rule.k": 10}'
    old = record({"rule.k": 1e1, "gone.path": 1.0}, {"rule.p": [1, 2e0]}, [{"rule.k": 1e2, "gone.path": "x"}])
    new = record({"rule.k": 10, "gone.path": 1}, {"rule.p": [1.0, 2]}, [{"rule.k": 100, "gone.path": "x"}])
    assert spec_changes(old, new) == (["gone.path=1.0 there, gone.path=1 here"], [])
    assert spec_changes(new, record({"rule.k": 10, "gone.path": 1}, {"rule.p": [1, 3]}, [{"rule.k": 1e2}])) == (
        ["rule.p=2 there, not here", 'the point {"gone.path": "x", "rule.k": 100} there, not here'],
        ["rule.p=3", 'the point {"rule.k": 100.0}'])
