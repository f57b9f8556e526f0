"""Sweep specs: files and options, paths checked against the config, values by its validation."""
import pytest

from ferristor.sweeps import configs
from ferristor.sweeps.spec import SpecError, build_spec, parse_assignment
from ferristor.sweeps.trials import expand, make_trial

FP = {"mnist": "f" * 64, "fashion-mnist": "a" * 64, "ecg": "e" * 64}


def test_grid_options_cross_and_seeds_run_as_replicas():
    spec = build_spec(None, sets=("mode=hm", "epochs=1"), grids=("rule.k=1,10,100", "rule.p=0.1,0.2"), seeds="0-9")
    trials = expand(spec, FP)
    assert len(trials) == 6 and len({t.key for t in trials}) == 6
    assert trials[0].params == {"rule.k": 1, "rule.p": 0.1} and trials[0].seeds == list(range(10))
    assert trials[0].config["epochs"] == 1.0 and isinstance(trials[0].config["epochs"], float)
    assert trials[0].config["network"]["sizes"] == [784, 200, 100, 10] and trials[0].config["transfer"]["model"] == "ideal"
    split = expand(build_spec(None, grids=("rule.k=1,10",), seeds="0-9", seeds_per_trial=5), FP)
    assert [t.seeds for t in split] == [list(range(5)), list(range(5, 10))] * 2 and "seeds" in split[0].params


def test_key_covers_what_changes_numbers_not_where_it_runs():
    base = build_spec(None, sets=("epochs=1",))
    key = expand(base, FP)[0].key
    same = build_spec(None, sets=("epochs=1.0", "threads=2", "checkpoint_every=0.1"))
    assert expand(same, FP)[0].key == key  # int/float alike; execution fields are not keyed
    assert make_trial({}, {"epochs": 1, "data_dir": "/x"}, FP).key == key  # (a sweep takes it from --data-dir)
    assert expand(base, {**FP, "mnist": "0" * 64})[0].key != key  # other data
    assert expand(build_spec(None, sets=("epochs=1", "backend=torch")), FP)[0].key != key
    ident = expand(base, FP)[0].identity
    assert ident["eval_chunk"] == 2000 and ident["config"]["backend"] in ("numba", "torch")
    # fields added after stores were written keep old keys at their legacy value, and key otherwise
    assert "sampler" not in ident["config"]["rule"] and "scheme" not in ident["config"]
    assert "output_norm" not in ident["config"]["network"] and "init_shape" not in ident["config"]["rule"]
    for other in ("rule.sampler=\"sparse\"", "rule.init_shape=\"normal\"", "network.output_norm=false"):
        assert expand(build_spec(None, sets=("epochs=1", other)), FP)[0].key != key, other


def test_spec_files_toml_and_yaml(tmp_path):
    (tmp_path / "s.toml").write_text('name = "ks"\nseeds = "0-2"\n[base]\nmode = "hm"\nrule.p = 0.1\n'
                                     '[grid]\n"rule.k" = [1, 10]\n[[points]]\n"rule.rounding" = "nearest"\n'
                                     '[[points]]\nrule = {rounding = "truncate"}\n')
    spec = build_spec(tmp_path / "s.toml", grids=("rule.lr=0.05,0.1",))
    trials = expand(spec, FP)
    assert spec.name == "ks" and len(trials) == 8 and trials[0].seeds == [0, 1, 2]
    assert {t.config["rule"]["rounding"] for t in trials} == {"nearest", "truncate"}
    assert {t.config["rule"]["p"] for t in trials} == {0.1}
    (tmp_path / "s.yaml").write_text("seeds: [0, 1]\nbase: {mode: hm, epochs: 0.5}\ngrid:\n  rule.k: [5, 50]\n")
    assert [t.config["rule"]["k"] for t in expand(build_spec(tmp_path / "s.yaml"), FP)] == [5, 50]


@pytest.mark.parametrize("kwargs, message", [
    (dict(grids=("rule.kk=1,2",)), "--grid 'rule.kk=1,2': unknown config path 'rule.kk': expected rule.k or rule.p? (one of rule.lr"),
    (dict(grids=("rule.k",)), "--grid 'rule.k': expected PATH=VALUE"),
    (dict(grids=("rule.k=1,0",)), "--grid rule.k=0: k=0 is not allowed"),
    (dict(sets=("mode=hm", "rule.p=2")), "--set rule.p: p=2.0 is not allowed"),
    (dict(sets=("mode=xx",)), "--set mode: mode='xx' is not allowed"),
    (dict(grids=("seeds=1,2",)), "use --seeds"),
    (dict(seeds="3-1"), "--seeds: ranges written low-high"),
    (dict(sets=("mode=hm",), grids=("transfer.model=ideal,table",)), "--grid transfer.model='table'"),
    (dict(grids=("rule.k=1,10", "rule.k=5")), "--grid 'rule.k=5': rule.k was already given by --grid 'rule.k=1,10'"),
    (dict(sets=("epochs=1", "epochs=2")), "--set 'epochs=2': epochs was already given by --set 'epochs=1'"),
    (dict(sets=("rule.k=1",), grids=("rule.k=5,6",)), "--grid 'rule.k=5,6': rule.k was already given by --set 'rule.k=1'"),
    (dict(options={"--threads": ("threads", 0)}), "--threads 0 is not allowed: expected a value in [1,"),
    (dict(sets=("threads=1",), options={"--threads": ("threads", 2)}), "--threads 2: threads was already given by --set"),
    # the driver loads the data once, from --data-dir, and ships it to every trial: a data_dir here would be ignored
    (dict(sets=("data_dir=/nonexistent",)), "--set 'data_dir=/nonexistent': not a setting of a spec file or --set: use --data-dir"),
    (dict(grids=("data_dir=/a,/b",)), "--grid 'data_dir=/a,/b': not a setting of a spec file or --set: use --data-dir"),
])
def test_bad_input_names_the_option(kwargs, message):
    with pytest.raises(SpecError) as e:
        build_spec(None, **kwargs)
    assert message in str(e.value)


def test_bad_files(tmp_path):
    cases = {"a.toml": ("[base\n", "not valid TOML"), "b.toml": ("[grid]\nrule.k = 3\n", "[grid] rule.k: expected a non-empty list"),
             "c.toml": ("grids = 1\n", "unknown key 'grids'"), "d.yaml": ("base: [1\n", "not valid YAML"),
             "e.json": ("{}", "expected a .toml, .yaml or .yml file"),
             "f.toml": ("[base]\nnetwork.size = [1]\n", "unknown config path 'network.size'"),
             "g.toml": ("[base]\ndata_dir = \"/x\"\n", "[base] data_dir: not a setting of a spec file or --set: use --data-dir"),
             "h.toml": ("[grid]\ndata_dir = [\"/x\"]\n", "[grid] data_dir: not a setting of a spec file or --set: use --data-dir"),
             "i.yaml": ("points:\n  - {data_dir: /x}\n", "points[0] data_dir: not a setting of a spec file or --set: use --data-dir")}
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
            build_spec(tmp_path / name)
    with pytest.raises(SpecError, match="cannot be read"):
        build_spec(tmp_path / "missing.toml")


def test_values_and_paths():
    assert parse_assignment("network.sizes=[[784,10],[784,20,10]]", "--grid", True) == ("network.sizes", [[784, 10], [784, 20, 10]])
    assert parse_assignment("rule.rounding=nearest,truncate", "--grid", True)[1] == ["nearest", "truncate"]
    assert parse_assignment("ledger.count_zero_updates=false", "--set", False)[1] is False
    assert "rule.k" in configs.config_paths() and "transfer.sigma_levels" in configs.config_paths()
    assert configs.canonical(configs.resolve({"epochs": 2}))["epochs"] == 2.0


def test_a_grid_axis_shares_its_path_with_no_point_and_no_base_value(tmp_path):
    """A [[points]] value on a [grid] axis's path had been dropped without a word (2 trials, k=10 and
    30, for points k=20 and 50), as had a [base] one: refused, naming both."""
    (tmp_path / "p.toml").write_text('[grid]\n"rule.k" = [10, 30]\n[[points]]\n"rule.k" = 20\n[[points]]\n"rule.k" = 50\n')
    with pytest.raises(SpecError) as e:
        build_spec(tmp_path / "p.toml")
    assert str(e.value) == (f"spec file {tmp_path / 'p.toml'} [grid] rule.k: also set by points[0] (rule.k=20), which no "
                            "trial would use (each point is crossed with every grid value): set rule.k in [grid] or in "
                            "[[points]], not both")
    (tmp_path / "b.yaml").write_text("base: {rule: {k: 3}}\ngrid: {rule.k: [10, 30]}\n")
    with pytest.raises(SpecError, match=r"b.yaml \[grid\] rule.k: also set in \[base\] \(rule.k=3\), which no trial would use"):
        build_spec(tmp_path / "b.yaml")
    # a point's value replaces the base's, for that point only
    (tmp_path / "ok.toml").write_text('[base]\n"rule.k" = 7\n[[points]]\n"rule.k" = 20\n[[points]]\n"rule.p" = 0.1\n')
    assert [(t.params, t.config["rule"]["k"]) for t in expand(build_spec(tmp_path / "ok.toml"), FP)] == [
        ({"rule.k": 20}, 20), ({"rule.p": 0.1}, 7)]


def test_the_command_line_replaces_a_points_value(tmp_path):
    """docs/sweeps.md: --set and --grid override the file. A point's rule.k had beaten --set rule.k=5;
    the command line now wins in [base], [grid] and every point alike."""
    (tmp_path / "p.toml").write_text('[base]\n"rule.k" = 7\n[[points]]\n"rule.k" = 20\n"rule.p" = 0.1\n'
                                     '[[points]]\n"rule.k" = 50\n"rule.p" = 0.2\n')
    trials = expand(build_spec(tmp_path / "p.toml", sets=("rule.k=5",)), FP)
    assert [(t.params, t.config["rule"]["k"], t.config["rule"]["p"]) for t in trials] == [
        ({"rule.p": 0.1}, 5, 0.1), ({"rule.p": 0.2}, 5, 0.2)]
    trials = expand(build_spec(tmp_path / "p.toml", grids=("rule.k=5,6",)), FP)
    assert [(t.params, t.config["rule"]["k"]) for t in trials] == [
        ({"rule.p": 0.1, "rule.k": 5}, 5), ({"rule.p": 0.1, "rule.k": 6}, 6),
        ({"rule.p": 0.2, "rule.k": 5}, 5), ({"rule.p": 0.2, "rule.k": 6}, 6)]
    (tmp_path / "t.toml").write_text('[[points]]\nthreads = 2\n"rule.k" = 20\n')
    assert expand(build_spec(tmp_path / "t.toml", options={"--threads": ("threads", 1)}), FP)[0].config["threads"] == 1
    # points that differed only in the path replaced would run one trial twice: refused, naming them
    (tmp_path / "k.toml").write_text('[[points]]\n"rule.k" = 20\n[[points]]\n"rule.k" = 50\n')
    for option in (dict(sets=("rule.k=5",)), dict(grids=("rule.k=5,6",))):
        with pytest.raises(SpecError) as e:
            build_spec(tmp_path / "k.toml", **option)
        how = "--set 'rule.k=5'" if "sets" in option else "--grid 'rule.k=5,6'"
        assert str(e.value) == (f"{how}: replaces rule.k in the points of k.toml, which leaves points[0] and points[1] "
                                "the same ({}): drop one of them from the file, or leave rule.k to the points")


def test_yaml_reads_exponent_floats_as_toml_and_the_command_line_do(tmp_path):
    """PyYAML (YAML 1.1) had read 1e-2 as the string '1e-2', refused as "expected a number", where
    TOML and --set read a float: the three now give the same trial; a quoted '1e-2' stays a string."""
    (tmp_path / "s.yaml").write_text("base: {rule: {lr: 1e-2}}\ngrid: {rule.p: [1E-1, +2e-1]}\n")
    (tmp_path / "s.toml").write_text('[base]\n"rule.lr" = 1e-2\n[grid]\n"rule.p" = [1E-1, +2e-1]\n')
    spec = build_spec(tmp_path / "s.yaml")
    assert spec.base == {"rule.lr": 0.01} and spec.grid == {"rule.p": [0.1, 0.2]}
    keys = [t.key for t in expand(spec, FP)]
    assert keys == [t.key for t in expand(build_spec(tmp_path / "s.toml"), FP)]
    assert keys == [t.key for t in expand(build_spec(None, sets=("rule.lr=1e-2",), grids=("rule.p=1E-1,2e-1",)), FP)]
    (tmp_path / "q.yaml").write_text("base: {rule: {lr: '1e-2', k: 10}, epochs: 1.5}\n")
    with pytest.raises(SpecError, match=r"q.yaml \[base\] rule.lr: lr='1e-2' is not allowed: expected a number"):
        build_spec(tmp_path / "q.yaml")
    assert build_spec(tmp_path / "q.yaml", check_values=False).base == {"rule.lr": "1e-2", "rule.k": 10, "epochs": 1.5}


@pytest.mark.parametrize("name, text, message", [
    ("a.toml", '[base]\n"rule.k" = 5\nrule = {k = 7}\n',
     "a.toml [base]: rule.k was already given (as key 'rule.k'), and again as key 'k' of table 'rule'; "
     "give each config path once"),
    ("b.toml", '[[points]]\nrule = {k = 5}\n"rule.k" = 7\n',
     "b.toml points[0]: rule.k was already given (as key 'k' of table 'rule'), and again as key 'rule.k'"),
    ("c.yaml", "base:\n  rule.k: 5\n  rule: {k: 7}\n",
     "c.yaml [base]: rule.k was already given (as key 'rule.k'), and again as key 'k' of table 'rule'"),
    ("d.yaml", "base:\n  rule: {k: 5, k: 7}\n",
     "d.yaml: base.rule.k is given twice (line 2), and YAML would keep the last silently; give each config path once"),
    ("e.yaml", "seeds: 0\nbase:\n  epochs: 1\n  mode: hm\n  epochs: 2\n", "e.yaml: base.epochs is given twice (lines 3 and 5)"),
    ("f.yaml", "points:\n  - {mode: hm}\n  - mode: hm\n    mode: fp\n", "f.yaml: points[1].mode is given twice (lines 3 and 4)"),
    ("g.yaml", "grid:\n  rule.k: [1, 2]\ngrid:\n  rule.k: [3]\n", "g.yaml: grid is given twice (lines 1 and 3)"),
])
def test_a_path_given_twice_in_a_file_is_refused(tmp_path, name, text, message):
    """The later value had won silently (k=7), in TOML (a dotted and a nested key) and YAML (the same and
    PyYAML's duplicate keys), where --set rule.k=5 --set rule.k=7 is refused."""
    (tmp_path / name).write_text(text)
    with pytest.raises(SpecError) as e:
        build_spec(tmp_path / name, check_values=False)
    assert message in str(e.value) and str(tmp_path / name) in str(e.value)


def test_a_yaml_merge_may_replace_what_it_brings_in(tmp_path):
    # a merge key's values are defaults that the mapping's own keys replace: YAML's meaning, not a duplicate
    (tmp_path / "m.yaml").write_text("base: &b\n  epochs: 0.5\n  mode: hm\npoints:\n  - <<: *b\n    mode: fp\n")
    spec = build_spec(tmp_path / "m.yaml", check_values=False)
    assert spec.base == {"epochs": 0.5, "mode": "hm"} and spec.points == [{"epochs": 0.5, "mode": "fp"}]
