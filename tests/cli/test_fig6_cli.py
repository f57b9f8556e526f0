"""``ferristor fig6`` and ``reproduce fig6`` at the command line: options refused or named, before any
work (``run_fig6`` is replaced where nothing should run)."""
import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli


@pytest.fixture
def no_run(monkeypatch):
    import ferristor.cli.fig6 as fig6
    monkeypatch.setattr(fig6, "run_fig6", lambda **_: pytest.fail("fig6 ran"))


@pytest.mark.parametrize("extra, flag", [
    (["--workers", "2"], "--workers"), (["--workers", "1"], "--workers"),
    (["--preset", "stochastic"], "--preset"), (["--preset", "paper"], "--preset"),
    (["--seeds", "0"], "--seeds"), (["--k", "8"], "--k"), (["--rounding", "nearest"], "--rounding"),
    (["--level-means", "measured"], "--level-means"), (["--settings", "mnist-online"], "--settings"),
    (["--device", "cpu"], "--device")])
def test_reproduce_fig6_refuses_the_options_it_would_ignore(no_run, tmp_path, extra, flag):
    """--workers and --preset had been accepted and ignored, while --seeds, --k… were refused."""
    r = CliRunner().invoke(cli, ["reproduce", "fig6", *extra, "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert f"{flag} does not apply to fig6: its options are those of 'ferristor fig6'" in r.output


def test_reproduce_fig6_passes_the_options_it_reads(monkeypatch, tmp_path):
    import ferristor.cli.fig6 as fig6
    calls = []
    monkeypatch.setattr(fig6, "run_fig6", lambda **kw: calls.append(kw))
    r = CliRunner().invoke(cli, ["reproduce", "fig6", "--epoch-scale", "0.5", "--threads", "1", "--fresh",
                                 "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert calls == [dict(out=str(tmp_path / "fig6"), pretrain_epochs=1.0, threads=1, data_dir=None, progress=False,
                          fresh=True)]


@pytest.mark.parametrize("grid, bad", [("0", "0"), ("2^-6,-1", "-1"), ("2^2000", "2^2000"), ("inf", "inf"),
                                       ("nan", "nan"), ("2^-x", "2^-x"), ("1e-31", "1e-31")])
def test_a_bad_lsb_grid_is_named_as_typed(tmp_path, grid, bad):
    """'--lsb-grid 0' had been refused as '(0.0,)', a Python tuple; '2^2000' had crashed (OverflowError)
    and 'inf' had been accepted, to fail once the heads started."""
    r = CliRunner().invoke(cli, ["fig6", "--lsb-grid", grid, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert r.stderr == (f"error: --lsb-grid {grid} is not allowed: expected comma-separated weight scales (hidden "
                        f"LSBs) in [1e-30, 1e+30], as numbers or powers of two, e.g. 2^-5,2^-6,0.01 ({bad} is not one)\n")
    assert not (tmp_path / "o").exists()


def test_protocol_config_names_a_bad_lsb_grid_as_numbers():
    from ferristor.errors import ConfigError
    from ferristor.transfer_learning.protocol import ProtocolConfig
    with pytest.raises(ConfigError, match=r"^lsb_grid='0\.01,0\.0' is not allowed: expected one or more weight scales"):
        ProtocolConfig(lsb_grid=(0.01, 0.0))
    assert ProtocolConfig(lsb_grid=[1, 0.5]).lsb_grid == (1.0, 0.5)  # numbers, as a tuple of floats


def test_a_decay_epoch_past_the_online_epochs_warns_naming_both(tmp_path):
    """--decay-epoch 5 with --online-epochs 1 had been accepted without a word: the decay never applies."""
    args = ["fig6", "--pairs", "nonsense", "--out", str(tmp_path / "o")]  # refused after the configs are built
    r = CliRunner().invoke(cli, args + ["--decay-epoch", "5", "--online-epochs", "1"])
    assert r.stderr.startswith("warning: --decay-epoch 5 has no effect with --online-epochs 1: the online lr is "
                               "multiplied by 0.1 from that epoch on (0-based) and the heads train epoch 0 only, so it "
                               "never decays; set it below the online epochs\n"), r.stderr
    for quiet in (["--decay-epoch", "2", "--online-epochs", "3"], ["--decay-epoch", "0", "--online-epochs", "1"],
                  ["--decay-epoch", "5", "--online-epochs", "1", "--heads", "fp-offline"]):  # no online head
        r = CliRunner().invoke(cli, args + quiet)
        assert r.exit_code == 2 and "warning" not in r.stderr, r.stderr


def test_protocol_config_warns_of_a_decay_that_never_applies():
    from ferristor.errors import FerristorWarning
    from ferristor.transfer_learning.heads import OnlineConfig
    from ferristor.transfer_learning.protocol import ProtocolConfig
    with pytest.warns(FerristorWarning, match=r"^OnlineConfig.decay_epoch=3 has no effect with OnlineConfig.epochs=3: "
                                              r".*heads train epochs 0–2, so it never decays"):
        ProtocolConfig(online=OnlineConfig(epochs=3, decay_epoch=3))
