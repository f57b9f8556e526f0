import pytest
import torch
from hypothesis import given, settings, strategies as st

from ferristor.physics.memristor import (DeviceStateError, EnduranceConfig, MemristorArray, MemristorConfig,
                                         g_set_curve, window_factor)
from ferristor.physics.transistor import AccessTransistorConfig, compliance_current_ua

CFG = MemristorConfig()
FAST = settings(max_examples=40, deadline=None)


def _formed(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = MemristorArray(n, CFG, g)
    m.form(None, g)
    return m, g


def test_forming_reaches_50_kohm():
    m, _ = _formed(2048)
    assert bool(m.formed.all())
    assert float(m.g_us.min()) >= 1e3 / 50.0
    assert 1.5 < float(m.forming_pulses.double().mean()) < 3.0  # geometric, p = 0.5
    assert int(m.ops.sum()) == 0  # forming is not a programming op


def test_pristine_and_unreset_devices_refuse():
    g = torch.Generator().manual_seed(0)
    m = MemristorArray(4, CFG, g)
    with pytest.raises(DeviceStateError, match="pristine"):
        m.reset(None, g)
    m.form(None, g)
    with pytest.raises(DeviceStateError, match="preceded by a RESET"):
        m.set(30.0, None, g)


@FAST
@given(i=st.floats(0, 500), di=st.floats(0, 100))
def test_g_of_icc_is_monotone_and_saturating(i, di):
    c = CFG.curve
    a, b = float(g_set_curve(i, c.g_max_us, c.i_knee_ua, c.hill_n)), float(g_set_curve(i + di, c.g_max_us, c.i_knee_ua, c.hill_n))
    assert 0 <= a <= b <= c.g_max_us


@FAST
@given(v=st.floats(-1, 3), dv=st.floats(0, 1))
def test_compliance_current_grows_with_gate_voltage(v, dv):
    t = AccessTransistorConfig()
    assert 0 <= float(compliance_current_ua(v, t)) <= float(compliance_current_ua(v + dv, t))


def test_eight_levels_are_ordered_overlapping_and_within_0_80_uS():
    m, g = _formed(8 * 2000)
    level = torch.arange(8).repeat_interleave(2000)
    m.program_level(level, None, g)
    read = m.read(None, g).view(8, -1)
    mu, lo, hi = read.mean(1), read.quantile(0.01, 1), read.quantile(0.99, 1)
    assert bool((mu[1:] > mu[:-1]).all())
    assert float(mu[0]) < 3 and 60 < float(mu[-1]) < 85
    assert bool((hi[1:-1] > lo[2:]).any())  # neighbours overlap (digest §1)


def test_program_level_refuses_a_level_beyond_level_icc_ua_by_name():
    """A level past the table had raised a bare IndexError from deep inside torch."""
    from ferristor.errors import ConfigError
    from ferristor.physics.memristor import SwitchingCurveConfig
    g = torch.Generator().manual_seed(0)
    m = MemristorArray(4, MemristorConfig(curve=SwitchingCurveConfig(level_icc_ua=(0.0, 10.0))), g)
    m.form(None, g)
    m.program_level(torch.tensor([0, 1, 1, 0]), None, g)
    for bad, shown in ((torch.tensor([0, 1, 2, 0]), "level=2"), (-1, "level=-1")):
        with pytest.raises(ConfigError, match=rf"{shown} .*0…1 \(SwitchingCurveConfig.level_icc_ua holds 2"):
            m.program_level(bad, None, g)


def test_window_closes_around_1e5_cycles():
    m, g = _formed(1000)
    icc = torch.full((1000,), 58.0)
    hcs, lcs = [], []
    for cycles in (0.0, 1e5, 1e6):
        m.cycles.fill_(cycles)
        m.reset(None, g); lcs.append(float(m.read(None, g).median()))
        m.set(icc, None, g); hcs.append(float(m.read(None, g).median()))
    ratio = [h / l for h, l in zip(hcs, lcs)]
    assert ratio[0] > 20 and ratio[1] < ratio[0] / 3 and ratio[2] < 1.3
    assert float(window_factor(torch.tensor(1e5), EnduranceConfig())) == pytest.approx(0.5)


def test_set_draws_fresh_cycle_noise_but_keeps_the_device_factor():
    m, g = _formed(3000)
    icc = torch.full((3000,), 40.0)
    runs = []
    for _ in range(2):
        m.reset(None, g); m.set(icc, None, g); runs.append(m.g_us.clone())
    a, b = runs
    assert not torch.equal(a, b)
    # device-to-device spread is shared between the two SETs: correlation ≈ σd²/(σd²+σc²) = 0.5
    r = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert 0.35 < r < 0.65


def test_read_noise_and_drift():
    m, g = _formed(2000)
    m.reset(None, g); m.set(torch.full((2000,), 40.0), None, g)
    clean = m.g_us.clone()
    assert torch.allclose(m.read(None, g).mean(), clean.mean(), rtol=0.01)
    m.wait(1e6)
    assert torch.allclose(m.read(None, g), m.read(None, g), rtol=0.1)  # drift off by default
    drifting = MemristorArray(1, MemristorConfig(read=type(CFG.read)(drift_nu=0.05, sigma_rel=0.0)))
    drifting.g_us.fill_(50.0); drifting.wait(1e4)
    assert float(drifting.read()) == pytest.approx(50.0 * (1 + 1e4) ** -0.05)
