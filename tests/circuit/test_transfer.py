import torch

from ferristor.circuit.transfer import MEASURED_LEVEL_MEANS, CounterNoise, TableTransfer, TransferConfig, split_sign
from ferristor.rule.streams import STREAM_TRANSFER, stream_keys


def test_ideal_transfer_returns_signed_levels():
    h = torch.tensor([[0, -1, 64, -64, 511, -511, 200]], dtype=torch.int16)
    sign, mag = split_sign(h, 6)
    out = TableTransfer(TransferConfig()).program(sign, mag)
    assert out.tolist() == [[0.0, -0.0, 1.0, -1.0, 7.0, -7.0, 3.0]]


def _draw(level_means, n=200_000, level=3, sigma=0.594, guard="clip"):
    cfg = TransferConfig(model="table", sigma_levels=sigma, level_means=level_means, sign_guard=guard)
    mag = torch.full((1, n), level, dtype=torch.int16)
    noise = CounterNoise(stream_keys([1], "w", STREAM_TRANSFER), 1)
    return TableTransfer(cfg).program(torch.ones(1, n), mag, noise)[0]


def test_variability_sigma_and_means():
    v = _draw("ideal")
    assert abs(v.mean().item() - 3.0) < 0.01
    assert abs(v.std().item() - 0.594) < 0.01
    m = _draw("measured")
    assert abs(m.mean().item() - MEASURED_LEVEL_MEANS[3]) < 0.01


def test_sign_never_flips():
    v = _draw("ideal", level=0)
    assert (v >= 0).all() and (v > 0).float().mean().item() > 0.45
    neg = TableTransfer(TransferConfig(model="table")).program(-torch.ones(1, 1000), torch.zeros(1, 1000, dtype=torch.int16),
                                                                CounterNoise(stream_keys([0], "w", STREAM_TRANSFER), 1))
    assert (neg <= 0).all()
    folded = _draw("ideal", level=0, guard="fold")
    assert (folded >= 0).all() and abs(folded.mean().item() - 0.594 * (2 / torch.pi) ** 0.5) < 0.01


def test_a_dict_for_the_circuit_is_refused_naming_the_way_to_build_one():
    """The refusal had said only 'expected a ChargeTransferConfig'; it now names how to make one from
    the preset or from a dict of settings, and that way works with a partial dict."""
    import pytest

    from ferristor.circuit.charge_transfer import ChargeTransferConfig
    from ferristor.circuit.transfer import TransferConfig
    from ferristor.errors import ConfigError
    from ferristor.sweeps.configs import build
    with pytest.raises(ConfigError, match=r"circuit='dict'.*dataclasses.replace.*sweeps.configs.build"):
        TransferConfig(model="circuit", circuit={"memristor": {"curve": {"sigma_c2c": 0.3}}})
    built = build({"memristor": {"curve": {"sigma_c2c": 0.3}}}, ChargeTransferConfig)
    cfg = TransferConfig(model="circuit", circuit=built)
    assert cfg.circuit.memristor.curve.sigma_c2c == 0.3 and cfg.circuit.line == ChargeTransferConfig().line
