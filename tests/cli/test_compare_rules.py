"""ferristor compare-rules on saved runs (--table-only): which runs a given option selects, and what
the table and headline say about them."""
import json

from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.config_base import to_dict
from ferristor.experiments import compare_rules as C


def _device_results(cfg, acc, mem_total, fe_total=0.0, n=1000):
    """A finished run's results.json: its real config, the device ledger and the training ledger."""
    kinds = {"memristor": {"devices": 20, "ops": {"mean": mem_total / 20, "worst": 9.0, "total": mem_total},
                           "energy_nJ": {"total": mem_total * 1e-3}, "roles": {"pair": {"mean": mem_total / 20}}}}
    if fe_total:
        kinds["fecap"] = {"devices": 140, "ops": {"mean": fe_total / 140, "worst": 9.0, "total": fe_total},
                          "energy_nJ": {"total": fe_total * 1e-4}, "roles": {"sign/MSB cells": {"mean": 9.0}}}
    net = {"weights": 20, "transfers": 10, "memristor_ops": {"worst": 9.0}, "fecap_ops": {"worst": 9.0}}
    return {"config": to_dict(cfg), "final_test_accuracy": acc, "samples_per_replica": n,
            "devices": [{"network": {"devices": {"kinds": kinds}}}] * len(acc),
            "ledger": [{"layers": [net], "network": net}] * len(acc),
            "timing": {"us_per_sample_replica": 5.0, "train_seconds": 1.0}, "history": []}


def _saved(out, baseline_mode="hm-var"):
    run = dict(seeds=[0], epochs=0.01, eval_every=0.01, test_limit=100)
    for text, acc, mem, fe in (("hm-var", [0.95], 400.0, 1400.0), ("memristor-sgd", [0.92], 6000.0, 0.0)):
        spec = C.parse_rule(text, baseline_mode)
        folder = out / "mnist" / spec.folder
        folder.mkdir(parents=True)
        res = _device_results(C.rule_config("mnist", spec, **run), acc, mem, fe)
        (folder / "results.json").write_text(json.dumps(res))
    return out


def _table(out, *more):
    return CliRunner().invoke(cli, ["compare-rules", "--table-only", "--datasets", "mnist", "--rules",
                                    "hm-var,memristor-sgd", "--out", str(out), "--no-plot", *more])


def test_baselines_in_another_mode_are_shown_and_said(tmp_path):
    """--baseline-mode hm trained the baselines with ideal writes beside the hybrid's hm-var: neither
    the table nor the headline said so."""
    r = _table(_saved(tmp_path / "cr", baseline_mode="hm"))
    assert r.exit_code == 0, r.output
    assert "| rule | mode | k |" in r.output and "| memristor-sgd | hm | – |" in r.output and "| hm-var | hm-var | 100 |" in r.output
    assert "mode: hm = ideal memristor writes; hm-var = memristor writes with variability" in r.output
    assert ("Not the same devices: memristor-sgd was trained in mode hm (ideal memristor writes), hm-var in mode "
            "hm-var") in r.output
    same = _table(_saved(tmp_path / "same"))
    assert same.exit_code == 0 and "| rule | k |" in same.output and "Not the same devices" not in same.output


def test_table_only_with_baseline_mode_selects_like_the_other_options(tmp_path):
    """--table-only --baseline-mode hm tabulated the hm-var baselines under a headline about hm."""
    out = _saved(tmp_path / "cr")
    r = _table(out, "--baseline-mode", "hm")
    assert r.exit_code == 2 and "--baseline-mode ('hm-var' there, 'hm' now)" in r.stderr, r.output
    # an option given selects; those not given select nothing (the runs' seeds and epochs are not the defaults)
    assert _table(out, "--baseline-mode", "hm-var").exit_code == 0
    assert _table(out, "--test-limit", "100").exit_code == 0
    r = _table(out, "--epochs", "0.02")
    assert r.exit_code == 2 and "--epochs (0.01 there, 0.02 now)" in r.stderr and "--seeds" not in r.stderr


def test_table_only_leaves_the_trainings_table_summary_and_plot_alone(tmp_path):
    """--table-only with some of the rules had rewritten OUT/<dataset>/table.md and summary.json with
    only those rows: the full table of the training was lost."""
    out = _saved(tmp_path / "cr")
    full = {out / "mnist" / "table.md": "## mnist\n\nthe full table\n", out / "summary.json": '{"mnist": {}}'}
    for path, text in full.items():
        path.write_text(text, encoding="utf-8")
    r = CliRunner().invoke(cli, ["compare-rules", "--table-only", "--datasets", "mnist", "--rules", "memristor-sgd",
                                 "--out", str(out), "--no-plot"])
    assert r.exit_code == 0, r.output
    assert all(path.read_text(encoding="utf-8") == text for path, text in full.items())
    subset = (out / "mnist" / "table-only.md").read_text(encoding="utf-8")
    assert "| memristor-sgd |" in subset and "| hm-var |" not in subset
    assert [row["rule"] for row in json.loads((out / "summary-table-only.json").read_text())["mnist"]["rows"]] == ["memristor-sgd"]
    assert f"summary: {out / 'summary-table-only.json'}" in r.output
    helped = CliRunner().invoke(cli, ["compare-rules", "--help"]).output
    assert "table-only.md" in helped and "left as they were" in helped


def test_table_only_with_nothing_to_tabulate_is_exit_2_and_partial_tables_are_0(tmp_path):
    """--table-only with no finished run had printed "no results yet" and exited 0, as if it had tabulated."""
    r = _table(tmp_path / "none")
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: nothing to tabulate: no finished run of hm-var, memristor-sgd on mnist in {tmp_path / 'none'} "
        f"(OUT/<dataset>/<rule>/; run compare-rules without --table-only to train them)")
    assert "no results yet" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "none" / "summary-table-only.json").exists()
    # some of the rules saved: their table, and the missing ones said, exit 0
    out = _saved(tmp_path / "cr")
    partial = CliRunner().invoke(cli, ["compare-rules", "--table-only", "--datasets", "mnist", "--rules",
                                       "hm-var,tiki-taka", "--out", str(out), "--no-plot"])
    assert partial.exit_code == 0, partial.output
    assert "| hm-var |" in partial.stdout and f"no results yet: {out / 'mnist' / 'tiki-taka'}" in partial.stderr
