"""Every rejected configuration fails before any work, naming the field, the value and what is allowed."""
import pytest

from ferristor.errors import ConfigError, UnusedSettingsWarning
from ferristor.experiments.config import TrainConfig, task_config
from ferristor.experiments.seeds import parse_seeds


@pytest.mark.parametrize("kw,field", [
    (dict(k=0), "k"), (dict(k=-5), "k"), (dict(p=0.0), "p"), (dict(p=1.01), "p"), (dict(lr=0), "lr"),
    (dict(lr=-0.1), "lr"), (dict(sigma_levels=-0.1), "sigma_levels"), (dict(rounding="ceil"), "rounding"),
    (dict(epochs=0), "epochs"), (dict(threads=0), "threads"), (dict(seeds="3-1"), "seeds"),
    (dict(seeds="a-b"), "seeds"), (dict(seeds=""), "seeds"), (dict(seeds="1,1"), "seeds"),
    (dict(backend="cuda-magic"), "backend"), (dict(level_means="linear"), "level_means"),
    # beyond the 32-bit kernels' range: 0 or inf in float32 (the loss had diverged, blamed on lr)
    (dict(hidden_lsb=1e-300), "hidden_lsb"), (dict(hidden_lsb=1e31), "hidden_lsb"), (dict(sigma_levels=1e300), "sigma_levels"),
])
def test_rejected(kw, field):
    with pytest.raises(ConfigError) as e:
        task_config("mnist", "hm-var", **kw)
    assert field in str(e.value) and "expected" in str(e.value)


def test_unknown_dataset_and_mode():
    with pytest.raises(ConfigError, match="dataset='cifar'.*'mnist'"):
        task_config("cifar")
    with pytest.raises(ConfigError, match="mode='hm2'.*'hm-var'"):
        TrainConfig(mode="hm2")


def test_mode_and_transfer_model_must_agree():
    with pytest.raises(ConfigError, match="transfer.model"):
        task_config("mnist", "hm", transfer_model="table")


def test_transfer_settings_in_mode_fp_warn_that_they_do_nothing():
    import warnings

    from ferristor.errors import FerristorWarning
    with pytest.warns(FerristorWarning, match=r"transfer.model='circuit', transfer.sigma_levels=0.3 have no effect"):
        task_config("ecg", "fp", transfer_model="circuit", sigma_levels=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task_config("ecg", "fp")  # the preset itself says nothing


def test_transfer_settings_a_transfer_model_ignores_warn_that_they_do_nothing():
    import warnings

    from ferristor.errors import FerristorWarning
    with pytest.warns(FerristorWarning, match=r"'circuit' does not use them: transfer.sigma_levels=0.1, "
                                              r"transfer.level_means='measured' have no effect"):
        task_config("mnist", "hm-var", transfer_model="circuit", sigma_levels=0.1, level_means="measured")
    with pytest.warns(FerristorWarning, match=r"'ideal' does not use them: transfer.sign_guard='fold' has no effect"):
        task_config("mnist", "hm", sign_guard="fold", level_means="measured")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task_config("mnist", "hm", level_means="measured")  # the ideal transfer onto the measured means
        task_config("mnist", "hm-var", sigma_levels=0.3, level_means="measured", sign_guard="fold")
        task_config("mnist", "hm-var", transfer_model="circuit")


def test_seed_ranges():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7-8") == [0, 3, 7, 8]
    assert parse_seeds(5) == [5]


def test_task_presets_follow_the_paper():
    c = task_config("fashion-mnist", "fp")
    assert c.network.sizes == (784, 200, 100, 100, 10) and c.rule.p == 0.1 and c.rule.lr == 0.1
    e = task_config("ecg", "hm")
    assert e.network.sizes == (20, 200, 1) and e.network.output == "sigmoid" and e.network.norm == "none"
    assert e.rule.lr == 0.01 and e.rule.p == 0.2  # lr: the paper's 0.3 collapses training here (RESULTS.md)


def test_the_circuit_chain_is_a_config_and_its_unread_settings_warn():
    """transfer.circuit is the device chain the 'circuit' model runs (default: the calibrated preset);
    a setting of it that training does not read, or any of it under another model, warns."""
    import dataclasses
    import warnings

    from ferristor.circuit.charge_transfer import ChargeTransferConfig
    from ferristor.errors import FerristorWarning
    from ferristor.physics.presets import martemucci2025
    from ferristor.sweeps import configs
    assert dataclasses.asdict(task_config("mnist", "hm-var").transfer.circuit) == dataclasses.asdict(martemucci2025())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = configs.resolve({"transfer.model": "circuit", "transfer.circuit.memristor.curve.sigma_c2c": 0.02})
    assert isinstance(cfg.transfer.circuit, ChargeTransferConfig) and cfg.transfer.circuit.memristor.curve.sigma_c2c == 0.02
    with pytest.warns(FerristorWarning, match=r"no device history .*transfer.circuit.memristor.endurance.n_close=1000.0 "
                                              r"has no effect"):
        configs.resolve({"transfer.model": "circuit", "transfer.circuit.memristor.endurance.n_close": 1000})
    with pytest.warns(FerristorWarning, match=r"'table' does not use them: transfer.circuit.line.v_sl=3.0 has no effect"):
        configs.resolve({"transfer.circuit.line.v_sl": 3.0})
    with pytest.raises(ConfigError, match="sigma_c2c"):
        configs.resolve({"transfer.model": "circuit", "transfer.circuit.memristor.curve.sigma_c2c": -1})


def test_a_default_circuit_chain_stays_out_of_a_runs_identity():
    """Runs saved before transfer.circuit existed keep their identity (checkpoints resume, sweep keys
    stay); a changed chain is part of it, also as read back from JSON (tuples as lists)."""
    import dataclasses
    import json

    from ferristor.experiments.config import run_identity
    from ferristor.sweeps import configs
    d = dataclasses.asdict(task_config("mnist", "hm-var", transfer_model="circuit"))
    assert "circuit" not in run_identity(d)["transfer"]
    assert "circuit" not in run_identity(json.loads(json.dumps(d)))["transfer"]
    changed = dataclasses.asdict(configs.resolve({"transfer.model": "circuit", "transfer.circuit.line.c_tl_ff": 380.0}))
    assert run_identity(json.loads(json.dumps(changed)))["transfer"]["circuit"]["line"]["c_tl_ff"] == 380.0


def test_the_circuit_sampler_is_named_checked_and_kept_out_of_old_identities():
    import dataclasses

    from ferristor.errors import FerristorWarning
    from ferristor.experiments.config import run_identity
    from ferristor.sweeps import configs
    d = dataclasses.asdict(task_config("mnist", "hm-var", transfer_model="circuit"))
    assert not {"circuit_sampler", "circuit_table_draws"} & set(run_identity(d)["transfer"])
    q = configs.resolve({"transfer.model": "circuit", "transfer.circuit_sampler": "quantiles"})
    assert run_identity(dataclasses.asdict(q))["transfer"]["circuit_sampler"] == "quantiles"
    with pytest.raises(ConfigError, match="circuit_sampler"):
        configs.resolve({"transfer.model": "circuit", "transfer.circuit_sampler": "fast"})
    with pytest.warns(FerristorWarning, match=r"'chain' tabulates nothing: transfer.circuit_table_draws=1000"):
        configs.resolve({"transfer.model": "circuit", "transfer.circuit_table_draws": 1000})
    with pytest.warns(FerristorWarning, match=r"'table' does not use them: transfer.circuit_sampler='quantiles'"):
        configs.resolve({"transfer.circuit_sampler": "quantiles"})


def test_the_ecg_features_are_a_config_kept_out_of_old_identities():
    import dataclasses

    from ferristor.errors import FerristorWarning
    from ferristor.experiments.config import run_identity
    from ferristor.sweeps import configs
    assert "ecg" not in run_identity(dataclasses.asdict(task_config("ecg")))
    raw = configs.resolve({"dataset": "ecg", "ecg.feature_scaling": "none"})
    assert run_identity(dataclasses.asdict(raw))["ecg"]["feature_scaling"] == "none"
    with pytest.warns(FerristorWarning, match=r"dataset 'mnist' is not the ECG: ecg.feature_scaling='none' has no effect"):
        configs.resolve({"ecg.feature_scaling": "none"})
    with pytest.raises(ConfigError, match="feature_scaling"):
        configs.resolve({"dataset": "ecg", "ecg.feature_scaling": "log"})


def test_an_energy_in_another_unit_warns_by_name():
    """Energies in joules where fJ/pJ per operation are asked (1e-13 for 100 fJ) had been taken and
    printed as 0.00 nJ. (k in mode 'fp' stays silent: a sweep crosses modes at one k.)"""
    import warnings

    import pytest

    from ferristor.errors import FerristorWarning
    from ferristor.sweeps import configs
    with pytest.warns(FerristorWarning, match=r"ledger.fecap_energy_fj=1e-13 is 1e-28 J per operation.*fJ per operation"):
        configs.resolve({"ledger.fecap_energy_fj": 1e-13})
    with pytest.warns(FerristorWarning, match=r"ledger.memristor_energy_pj=1e\+09 is 0.001 J"):
        configs.resolve({"ledger.memristor_energy_pj": 1e9})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        configs.resolve({"ledger.fecap_energy_fj": 30, "ledger.memristor_energy_pj": 0.2})
        configs.resolve({"mode": "fp", "rule.k": 5})


def test_every_true_or_false_field_refuses_any_other_value():
    """A text is truthy: `--grid network.bias=no` had trained with a bias, and `maybe` too. Every field
    declared bool (whatever section, including those added later) takes True or False only."""
    from ferristor.sweeps import configs
    paths = [p for p in configs.config_paths() if configs.allowed_types(p) == {bool}]
    assert {"network.bias", "network.output_norm", "ledger.count_zero_updates", "ledger.transfer_writes_unchanged",
            "scheme.reset_fast"} <= set(paths)
    from ferristor.rule.schemes import _OWNERS
    for path in paths:
        base = {"mode": "hm"}
        if path.startswith("scheme."):  # a baseline's field: set under its own rule
            base["scheme.rule"] = _OWNERS[path.split(".")[-1]]
        for value in ("no", "maybe", 1, None):
            with pytest.raises(ConfigError, match="expected true or false") as e:
                configs.resolve({**base, path: value})
            assert e.value.field.split(".")[-1] == path.split(".")[-1]
        configs.resolve({**base, path: False})


@pytest.mark.parametrize("rule, kw, path", [
    ("memristor-sgd", dict(k=5), "rule.k"), ("memristor-sgd", dict(k_unit="updates"), "rule.k_unit"),
    ("mixed-precision", dict(rounding="nearest"), "rule.rounding"),
    *[(r, dict(sampler="sparse"), "rule.sampler") for r in ("memristor-sgd", "mixed-precision", "tiki-taka")],
    *[(r, dict(count_zero_updates=False), "ledger.count_zero_updates") for r in ("memristor-sgd", "mixed-precision", "tiki-taka")],
    *[(r, dict(transfer_writes_unchanged=False), "ledger.transfer_writes_unchanged")
      for r in ("memristor-sgd", "mixed-precision", "tiki-taka")],
])
def test_a_setting_the_rule_never_reads_is_refused_by_name(rule, kw, path):
    """k for memristor-sgd, rounding for mixed precision, --sampler sparse and the hybrid's counting
    options for every baseline had been accepted, recorded with the results and shown, and done
    nothing (the same accuracies and counts bit for bit)."""
    with pytest.raises(ConfigError) as e:
        task_config("ecg", "hm-var", rule=rule, **kw)
    assert e.value.field == path and f"does nothing for rule {rule!r}" in str(e.value) and "default" in str(e.value)
    task_config("ecg", "hm", rule="hybrid", **kw)  # the hybrid rule reads every one of them


def test_settings_a_rule_reads_stay_accepted():
    assert task_config("ecg", "hm-var", rule="mixed-precision", k=3).rule.k == 3
    assert task_config("ecg", "hm-var", rule="tiki-taka", k=3, rounding="nearest").rule.rounding == "nearest"
    assert task_config("ecg", "hm-var", rule="memristor-sgd", rounding="truncate").rule.rounding == "truncate"
    # mode fp ignores k and rounding too, but a sweep crosses the modes at one k: train warns, the summary says it
    assert task_config("ecg", "fp", k=5, rounding="nearest").rule.k == 5


def test_rule_and_ledger_settings_mode_fp_never_reads_warn_by_name():
    """--mode fp with --k 5, --rounding nearest, --skip-unchanged-transfers… had been recorded silently
    (only the transfer's settings warned): each such setting off its default warns, naming it; what fp
    reads (its masks' sampler and p, lr, the initialisation) and fp at its defaults say nothing. A
    warning of train's, not an error of the config: a sweep crosses the modes at one k."""
    import warnings

    from ferristor.experiments.config import warn_unread_in_fp

    def check(**kw):
        warn_unread_in_fp(task_config(**kw))
    cfg = task_config("mnist", "fp", k=5, rounding="nearest", k_unit="updates", count_zero_updates=False,
                      transfer_writes_unchanged=False, memristor_ops_unselected=1, fecap_energy_fj=50.0)
    with pytest.warns(UnusedSettingsWarning) as got:
        warn_unread_in_fp(cfg)
    [w] = [w.message for w in got]
    assert w.changed == [("rule.k", 5), ("rule.k_unit", "updates"), ("rule.rounding", "nearest"),
                         ("ledger.memristor_ops_unselected", 1), ("ledger.count_zero_updates", False),
                         ("ledger.transfer_writes_unchanged", False), ("ledger.fecap_energy_fj", 50.0)]
    assert str(w).startswith("mode 'fp' has float weights: no transfer, no grid to round onto and no devices to count: "
                             "rule.k=5, ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(dataset="mnist", mode="fp")
        check(dataset="mnist", mode="fp", sampler="sparse", p=0.5, lr=0.05, hidden_lsb=0.01, init_scale=0.2,
              init_shape="normal", batch_reduction="sum")
        check(dataset="mnist", mode="hm-var", k=5, rounding="nearest", count_zero_updates=False, fecap_energy_fj=50.0)


def test_the_ignored_settings_table_is_the_rules_code():
    """IGNORED_BY_RULE, checked against the composed rules and the fused kernels it stands for."""
    import inspect

    from ferristor.experiments.config import IGNORED_BY_RULE
    from ferristor.nn.schemes import SchemeRunner
    from ferristor.rule import compose
    from ferristor.rule.schemes import SchemeConfig

    def pieces(chain):
        return [] if chain is None else [q for p in chain.pieces for q in (pieces(p) if isinstance(p, compose.Chain) else [p])]
    for rule, ignored in IGNORED_BY_RULE.items():
        r = compose.rule_for(SchemeConfig(rule=rule))
        reads_rounding = any(isinstance(p, compose.RoundOntoGrid) and p.rounding is None
                             for p in pieces(r.update) + pieces(r.transfer))
        assert ("rule.k" in ignored) == (r.transfer is None), rule  # k schedules the transfer chain only
        assert ("rule.rounding" in ignored) == (not reads_rounding), rule
        assert repr(compose.rule_for(SchemeConfig(rule=rule), False)) == repr(r)  # count_zero reaches the hybrid only
        assert {"rule.sampler", "ledger.count_zero_updates", "ledger.transfer_writes_unchanged"} <= set(ignored)
    assert "sampler" not in inspect.signature(SchemeRunner.step_cpu).parameters
    assert "sampler" not in inspect.signature(SchemeRunner.step_).parameters


def test_an_ignored_flag_is_named_as_typed_on_the_command_line():
    from ferristor.experiments.config import IgnoredSettingError
    with pytest.raises(IgnoredSettingError) as e:
        task_config("ecg", "hm-var", rule="tiki-taka", count_zero_updates=False)
    names = {"ledger.count_zero_updates": "--skip-zero-updates"}
    assert e.value.render(names.get).startswith("--skip-zero-updates: does nothing for rule 'tiki-taka': ")
    assert e.value.render(names.get).endswith("leave it out")
    assert str(e.value).startswith("ledger.count_zero_updates=False: does nothing")
