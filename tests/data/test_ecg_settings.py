"""ECG settings as --set and a --config file give them: a record number, and too many training beats
named as typed. The data come from the fake MIT-BIH database (tests/data/conftest.py)."""
import numpy as np
import pytest
from click.testing import CliRunner

from ferristor.data.ecg import ECGConfig, split_indices
from ferristor.errors import ConfigError, DataError

TEST = "208"


def test_the_test_record_may_be_given_as_a_number():
    assert ECGConfig(test_record=100).test_record == "100"
    assert ECGConfig(test_record="100").test_record == "100"
    with pytest.raises(ConfigError, match=r"ECGConfig.test_record='999' is not allowed: expected one of '100', "):
        ECGConfig(test_record=999)
    with pytest.raises(ConfigError, match=r"ECGConfig.test_record=True is not allowed"):
        ECGConfig(test_record=True)  # a bool is not a record number


def test_set_and_a_config_file_give_the_test_record_as_a_number(tmp_path):
    from ferristor.sweeps import configs
    from ferristor.sweeps.spec import build_spec
    spec = build_spec(None, ("dataset=ecg", "ecg.test_record=100"), (), check_values=False)
    assert spec.base["ecg.test_record"] == 100  # --set parses it as TOML does: a number
    assert configs.resolve(spec.base).ecg.test_record == "100"
    toml = tmp_path / "run.toml"
    toml.write_text('[base]\ndataset = "ecg"\necg.test_record = 100\n')
    assert configs.resolve(build_spec(toml, (), (), check_values=False).base).ecg.test_record == "100"


def test_the_cli_takes_the_test_record_as_a_number(tmp_path):
    """The config is accepted: the run goes on to look for the data (absent here) and stops there."""
    from ferristor.cli.main import cli
    r = CliRunner().invoke(cli, ["train", "--dataset", "ecg", "--set", "ecg.test_record=100", "--epochs", "0.01",
                                 "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.startswith(f"error: mitdb: 100.hea, 100.dat, 100.atr, 101.hea, 101.dat, 101.atr and 138 more "
                               f"not found in {tmp_path / 'mitdb'}.")


def test_too_many_training_beats_are_named_as_typed(fake_beats):
    per_class = np.bincount(fake_beats["labels"][fake_beats["records"] != TEST])
    n = int(per_class.min())
    with pytest.raises(DataError) as e:
        split_indices(fake_beats, ECGConfig(train_per_class=n + 1))
    name = ("normal", "abnormal")[int(per_class.argmin())]
    assert str(e.value) == (f"ecg.train_per_class={n + 1} exceeds the {n} {name} beats outside record 208: "
                            f"at most {n} with ecg.test_record='208'")


def test_the_cli_names_too_many_training_beats_as_typed(fake_mitdb, fake_beats, tmp_path):
    from ferristor.cli.main import cli
    per_class = np.bincount(fake_beats["labels"][fake_beats["records"] != TEST])
    n, name = int(per_class.min()), ("normal", "abnormal")[int(per_class.argmin())]
    r = CliRunner().invoke(cli, ["train", "--dataset", "ecg", "--set", "ecg.train_per_class=100000",
                                 "--epochs", "0.01", "--out", str(tmp_path / "run"),
                                 "--data-dir", str(fake_mitdb.root)])
    assert r.exit_code == 2
    assert r.output.endswith(f"error: ecg.train_per_class=100000 exceeds the {n} {name} beats outside record 208: "
                             f"at most {n} with ecg.test_record='208'\n")
