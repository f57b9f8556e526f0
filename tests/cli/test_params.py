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
