import dataclasses

from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.cli.params import config_classes


def test_every_scalar_parameter_says_where_it_comes_from():
    missing = []
    for cls in config_classes():
        if not cls.__name__.endswith(("Config", "Spec")):
            continue
        for f in dataclasses.fields(cls):
            nested = dataclasses.is_dataclass(f.default_factory()) if f.default_factory is not dataclasses.MISSING else False
            if not nested and not (f.metadata.get("source") or f.metadata.get("doc")):
                missing.append(f"{cls.__name__}.{f.name}")
    assert missing == []


def test_params_command_lists_rule_parameters():
    r = CliRunner().invoke(cli, ["params", "RuleConfig"])
    assert r.exit_code == 0 and "k = 100 [sample]" in r.output and "digest §4" in r.output


def test_backbone_pretraining_and_fig6_settings_carry_a_source_and_a_doc():
    """PretrainConfig, Fig6Config and BackboneSpec had their sources in comments only: every field,
    nested configs included, now says where it comes from (a digest section, issue 9 or [I]) and
    what it is, and ``ferristor params`` lists them."""
    from ferristor.backbones.backbone import BackboneSpec
    from ferristor.transfer_learning.fig6 import Fig6Config
    from ferristor.transfer_learning.pretrain import PretrainConfig

    listed = set(config_classes())
    lacking = []
    for cls in (PretrainConfig, Fig6Config, BackboneSpec):
        assert cls in listed, f"ferristor params does not list {cls.__name__}"
        for f in dataclasses.fields(cls):
            source, doc = f.metadata.get("source", ""), f.metadata.get("doc", "")
            tagged = any(t in source for t in ("[P]", "[I]", "[D]", "[issue 9"))
            if not (source and doc and tagged):
                lacking.append(f"{cls.__name__}.{f.name}")
    assert lacking == []


def test_params_command_lists_pretraining_parameters():
    r = CliRunner().invoke(cli, ["params", "PretrainConfig"])
    assert r.exit_code == 0, r.output
    assert "bits = 4 [bit]" in r.output and "digest §6 [P]" in r.output
    assert "weight_decay = 1e-05 [1]" in r.output and "[issue 9: the paper's]" in r.output


def test_params_lists_the_config_paths_that_set_and_grid_take():
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    from ferristor.sweeps.configs import config_paths
    r = CliRunner().invoke(cli, ["params", "--paths"])
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) == len(config_paths())
    r = CliRunner().invoke(cli, ["params", "transfer.circuit.memristor.curve"])
    assert r.exit_code == 0
    assert "transfer.circuit.memristor.curve.sigma_c2c = 0.0813 [1] — relative cycle-to-cycle spread" in r.output
    assert all(line.startswith("transfer.circuit.memristor.curve.") for line in r.output.strip().splitlines())
    r = CliRunner().invoke(cli, ["params", "rule.kk"])
    assert r.exit_code == 2 and "rule.k or rule.p?" in r.output


def test_params_lists_settings_not_the_engines_counters():
    """LayerCounts (a layer's counters, filled in by the engine) had been listed with three
    'update_events = None' lines as if they were parameters."""
    r = CliRunner().invoke(cli, ["params"])
    assert r.exit_code == 0 and "LayerCounts" not in r.output and "update_events" not in r.output
    assert "LedgerConfig (ferristor.circuit.ledger)" in r.output
    for cls in config_classes():  # every field has a default: a setting, not a record
        assert all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                   for f in dataclasses.fields(cls)), cls.__name__
