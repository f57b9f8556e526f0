"""``ferristor fig6`` and ``reproduce fig6`` at the command line: options refused or named, before any
work (``run_fig6`` is replaced where nothing should run)."""
import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli


@pytest.fixture
def no_run_data(monkeypatch):
    from ferristor.transfer_learning import images
    monkeypatch.setattr(images, "resolve", lambda *a, **k: pytest.fail("fig6 read data"))


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


LSB_EXPECTED = ("one or more weight scales (hidden LSBs) in [1e-30, 1e+30], each once, as numbers or powers of two, "
                "e.g. 2^-5,2^-6,0.01")


@pytest.mark.parametrize("grid, bad", [("0", "0 is not one"), ("2^-6,-1", "-1 is not one"),
                                       ("2^2000", "2^2000 is not one"), ("inf", "inf is not one"),
                                       ("nan", "nan is not one"), ("2^-x", "2^-x is not one"),
                                       ("1e-31", "1e-31 is not one"),
                                       ("2^-8,0.00390625", "0.00390625 is given twice, as 2^-8")])
def test_a_bad_lsb_grid_is_named_as_typed(tmp_path, grid, bad):
    """'--lsb-grid 0' had been refused as '(0.0,)', a Python tuple; '2^2000' had crashed (OverflowError)
    and 'inf' had been accepted, to fail once the heads started."""
    r = CliRunner().invoke(cli, ["fig6", "--lsb-grid", grid, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: --lsb-grid {grid} is not allowed: expected {LSB_EXPECTED} ({bad})\n"
    assert not (tmp_path / "o").exists()


def test_the_lsb_grid_option_is_checked_by_the_protocols_check(monkeypatch, no_run_data, tmp_path):
    """One range check, the library's: the command's had been a copy of ProtocolConfig's. Narrowed in
    the library, the option follows."""
    from ferristor.transfer_learning import protocol
    monkeypatch.setattr(protocol, "FLOAT32_SCALE", (1e-3, 1.0))
    r = CliRunner().invoke(cli, ["fig6", "--lsb-grid", "2^-5,2^-12", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --lsb-grid 2^-5,2^-12 is not allowed: expected one or more weight scales "
                               "(hidden LSBs) in [0.001, 1], each once, as numbers or powers of two"), r.stderr
    assert r.stderr.endswith(" (2^-12 is not one)\n"), r.stderr


def test_protocol_config_names_a_bad_lsb_grid_as_numbers():
    from ferristor.errors import ConfigError
    from ferristor.transfer_learning.protocol import ProtocolConfig
    with pytest.raises(ConfigError, match=r"^lsb_grid='0\.01,0\.0' is not allowed: expected one or more weight scales "
                                          r".* as OnlineConfig\.hidden_lsb takes them \(0\.0 is not one\)$"):
        ProtocolConfig(lsb_grid=(0.01, 0.0))
    with pytest.raises(ConfigError, match=r"^lsb_grid='0\.5,1,0\.5' .*\(0\.5 is given twice\)$"):
        ProtocolConfig(lsb_grid=(0.5, 1, 0.5))
    with pytest.raises(ConfigError, match=r"^lsb_grid='' is not allowed"):
        ProtocolConfig(lsb_grid=())
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


def test_every_fig6_option_sets_a_config_path_or_is_not_a_setting():
    """--set refuses the paths an option sets, naming the option: the map must be whole and true."""
    from ferristor.cli.fig6 import NOT_CONFIG, OPTION_PATHS, fig6_command
    from ferristor.transfer_learning.paths import SET_BY, all_paths
    names = {p.name for p in fig6_command.params if p.expose_value}
    assert names == set(OPTION_PATHS) | set(NOT_CONFIG)
    assert set(OPTION_PATHS.values()) <= set(all_paths())
    assert not set(OPTION_PATHS.values()) & set(SET_BY)
    flags = {p.name: p.opts[0] for p in fig6_command.params}
    assert all(flags[name] == "--" + name.replace("_", "-") for name in OPTION_PATHS)


@pytest.mark.parametrize("setting, message", [
    ("protocol.online.k=0", "--set protocol.online.k: k=0 is not allowed: expected a value in [1, inf)"),
    ("protocol.online.k=x", "--set protocol.online.k: protocol.online.k='x' is not allowed: expected an integer"),
    ("protocol.online.kk=3", "--set 'protocol.online.kk=3': unknown config path 'protocol.online.kk': expected "
                             "protocol.online.k or protocol.online.p or protocol.online.lr? (one of protocol.online.lr"),
    ("k=64", "--set 'k=64': unknown config path 'k': expected protocol.online.k? (one of pretrain.…, protocol.…)"),
    ("protocol.online=3", "--set 'protocol.online=3': unknown config path 'protocol.online': expected one of its "
                          "fields ('protocol.online' is a section): protocol.online.lr, protocol.online.p"),
    ("protocol.folds=5", "--set 'protocol.folds=5': protocol.folds has its own option: use --folds 5"),
    ("pretrain.lr=0.01", "--set 'pretrain.lr=0.01': pretrain.lr has its own option: use --lr 0.01"),
    ("protocol.online.mode=hm", "--set 'protocol.online.mode=hm': protocol.online.mode is set by each online head "
                                "(--heads), not by --set"),
    ("protocol.online.hidden_lsb=0.01", "--set 'protocol.online.hidden_lsb=0.01': protocol.online.hidden_lsb is set "
                                        "by the choice per run from protocol.lsb_grid (--lsb-grid), not by --set"),
    ("pretrain.dataset=mnist", "--set 'pretrain.dataset=mnist': pretrain.dataset is set by each pair's source "
                               "(--pairs), not by --set"),
    ("protocol.online.rounding=round", "--set protocol.online.rounding: rounding='round' is not allowed: expected one "
                                       "of 'stochastic', 'nearest', 'truncate'"),
    ("protocol.online.sigma_levels=-1", "--set protocol.online.sigma_levels: sigma_levels=-1.0 is not allowed"),
    ("protocol.online.level_means=mean", "--set protocol.online.level_means: level_means='mean' is not allowed"),
    ("protocol.online.ledger.count_zero_updates=yes", "--set protocol.online.ledger.count_zero_updates: "
     "protocol.online.ledger.count_zero_updates='yes' is not allowed: expected true or false"),
    ("protocol.online.ledger.fecap_energy_fj=-3", "--set protocol.online.ledger.fecap_energy_fj: "
                                                  "LedgerConfig.fecap_energy_fj=-3.0 is not allowed"),
    ("protocol.online.k", "--set 'protocol.online.k': expected PATH=VALUE, e.g. protocol.online.k=64")])
def test_fig6_set_refuses_a_bad_path_or_value_before_any_work(no_run_data, tmp_path, setting, message):
    r = CliRunner().invoke(cli, ["fig6", "--set", setting, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: {message}"), r.stderr
    assert not (tmp_path / "o").exists()


def test_fig6_set_given_twice_is_refused(no_run_data, tmp_path):
    r = CliRunner().invoke(cli, ["fig6", "--set", "protocol.online.k=8", "--set", "protocol.online.k=16",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "protocol.online.k is given twice: give it once" in r.stderr


@pytest.mark.parametrize("setting", ["protocol.online.k=64", "protocol.online.p=0.5", "protocol.online.lr=0.05",
                                     "protocol.online.decay=1", "protocol.online.sigma_levels=0",
                                     "protocol.online.ledger.memristor_ops_unselected=null",
                                     "protocol.online.ledger.memristor_ops_unselected=1",
                                     "protocol.offline_batch=64", "pretrain.test_limit=500"])
def test_fig6_set_takes_a_good_value(no_run_data, tmp_path, setting):
    """Accepted: the run gets as far as the pairs (refused here, so nothing runs)."""
    r = CliRunner().invoke(cli, ["fig6", "--set", setting, "--pairs", "nonsense", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.stderr.startswith("error: --pairs nonsense is not allowed"), r.stderr


def test_fig6_lists_the_paths_set_takes():
    from ferristor.cli.fig6 import OPTION_PATHS
    from ferristor.transfer_learning.paths import SET_BY, all_paths
    r = CliRunner().invoke(cli, ["fig6", "--list-paths"])
    assert r.exit_code == 0
    listed = [line.split(" = ")[0] for line in r.output.splitlines()]
    assert listed == [p for p in all_paths() if p not in OPTION_PATHS.values() and p not in SET_BY]
    assert "protocol.online.k = 512 [sample] — a transfer every k inputs  (digest §6 [P])" in r.output
    assert "protocol.online.ledger.fecap_energy_fj = 100.0 [fJ/op]" in r.output


@pytest.mark.parametrize("setting, message", [
    ("protocol.offline_lr=0", "--set protocol.offline_lr: offline_lr=0.0 is not allowed: expected a value in (0, inf)"),
    ("protocol.offline_lr=-1e-3", "--set protocol.offline_lr: offline_lr=-0.001 is not allowed: expected a value in "
                                  "(0, inf)"),
    ("protocol.offline_batch=0", "--set protocol.offline_batch: offline_batch=0 is not allowed: expected a value in "
                                 "[1, inf)")])
def test_fig6_set_names_a_bad_offline_setting_by_its_path(no_run_data, tmp_path, setting, message):
    """They had passed the checks and failed after the pretraining, as '--lr 0.0' and '--batch 0': the
    pretraining's options, which the user had not given."""
    r = CliRunner().invoke(cli, ["fig6", "--set", setting, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {message}\n"
    assert not (tmp_path / "o").exists()


def test_fig6_set_warnings_name_the_path_as_typed(tmp_path):
    """'OnlineConfig.sigma_levels=0.3 has no effect…' had named the library's field, not what was typed."""
    r = CliRunner().invoke(cli, ["fig6", "--set", "protocol.online.sigma_levels=0.3", "--heads", "hm,fp-online",
                                 "--pairs", "nonsense", "--out", str(tmp_path / "o")])  # refused after the configs
    assert r.exit_code == 2
    assert r.stderr.startswith("warning: --set protocol.online.sigma_levels 0.3 has no effect with --heads "
                               "hm,fp-online: only the hm-var head transfers with variability\n"), r.stderr


def test_the_set_namer_names_only_the_fields_set():
    """A field a --set path sets, as the configs name it in warnings (the path, Class.name), is that
    path; a bare name ('lr': the pretraining's too) and any other field go to the command's own namer."""
    from ferristor.transfer_learning.paths import namer
    name = namer({"protocol.online.k": 64, "protocol.online.lr": 0.05}, fallback=lambda f: f"<{f}>")
    assert name("OnlineConfig.k") == "--set protocol.online.k"
    assert name("protocol.online.lr") == "--set protocol.online.lr"
    assert name("lr") == "<lr>" and name("pretrain.lr") == "<pretrain.lr>"
    assert name("OnlineConfig.p") == "<OnlineConfig.p>"
    assert namer({"protocol.online.k": 64})("folds") is None


def test_pairs_split_at_top_level_commas_only(monkeypatch, tmp_path):
    """--pairs had split 'fashion-mnist[0,4]' at its class list's comma, into two broken pairs."""
    from ferristor.transfer_learning import fig6
    seen = []
    monkeypatch.setattr(fig6, "reproduce_fig6", lambda cfg, *a, **k: seen.append(cfg.pairs) or {})
    monkeypatch.setattr(fig6, "format_table", lambda results: "")
    pairs = "fashion-mnist[0-4]->mnist[0-1], fashion-mnist[0,4]->mnist[0,1]"
    r = CliRunner().invoke(cli, ["fig6", "--pairs", pairs, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert seen == [("fashion-mnist[0-4]->mnist[0-1]", "fashion-mnist[0,4]->mnist[0,1]")]
    for bad, message in ((pairs + ",", "without empty items"), (f"{pairs},fashion-mnist[0,4]->mnist[0,1]",
                                                               "fashion-mnist[0,4]->mnist[0,1] is given twice")):
        r = CliRunner().invoke(cli, ["fig6", "--pairs", bad, "--out", str(tmp_path)])
        assert r.exit_code == 2 and message in r.output and "--pairs" in r.output, r.output
