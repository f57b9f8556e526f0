"""``ferristor train``'s config: options as shortcuts for config paths, ``--config`` and ``--set`` for
every other field (the circuit transfer's device chain), conflicts refused, and a changed chain trains
differently."""
import dataclasses
import json

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli, train
from ferristor.cli.train_config import NEGATED, NOT_CONFIG, OPTION_PATHS, train_config
from ferristor.experiments.config import task_config
from ferristor.sweeps import configs
from ferristor.sweeps.spec import SpecError


def _config(args):
    ctx = train.make_context("train", list(args))
    with ctx:
        return train_config(ctx, ctx.params["config_file"], ctx.params["sets"])


def test_every_option_is_a_config_path_or_says_where_the_run_goes():
    names = {p.name for p in train.params}
    assert names == set(OPTION_PATHS) | set(NOT_CONFIG)
    for path in OPTION_PATHS.values():
        configs.check_path(path)
    assert set(NEGATED) <= set(OPTION_PATHS)


@pytest.mark.parametrize("args, old", [
    ((), dict(dataset="mnist", mode="hm-var")),
    (("--dataset", "ecg", "--mode", "hm", "--k", "10", "--skip-zero-updates", "--bias", "--eval-every", "0.5"),
     dict(dataset="ecg", mode="hm", k=10, count_zero_updates=False, bias=True, eval_every=0.5)),
    (("--dataset", "fashion-mnist", "--norm", "batch", "--batch", "4", "--sigma", "0.3", "--level-means", "measured",
      "--seeds", "0-2", "--memristor-ops-unselected", "1", "--no-output-norm", "--skip-unchanged-transfers"),
     dict(dataset="fashion-mnist", norm="batch", batch=4, sigma_levels=0.3, level_means="measured", seeds=[0, 1, 2],
          memristor_ops_unselected=1, output_norm=False, transfer_writes_unchanged=False)),
])
def test_options_give_the_config_they_gave_before_set_existed(args, old):
    """The same config as the task preset with the options as overrides (how train built it before)."""
    assert dataclasses.asdict(_config(args)) == dataclasses.asdict(task_config(**old))


def test_set_reaches_any_field_and_config_files_under_it(tmp_path):
    spec = tmp_path / "chain.toml"
    spec.write_text('seeds = "3-4"\n[base]\n"rule.k" = 20\n[base.transfer.circuit.memristor.curve]\nsigma_c2c = 0.05\n'
                    'sigma_d2d = 0.05\n')
    cfg = _config(["--mode", "hm-var", "--transfer-model", "circuit", "--config", str(spec),
                   "--set", "transfer.circuit.memristor.curve.sigma_d2d=0.01", "--set", "ledger.memristor_energy_pj=0.5"])
    curve = cfg.transfer.circuit.memristor.curve
    assert (curve.sigma_c2c, curve.sigma_d2d) == (0.05, 0.01)  # --set over the file
    assert cfg.rule.k == 20 and cfg.seeds == [3, 4] and cfg.transfer.model == "circuit"
    assert cfg.ledger.memristor_energy_pj == 0.5


@pytest.mark.parametrize("args, file, message", [
    (("--k", "10", "--set", "rule.k=20"), None, "--k and --set rule.k both set rule.k: give it once"),
    (("--seeds", "0-1", "--config", "{f}"), 'seeds = "0-3"\n', "--seeds and s.toml seeds both set seeds: give it once"),
    (("--config", "{f}"), '[grid]\n"rule.k" = [1, 10]\n', "make a sweep of several runs: run it with 'ferristor sweep"),
    (("--set", "transfer.circuit.line.c_tl_ff=-3",), None, "--set transfer.circuit.line.c_tl_ff: TransferLineConfig.c_tl_ff"),
    (("--set", "transfer.circuit.nope=1",), None, "unknown config path 'transfer.circuit.nope'"),
    (("--set", "data_dir=/x",), None, "not a setting of a spec file or --set: use --data-dir"),
    (("--mode", "hm", "--set", "layout.memristors=1"), None,
     "--set layout.memristors: SynapseLayout.memristors=1 is not allowed: expected 2, the G+/G− pair"),
])
def test_conflicts_and_bad_values_are_one_line(tmp_path, args, file, message):
    if file is not None:
        (tmp_path / "s.toml").write_text(file)
    args = [a.format(f=tmp_path / "s.toml") for a in args]
    with pytest.raises(SpecError) as e:
        _config(args)
    assert message in str(e.value)
    r = CliRunner().invoke(cli, ["train", *args, "--no-progress", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_changed_device_chain_trains_differently(mnist_data_dir, tmp_path):
    """End to end through the command line: the chain of --set is the one the transfers run."""
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    common = ["train", "--mode", "hm-var", "--transfer-model", "circuit", "--epochs", "0.005", "--k", "50",
              "--test-limit", "300", "--no-progress", *data]
    out = {}
    for name, sets in (("preset", []), ("wide", ["--set", "transfer.circuit.memristor.curve.sigma_c2c=0.4"])):
        r = CliRunner().invoke(cli, [*common, *sets, "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        out[name] = json.loads((tmp_path / name / "results.json").read_text())
    assert out["wide"]["config"]["transfer"]["circuit"]["memristor"]["curve"]["sigma_c2c"] == 0.4
    assert out["preset"]["config"]["transfer"]["circuit"]["memristor"]["curve"]["sigma_c2c"] == 0.0813
    assert out["preset"]["history"] != out["wide"]["history"]
    assert out["preset"]["ledger"] == out["wide"]["ledger"]  # the same writes, other conductances


def test_an_integral_float_sets_an_int_field():
    """--set rule.k=1e9 had been refused as "expected an integer": JSON reads 1e9 as a float."""
    assert _config(["--set", "rule.k=1e3"]).rule.k == 1000
    with pytest.raises(SpecError, match=r"--set rule.k: k=1.5 is not allowed: expected an integer"):
        _config(["--set", "rule.k=1.5"])


def test_a_set_value_is_checked_with_the_options_given_beside_it():
    """--set network.norm=batch is valid with --batch 4 (checked together, not on the preset alone)."""
    cfg = _config(["--set", "network.norm=batch", "--batch", "4"])
    assert (cfg.network.norm, cfg.batch) == ("batch", 4)


@pytest.mark.parametrize("args, says, never", [
    (("--set", "transfer.model=circuit", "--set", "transfer.circuit.fecap.switching.model=bogus"),
     "--set transfer.circuit.fecap.switching.model: SwitchingConfig.model='bogus'", "--set transfer.model:"),
    (("--set", "transfer.circuit.fecap.switching.model=merz", "--set", "transfer.model=ideal"),
     "--set transfer.model: transfer.model='ideal'", "switching"),
    (("--set", "network.norm=batch"), "--set network.norm: batch=1 is not allowed with network.norm='batch'", "--batch"),
    # a cross-field refusal names the field typed, not the one it conflicts with
    (("--set", "transfer.sigma_levels=inf"), "--set transfer.sigma_levels: TransferConfig.sigma_levels=inf is not allowed: "
     "expected a finite number", "'inf'"),
    (("--set", "layout.hidden_bits=3"), "--set layout.hidden_bits: SynapseLayout.hidden_bits=3 is not allowed with "
     "SynapseLayout.analogue_magnitude_bits=3: expected at least 4", "analogue_magnitude_bits=3 is not allowed"),
    (("--set", "rule.k=0"), "--set rule.k:", "--k"),
    (("--no-bias", "--set", "network.bias=true"), "--no-bias and --set network.bias both set network.bias", "--bias "),
    (("--norm", "batch"), "batch=1 is not allowed with --norm batch", "--batch"),
])
def test_errors_name_what_the_user_typed_and_only_that(tmp_path, args, says, never):
    """The culprit by its exact path (two paths ending in 'model' are told apart), and an option's
    flag only where that option was typed."""
    r = CliRunner().invoke(cli, ["train", *args, "--no-progress", "--out", str(tmp_path / "run")])
    line = r.stderr.strip().splitlines()[-1]
    assert r.exit_code == 2 and says in line and never not in line, line


def test_a_config_file_for_a_sweep_is_refused_by_train(tmp_path):
    (tmp_path / "s.toml").write_text('seeds = "0-3"\nseeds_per_trial = 2\n[base]\nepochs = 1\n')
    with pytest.raises(SpecError, match="seeds_per_trial splits a sweep's seeds into trials"):
        _config(["--config", str(tmp_path / "s.toml")])


def test_runs_saved_before_the_chain_existed_compare_as_the_default_chain():
    """A config saved before transfer.circuit existed differs from today's default in nothing, and
    from a changed chain in that one field (not in all 57 of the chain's)."""
    from ferristor.experiments.run_folder import config_differences
    today = dataclasses.asdict(configs.resolve({"transfer.model": "circuit"}))
    old = json.loads(json.dumps(today))
    for name in ("circuit", "circuit_sampler", "circuit_table_draws"):
        del old["transfer"][name]
    assert config_differences(old, today) == []
    changed = dataclasses.asdict(configs.resolve({"transfer.model": "circuit",
                                                  "transfer.circuit.memristor.curve.sigma_c2c": 0.2}))
    assert config_differences(old, changed) == [("transfer.circuit.memristor.curve.sigma_c2c", 0.0813, 0.2)]


def _sweep_folder(tmp_path):
    """A folder train refuses once its config is read (a sweep's): what train said until then, at no training."""
    folder = tmp_path / "a-sweep"
    folder.mkdir(parents=True)
    (folder / "sweep.sqlite").write_bytes(b"")
    return str(folder)


def test_mode_fp_warns_of_the_rule_and_ledger_options_it_never_reads(tmp_path):
    """--mode fp took --k 5, --rounding nearest, --skip-unchanged-transfers… silently (recorded as if they
    had acted) while --sigma warned: each one fp never reads warns, named as typed, the negated flags
    as the flags; --sampler (fp's masks read it) does not, nor the same options in mode hm-var."""
    opts = ["--k", "5", "--rounding", "nearest", "--sampler", "sparse", "--skip-zero-updates",
            "--skip-unchanged-transfers", "--memristor-ops-unselected", "1", "--no-progress"]
    r = CliRunner().invoke(cli, ["train", "--mode", "fp", *opts, "--out", _sweep_folder(tmp_path)])
    assert r.exit_code == 2, r.output  # the folder's refusal: nothing trained
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning: mode 'fp'")]
    assert warned == ["warning: mode 'fp' has float weights: no transfer, no grid to round onto and no devices to "
                      "count: --k 5, --rounding nearest, --memristor-ops-unselected 1, --skip-zero-updates, "
                      "--skip-unchanged-transfers have no effect"], r.stderr
    r = CliRunner().invoke(cli, ["train", "--mode", "hm-var", *opts, "--out", _sweep_folder(tmp_path / "hm")])
    assert r.exit_code == 2 and "have no effect" not in r.stderr, r.stderr
    r = CliRunner().invoke(cli, ["train", "--mode", "fp", "--sampler", "sparse", "--no-progress",
                                 "--out", _sweep_folder(tmp_path / "fp")])
    assert r.exit_code == 2 and "warning" not in r.stderr, r.stderr


def test_another_configuration_names_a_negated_flag_by_its_own_values(tmp_path):
    """'differing in --skip-zero-updates (True there, False now)' had shown the field behind the flag
    (ledger.count_zero_updates) under the flag's name: the flag was given now, not then."""
    from ferristor.config_base import to_dict
    flags = ["--skip-zero-updates", "--skip-unchanged-transfers"]
    for saved_with, now_with, says in [
        ([], flags, "differing in --skip-zero-updates (False there, True now), "
                    "--skip-unchanged-transfers (False there, True now);"),
        # not typed now: the field, by its path, with its own values
        (flags, [], "differing in ledger.count_zero_updates (False there, True now), "
                    "ledger.transfer_writes_unchanged (False there, True now);"),
    ]:
        out = tmp_path / f"run{len(saved_with)}"
        out.mkdir()
        (out / "results.json").write_text(json.dumps({"config": to_dict(_config(saved_with))}))
        r = CliRunner().invoke(cli, ["train", *now_with, "--no-progress", "--out", str(out)])
        assert r.exit_code == 2 and says in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
