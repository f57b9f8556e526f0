"""ferristor compare-rules: rule specs, the table's numbers, the headline check, and an end-to-end run."""
import json

import pytest
from click.testing import CliRunner

from ferristor.cli.compare_rules import _split_rules
from ferristor.cli.main import cli
from ferristor.errors import ConfigError
from ferristor.experiments import compare_rules as C

from ..loaded_once import first_rows


def test_rule_specs():
    s = C.parse_rule("tiki-taka:k=10,gamma=0.1,reset_fast=false")
    assert (s.mode, s.k, s.scheme) == ("hm-var", 10, {"rule": "tiki-taka", "gamma": 0.1, "reset_fast": False})
    assert s.folder == "tiki-taka_k-10_gamma-0.1_reset_fast-false"
    assert C.parse_rule("memristor-sgd", baseline_mode="hm").mode == "hm"
    assert C.parse_rule("hm-var", baseline_mode="hm").mode == "hm-var"  # the hybrid keeps its own mode
    h = C.parse_rule("hm-var:transfer_writes_unchanged=false,p=0.5")
    cfg = C.rule_config("mnist", h, seeds=[0], epochs=1)
    assert cfg.ledger.transfer_writes_unchanged is False and cfg.rule.p == 0.5 and cfg.scheme.rule == "hybrid"
    cfg = C.rule_config("ecg", C.parse_rule("mixed-precision"), seeds=[0], epochs=1)
    assert cfg.scheme.rule == "mixed-precision" and cfg.rule.k == 1 and cfg.rule.lr == 0.01 and cfg.mode == "hm-var"
    for bad, msg in (("sgd", "presets"), ("fp:gamma=1", "unknown setting 'gamma'"),
                     ("tiki-taka:k=x", "k=x: expected an integer ≥ 1"), ("hm:k=0", "k must be"),
                     ("tiki-taka:gamma", "cannot read"), ("hm:k=1,k=2", "the setting k is given twice"),
                     ("tiki-taka:reset_fast=maybe", "reset_fast=maybe: expected true or false"),
                     ("hm:lr=fast", "lr=fast: expected a number")):
        with pytest.raises(ConfigError, match=msg):
            C.parse_rule(bad)
    with pytest.raises(ConfigError, match="epsilon"):
        C.rule_config("mnist", C.parse_rule("tiki-taka:epsilon=2"), seeds=[0])


def test_rules_split_on_presets_only():
    assert _split_rules("fp,tiki-taka:k=10,gamma=0.1,hm-var") == ["fp", "tiki-taka:k=10,gamma=0.1", "hm-var"]


def _results(rule, acc, mem_total, mem_worst, fe_total=0.0, k=100, history=None, n=1000):
    kinds = {"memristor": {"devices": 20, "ops": {"mean": mem_total / 20, "worst": mem_worst, "total": mem_total},
                           "energy_nJ": {"total": mem_total * 1e-3}, "roles": {"pair": {"mean": mem_total / 20}}}}
    if fe_total:
        kinds["fecap"] = {"devices": 140, "ops": {"mean": fe_total / 140, "worst": 9.0, "total": fe_total},
                          "energy_nJ": {"total": fe_total * 1e-4}, "roles": {"sign/MSB cells": {"mean": 9.0}}}
    rep = {"network": {"devices": {"kinds": kinds}}}
    # the training ledger, as train writes it beside the device ledger: the lifetime is read from it
    net = {"weights": 20, "transfers": n // k if rule == "hybrid" else 0, "memristor_ops": {"worst": mem_worst},
           "fecap_ops": {"worst": 9.0 * n if fe_total else 0.0}}
    return {"config": {"mode": "hm-var", "scheme": {"rule": rule}, "rule": {"k": k}, "ledger": {}},
            "final_test_accuracy": acc, "samples_per_replica": n, "devices": [rep] * len(acc),
            "ledger": [{"layers": [net], "network": net}] * len(acc),
            "timing": {"us_per_sample_replica": 5.0, "train_seconds": 1.0}, "history": history or []}


def test_rows_and_headline_by_hand():
    hist = [{"step": 250, "epoch": 0.25, "test_accuracy": [0.80, 0.80]},
            {"step": 500, "epoch": 0.5, "test_accuracy": [0.91, 0.93]},
            {"step": 1000, "epoch": 1.0, "test_accuracy": [0.95, 0.95]}]
    res = {"hm-var": _results("hybrid", [0.95, 0.95], 400.0, 20.0, fe_total=1400.0, history=hist),
           "memristor-sgd": _results("memristor-sgd", [0.92, 0.92], 6000.0, 900.0)}
    rows = {k: C.rule_row(k, v, rate=2.0) for k, v in res.items()}
    h, b = rows["hm-var"], rows["memristor-sgd"]
    assert h["memristor_energy_nJ"] == pytest.approx(0.4) and h["fecap_energy_nJ"] == pytest.approx(0.14)
    assert h["energy_device_nJ"] == pytest.approx(20e-3 + 9e-4)  # a pair's mean + the most written FeCAP role
    assert b["k"] is None and b["fecap_devices"] == 0
    # worst memristor: 900 ops in 1,000 samples → (2·10^5 − 2) ops budget / 0.9 per sample at 2 samples/s
    assert b["lifetime_days"]["memristor"] == pytest.approx((2e5 - 2) / 0.9 / 2 / 86400)
    # the hybrid: 20 operations in 10 transfers, one every 100 samples, as ferristor lifetime reads it
    assert h["lifetime_days"]["memristor"] == pytest.approx((2e5 - 2) / (2 / 100) / 2 / 86400)
    hl = C.headline(rows, res)
    assert hl["same_training_memristor"] == pytest.approx(15.0)
    # the hybrid reached 92 % at step 500 (k = 100: 5 of its 10 transfers) → half its memristor energy
    assert hl["equal_accuracy_epoch"] == 0.5 and hl["equal_accuracy_memristor"] == pytest.approx(30.0)
    assert "≥ 30×" in C.format_headline(hl)
    table = C.format_table(list(rows.values()), 2.0)
    assert "| memristor-sgd | – | 92.00 ± 0.00 (n=2) | 300 · 900 | no FeCAP |" in table


@pytest.fixture
def first_mnist_rows(monkeypatch):
    """MNIST as compare-rules reads it (from its files), cut to its first 6,000 training and 1,000 test
    rows: the rules train the same 240 samples at 10× the epochs, and hashing and checking the data no
    longer takes most of the test. Returns the names read, in order."""
    reads = []
    monkeypatch.setattr(C, "load_dataset", first_rows(C.load_dataset, 6000, 1000, reads))
    return reads


def test_compare_rules_end_to_end(mnist_data_dir, tmp_path, first_mnist_rows):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    out = tmp_path / "cr"
    args = ["compare-rules", "--datasets", "mnist", "--rules", "fp,hm-var,memristor-sgd,tiki-taka:k=2", "--seeds", "0-1",
            "--epochs", "0.04", "--eval-every", "0.02", "--test-limit", "200", *data, "--out", str(out), "--no-progress"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert first_mnist_rows == ["mnist"]  # read once for the four rules
    assert "not a device" in r.output and "| memristor-sgd | – |" in r.output and "The paper's 38× (digest §5) is another pair" in r.output
    res = json.loads((out / "mnist" / "memristor-sgd" / "results.json").read_text())
    kinds = res["devices"][0]["network"]["devices"]["kinds"]
    assert set(kinds) == {"memristor"} and res["config"]["scheme"]["rule"] == "memristor-sgd"
    assert res["ledger"][0]["network"]["memristor_ops"]["total"] == kinds["memristor"]["ops"]["total"]
    fp = json.loads((out / "mnist" / "fp" / "results.json").read_text())
    assert fp["ledger"] == [] and "not_a_device" in fp["devices"][0]["network"]["devices"]["kinds"]["digital"]
    summary = json.loads((out / "summary.json").read_text())
    assert [row["rule"] for row in summary["mnist"]["rows"]] == ["fp", "hm-var", "memristor-sgd", "tiki-taka:k=2"]
    assert (out / "compare-rules.png").stat().st_size > 10_000
    again = CliRunner().invoke(cli, [*args[:1], "--table-only", *args[1:]])  # the saved runs, nothing trained
    assert again.exit_code == 0 and "| tiki-taka:k=2 | 2 |" in again.output
    # a training option given to --table-only selects: runs of another --epochs are refused, named
    other = [a if a != "0.04" else "0.08" for a in args]
    refused = CliRunner().invoke(cli, [*other[:1], "--table-only", *other[1:]])
    assert refused.exit_code == 2 and "--epochs (0.04 there, 0.08 now)" in refused.stderr
    # none given: the runs as they were trained
    bare = CliRunner().invoke(cli, ["compare-rules", "--table-only", "--datasets", "mnist", "--rules",
                                    "fp,hm-var,memristor-sgd,tiki-taka:k=2", "--out", str(out), "--no-plot"])
    assert bare.exit_code == 0 and "| tiki-taka:k=2 | 2 |" in bare.output


def test_bad_dataset_is_named():
    r = CliRunner().invoke(cli, ["compare-rules", "--datasets", "mnist,cifar", "--no-progress"])
    assert r.exit_code == 2 and "--datasets cifar" in r.stderr


def test_table_only_takes_a_run_only_of_the_settings_asked_for(tmp_path):
    """--table-only once tabulated an --epochs 0.01 run when asked for --epochs 0.02, silently: a
    run of other settings is refused, naming them, as resuming it would be."""
    from ferristor.config_base import to_dict
    from ferristor.errors import ConfigMismatchError, DataError
    spec = C.parse_rule("hm")
    asked = dict(seeds=[0], eval_every=0.5, test_limit=0)
    made = C.rule_config("mnist", spec, epochs=0.01, threads=1, **asked)
    folder = tmp_path / "mnist" / spec.folder
    assert C.finished_results(folder, made) is None  # not run yet
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"config": to_dict(made), "final_test_accuracy": [0.5],
                                                     "devices": []}))
    # where it ran (threads, data folder) is not a setting of the run
    assert C.finished_results(folder, C.rule_config("mnist", spec, epochs=0.01, threads=2, data_dir="/x", **asked))["config"]["epochs"] == 0.01
    with pytest.raises(ConfigMismatchError) as e:
        C.finished_results(folder, C.rule_config("mnist", spec, epochs=0.02, threads=1, **asked))
    names = {"epochs": "--epochs", "out_dir": "--out", "fresh": "--fresh"}
    assert e.value.render(names.get) == (f"--out {folder} holds the results of another configuration, differing in "
                                         f"--epochs (0.01 there, 0.02 now); ask for the settings it was trained with, "
                                         f"or train it anew with --fresh")
    (folder / "results.json").write_text("{")
    with pytest.raises(DataError, match="results.json is unreadable"):
        C.finished_results(folder, made)


def test_a_rule_writes_its_results_once_and_complete(mnist_data_dir, tmp_path, monkeypatch):
    """results.json had been written by run_fit without the device ledger, then again with it: a kill
    in between left a finished-looking result whose device columns --table-only showed as '–'."""
    import ferristor.experiments.fit as fit
    writes, write_json = [], fit.write_json
    monkeypatch.setattr(fit, "write_json", lambda path, obj, *a, **k: (writes.append((path, dict(obj))),
                                                                       write_json(path, obj, *a, **k))[1])
    cfg = C.rule_config("mnist", C.parse_rule("hm"), seeds=[0], epochs=0.002, eval_every=0.002, test_limit=100,
                        data_dir=mnist_data_dir)
    folder = tmp_path / "mnist" / "hm"
    res = C.train_rule(cfg, folder, progress=False)
    assert [p.name for p, _ in writes] == ["results.json"] and "devices" in writes[0][1]
    saved = json.loads((folder / "results.json").read_text())
    assert saved["devices"] == json.loads(json.dumps(res["devices"])) and saved["devices"]
    assert C.finished_results(folder, None)["devices"] == saved["devices"]


def test_table_only_treats_a_device_rule_without_its_ledger_as_unfinished(tmp_path):
    out = tmp_path / "cr"
    whole = _results("hybrid", [0.95, 0.95], 400.0, 20.0, fe_total=1400.0)
    cut = {k: v for k, v in _results("hybrid", [0.9], 400.0, 20.0).items() if k != "devices"}
    cut["config"] = {**cut["config"], "mode": "hm"}
    fp = {k: v for k, v in _results("hybrid", [0.97], 0.0, 0.0).items() if k != "devices"}
    fp["config"] = {**fp["config"], "mode": "fp"}
    for rule, res in (("hm-var", whole), ("hm", cut), ("fp", fp)):
        (out / "mnist" / rule).mkdir(parents=True)
        (out / "mnist" / rule / "results.json").write_text(json.dumps(res))
    assert C.finished_results(out / "mnist" / "hm", None) is None  # killed before its ledger was written
    assert C.finished_results(out / "mnist" / "fp", None) is not None  # fp programs no device
    table = out / "mnist" / "table.md"
    table.write_text("an earlier table")
    before = table.stat().st_ino
    r = CliRunner().invoke(cli, ["compare-rules", "--table-only", "--datasets", "mnist", "--rules", "fp,hm,hm-var",
                                 "--out", str(out), "--no-plot"])
    assert r.exit_code == 0, r.output
    assert f"unfinished: {out / 'mnist' / 'hm'}" in r.stderr and "without --table-only" in r.stderr
    assert "| hm-var | 100 |" in r.output and "| hm |" not in r.output
    # the training's table.md is left alone; table-only.md is written whole (beside it, then renamed)
    assert table.stat().st_ino == before and table.read_text(encoding="utf-8") == "an earlier table"
    assert (table.parent / "table-only.md").read_text(encoding="utf-8").startswith("## mnist")
    assert not [p for p in table.parent.iterdir() if p.name.endswith(".part")]


def test_lifetime_is_the_reports(tmp_path):
    """compare-rules had its own per-sample lifetime (operations / samples trained): 694 d for a run
    of 600 samples at k = 500 (1 transfer) where lifetime and report say 579 d (a transfer every 500
    samples). It now reads the run as ``ferristor lifetime`` does."""
    from ferristor.report.lifetime import run_lifetime
    from ferristor.report.runs import read_run
    res = _results("hybrid", [0.5], 2.0, 2.0, fe_total=1400.0, k=500, n=600)
    (tmp_path / "results.json").write_text(json.dumps(res))
    (measured,) = [p for p in run_lifetime(read_run(tmp_path), ks=()) if p.measured]
    row = C.rule_row("hm:k=500", res, rate=1.0)
    assert row["lifetime_days"]["memristor"] == pytest.approx(measured.days(1.0)[0]) == pytest.approx((2e5 - 2) / (2 / 500) / 86400)
    assert row["lifetime_days"]["fecap"] == pytest.approx(measured.days(1.0)[1])
    # a results file without the training ledger: no lifetime measured, n/a (not 'never')
    bare = {k: v for k, v in res.items() if k != "ledger"}
    row = C.rule_row("hm:k=500", bare, rate=1.0)
    assert "lifetime_days" not in row and C.format_table([row], 1.0).split(" | ")[-2] == "n/a"


def test_headline_without_hybrid_writes_says_so_instead_of_dividing():
    """compare-rules --rules "hm-var,mixed-precision:lr=1e-9" had died of a ZeroDivisionError: the
    hybrid reached the baseline's accuracy before its first transfer (share 0), and over the whole
    run it had written no memristor (an energy of 0 under the same-training ratio)."""
    early = [{"step": 50, "epoch": 0.05, "test_accuracy": [0.9]}, {"step": 1000, "epoch": 1.0, "test_accuracy": [0.95]}]
    res = {"hm-var": _results("hybrid", [0.95], 400.0, 20.0, fe_total=1400.0, history=early),
           "mixed-precision": _results("mixed-precision", [0.9], 6000.0, 900.0)}
    rows = {k: C.rule_row(k, v, rate=1.0) for k, v in res.items()}
    hl = C.headline(rows, res, "hm-var", "mixed-precision")
    assert hl["equal_accuracy_transfers"] == 0 and "equal_accuracy_memristor" not in hl
    text = C.format_headline(hl)
    assert "before its first transfer: no memristor writes yet" in text and "15×" in text
    # k beyond the run (n // k == 0) and no write at all by either rule
    res = {"hm-var": _results("hybrid", [0.9], 0.0, 0.0, fe_total=1400.0, k=1000, n=150, history=early),
           "memristor-sgd": _results("memristor-sgd", [0.9], 0.0, 0.0, n=150)}
    rows = {k: C.rule_row(k, v, rate=1.0) for k, v in res.items()}
    hl = C.headline(rows, res)
    assert hl["same_training_memristor"] is None and hl["equal_accuracy_transfers"] == 0
    text = C.format_headline(hl)
    assert "neither wrote a memristor during training" in text and "before its first transfer" in text
    res["memristor-sgd"] = _results("memristor-sgd", [0.9], 60.0, 9.0, n=150)
    rows = {k: C.rule_row(k, v, rate=1.0) for k, v in res.items()}
    assert "hm-var wrote no memristor during training (no transfer), memristor-sgd 0.06 nJ" in C.format_headline(C.headline(rows, res))


@pytest.mark.parametrize("text, said", [
    ("memristor-sgd:k=5", "k=5 does nothing for rule 'memristor-sgd'"),
    ("mixed-precision:rounding=nearest", "rounding=nearest does nothing for rule 'mixed-precision'"),
    ("fp:k=5", "k=5 does nothing for mode 'fp'"), ("fp:rounding=truncate", "rounding=truncate does nothing for mode 'fp'"),
    ("hm:mode=fp,k=3", "k=3 does nothing for mode 'fp'"),
])
def test_a_rule_setting_its_rule_never_reads_is_refused_as_typed(text, said):
    """memristor-sgd:k=5 had trained, labelled 'memristor-sgd:k=5', bit for bit memristor-sgd."""
    with pytest.raises(ConfigError) as e:
        C.parse_rule(text)
    assert e.value.field == "rules" and e.value.value == text and said in str(e.value)


def test_rule_settings_the_rule_reads_are_kept():
    assert C.parse_rule("mixed-precision:k=3").k == 3
    assert C.parse_rule("tiki-taka:rounding=nearest").rule == {"rounding": "nearest"}
    assert C.parse_rule("memristor-sgd:rounding=truncate").rule == {"rounding": "truncate"}


def test_headline_pairs_rules_by_kind_not_exact_label():
    """--rules "hm-var:k=1000,memristor-sgd:lr=1e-9" had printed 'needs both the hybrid (hm-var) and
    memristor-sgd runs' though both ran: the pairs were looked up by the bare preset names."""
    res = {"hm-var:k=1000": _results("hybrid", [0.95], 400.0, 20.0, fe_total=1400.0, k=1000),
           "memristor-sgd:lr=1e-9": _results("memristor-sgd", [0.92], 6000.0, 900.0),
           "tiki-taka:k=2": _results("tiki-taka", [0.93], 600.0, 90.0, k=2)}
    rows = {k: C.rule_row(k, v, rate=1.0) for k, v in res.items()}
    hls = C.headlines(rows, res)
    assert [(hl["hybrid"], hl["baseline"]) for hl in hls] == [("hm-var:k=1000", "memristor-sgd:lr=1e-9"),
                                                               ("hm-var:k=1000", "tiki-taka:k=2")]
    assert C.format_headline(hls[0]).startswith("memristor programming energy of memristor-sgd:lr=1e-9 (92.00 %) "
                                                "over hm-var:k=1000 (95.00 %)")
    # with the bare presets there, they are the pair, and the variants are paired with memristor-sgd
    res.update({"hm-var": res["hm-var:k=1000"], "memristor-sgd": res["memristor-sgd:lr=1e-9"]})
    rows = {k: C.rule_row(k, v, rate=1.0) for k, v in res.items()}
    pairs = [(hl["hybrid"], hl["baseline"]) for hl in C.headlines(rows, res)]
    assert pairs[0] == ("hm-var", "memristor-sgd") and ("hm-var:k=1000", "memristor-sgd") in pairs
    assert ("hm-var", "memristor-sgd:lr=1e-9") in pairs and ("hm-var:k=1000", "tiki-taka:k=2") not in pairs
    assert "needs a hybrid run" in C.format_headline(None)


@pytest.mark.parametrize("text, preset", [("tiki-taka:foo=1", "tiki-taka"), ("hm-var:gamma=0.1", "hm-var"),
                                          ("memristor-sgd:k_unit=updates", "memristor-sgd")])
def test_an_unknown_setting_names_the_preset_as_typed(text, preset):
    """parse_rule had said "unknown setting 'foo' for None": the setting's type name overwrote the preset's."""
    with pytest.raises(ConfigError) as e:
        C.parse_rule(text)
    key = text.split(":")[1].split("=")[0]
    assert f"unknown setting {key!r} for {preset} (allowed: k, mode, lr, p, rounding" in str(e.value)


def test_a_training_of_some_rules_names_the_saved_runs_its_table_leaves_out(tmp_path):
    # a second training with --rules hm-var rewrote table.md with hm-var alone, without a word about
    # the tiki-taka run beside it
    for name, finished in (("hm-var", True), ("tiki-taka", True), ("fp", False)):
        (tmp_path / name).mkdir()
        if finished:
            (tmp_path / name / "results.json").write_text("{}")
    specs = [C.parse_rule("hm-var")]
    assert C.runs_left_out(tmp_path, specs) == ["tiki-taka"]
    assert C.runs_left_out(tmp_path, specs + [C.parse_rule("tiki-taka")]) == []
    assert C.runs_left_out(tmp_path / "absent", specs) == []


def test_one_seed_has_no_spread_in_the_table():
    """compare-rules printed '± 0.00 (n=1)', which reads as a measured zero spread; compare says n/a."""
    one = C.rule_row("hm:k=500", _results("hybrid", [0.5], 2.0, 2.0, fe_total=1400.0, k=500, n=600), rate=1.0)
    two = C.rule_row("hm:k=500", _results("hybrid", [0.5, 0.7], 2.0, 2.0, fe_total=1400.0, k=500, n=600), rate=1.0)
    assert "± n/a (n=1)" in C.format_table([one], 1.0)
    assert "± 14.14 (n=2)" in C.format_table([two], 1.0)
