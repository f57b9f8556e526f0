"""The heads' settings beyond fig6's options: ``ferristor fig6 --set PATH=VALUE`` reaches every field
of the configs fig6 uses (k, p, lr, rounding, σ, level means, ledger costs…), the values reach the
heads, and they are part of each pair's identity. fig6 had no way to set them ('No such option')."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ferristor.circuit.ledger import LedgerConfig
from ferristor.cli.main import cli
from ferristor.errors import FerristorWarning
from ferristor.transfer_learning import folds as fl
from ferristor.transfer_learning.fig6 import slug
from ferristor.transfer_learning.heads import OfflineConfig, OnlineConfig, Runs, train_online
from ferristor.transfer_learning.protocol import ProtocolConfig

from .test_pipeline import _toy_features


def _runs():
    features, labels, y = _toy_features()
    pool = fl.with_flips(fl.assign_folds(y.numpy(), 3, 0))
    trains, tests = zip(*(fl.split(pool, f) for f in range(3)))
    return features, labels, Runs([5, 6, 7], np.stack(trains), {"test": np.stack(tests)})


def test_the_heads_use_sigma_level_means_and_ledger_costs_as_set():
    features, labels, runs = _runs()
    base = OnlineConfig(mode="hm-var", epochs=2, decay_epoch=1, k=8, hidden_lsb=2.0 ** -7)
    ref = train_online(features, labels, runs, base, 3)
    assert ref["model"].config.transfer.model == "table" and ref["model"].config.transfer.sigma_levels == 0.594
    cheap = train_online(features, labels, runs, dataclasses.replace(
        base, ledger=LedgerConfig(fecap_energy_fj=50.0, memristor_energy_pj=0.5)), 3)
    assert cheap["transfers"] == ref["transfers"]  # the same training: the costs are counted, not trained on
    net, net_ref = cheap["ledger"][0]["network"], ref["ledger"][0]["network"]
    assert net["energy_nJ"]["total"] == pytest.approx(net_ref["energy_nJ"]["total"] / 2)
    quiet = train_online(features, labels, runs, dataclasses.replace(base, sigma_levels=0.0, level_means="measured"), 3)
    assert quiet["model"].config.transfer.sigma_levels == 0.0
    assert quiet["model"].config.transfer.level_means == "measured"
    assert not torch.equal(quiet["model"].weight_hidden, ref["model"].weight_hidden)
    hm = train_online(features, labels, runs, dataclasses.replace(base, mode="hm", level_means="measured"), 3)
    assert hm["model"].config.transfer.model == "ideal" and hm["model"].config.transfer.level_means == "measured"


def test_settings_added_later_stay_out_of_the_identity_at_their_old_values():
    """Pairs saved before sigma_levels, level_means and ledger existed still match (computed as now)."""
    before = {"mode", "lr", "p", "k", "epochs", "decay", "decay_epoch", "hidden_lsb", "rounding"}
    assert set(ProtocolConfig().identity()["online"]) == before
    changed = ProtocolConfig(online=OnlineConfig(sigma_levels=0.3, ledger=LedgerConfig(fecap_energy_fj=50.0)))
    assert changed.identity()["online"]["sigma_levels"] == 0.3
    assert changed.identity()["online"]["ledger"]["fecap_energy_fj"] == 50.0
    with pytest.warns(FerristorWarning, match=r"^OnlineConfig.sigma_levels=0.3 has no effect with heads='hm,fp-online'"):
        ProtocolConfig(online=OnlineConfig(sigma_levels=0.3), heads=("hm", "fp-online"))


def test_fig6_set_reaches_the_heads_and_is_part_of_the_pair_identity(fig6_args):
    args, out, pair = fig6_args  # heads fp-offline, hm; 84 training rows a run, 1 online epoch
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert ("warning: OnlineConfig.k=512: larger than the 42 samples each hm-var head choosing hidden_lsb trains on "
            "(42 training rows × 1 epoch) and the 84 samples each final online head trains on") in r.stderr
    assert "lower k (fig6: --set protocol.online.k=N)" in r.stderr
    path = out / "pairs" / f"{slug(pair)}.json"
    sets = ["--set", "protocol.online.k=16", "--set", "protocol.online.rounding=nearest",
            "--set", "protocol.online.ledger.fecap_energy_fj=50", "--set", "protocol.offline_lr=1e-3"]
    r = CliRunner().invoke(cli, args + sets)
    assert r.exit_code == 0, r.output
    assert "done before" not in r.output and "warning" not in r.stderr  # another configuration: computed
    res = json.loads(path.read_text())
    online = res["identity"]["protocol"]["online"]
    assert online["k"] == 16 and online["rounding"] == "nearest" and online["ledger"]["fecap_energy_fj"] == 50.0
    assert res["identity"]["protocol"]["offline_lr"] == 1e-3
    assert res["heads"]["hm"]["transfers"] == [84 // 16] * 3  # a transfer every 16 samples
    assert "hm transfers" in r.output and "ledger of the HM head" in r.output
    again = CliRunner().invoke(cli, args + sets[4:] + sets[:4])  # the same settings, in another order
    assert again.exit_code == 0 and "done before" in again.output
    back = CliRunner().invoke(cli, args)  # without them: computed again, never mixed with the --set results
    assert back.exit_code == 0 and "done before" not in back.output
    assert json.loads(path.read_text())["identity"]["protocol"]["online"]["k"] == 512


@pytest.mark.parametrize("kwargs, message", [
    (dict(offline_lr=0), "offline_lr=0 is not allowed: expected a value in (0, inf)"),
    (dict(offline_lr=float("nan")), "offline_lr=nan is not allowed: expected a finite number"),
    (dict(offline_batch=0), "offline_batch=0 is not allowed: expected a value in [1, inf)"),
    (dict(offline_batch=8.0), "offline_batch=8.0 is not allowed: expected an integer"),
    (dict(offline_epochs=0), "offline_epochs=0 is not allowed: expected a value in [1, inf)"),
    (dict(seed=-1), "seed=-1 is not allowed: expected a value in [0, inf)"),
    (dict(folds=2), "folds=2 is not allowed: expected a value in [3, inf)"),
    (dict(online={"k": 8}), "online='dict' is not allowed: expected an OnlineConfig"),
    (dict(heads=("hm", "hm")), "heads='hm,hm' is not allowed: expected each head once (hm is given twice)"),
    (dict(heads=("hm", "lsq")), "heads='lsq' is not allowed: expected a comma-separated subset of")])
def test_protocol_config_refuses_a_bad_field_when_built(kwargs, message):
    """Every field, whichever heads run: offline_lr=0 and offline_batch=0 had been accepted, to fail
    once the offline heads started, as OfflineConfig's 'lr' and 'batch'."""
    from ferristor.errors import ConfigError
    with pytest.raises(ConfigError) as e:
        ProtocolConfig(**{"heads": ("hm",), **kwargs})
    assert str(e.value).startswith(message), str(e.value)


def test_the_offline_heads_train_with_the_protocols_settings():
    cfg = ProtocolConfig(offline_lr=1e-3, offline_batch=32, offline_epochs=7)
    assert cfg.offline("lsq-offline") == OfflineConfig(bits=4, lr=1e-3, batch=32, epochs=7)
    assert cfg.offline("fp-offline").bits == 0


@pytest.mark.parametrize("setting, message", [
    ("protocol.offline_lr=0", "--set protocol.offline_lr: offline_lr=0.0 is not allowed: expected a value in (0, inf)"),
    ("protocol.offline_batch=0", "--set protocol.offline_batch: offline_batch=0 is not allowed: expected a value in "
                                 "[1, inf)")])
def test_fig6_set_refuses_a_bad_value_before_the_pretraining(fig6_args, monkeypatch, setting, message):
    """docs/transfer-learning.md: --set values are checked before any work. These had been refused only
    after the backbone's pretraining (36 s of LeNet on MNIST), naming --lr and --batch."""
    from ferristor.transfer_learning import fig6
    monkeypatch.setattr(fig6, "pretrain", lambda *a, **k: pytest.fail("the pretraining started"))
    args, out, _ = fig6_args
    r = CliRunner().invoke(cli, args + ["--set", setting])
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {message}\n"
    assert not out.exists()
