import dataclasses

import pytest
import torch
from hypothesis import given, settings, strategies as st

from ferristor.physics.fecap import (FatigueConfig, FeCAPArray, FeCAPModelConfig, SenseAmpConfig, SwitchingConfig,
                                     switched_fraction, switching_energy_fj, wake_factor, WakeUpConfig)

CFG = FeCAPModelConfig()
FAST = settings(max_examples=40, deadline=None)


def _window(arr):
    n = arr.n
    return arr.bitline_voltage(torch.ones(n, dtype=torch.bool)) - arr.bitline_voltage(torch.zeros(n, dtype=torch.bool))


def test_memory_window_over_16384_cells_matches_digest():
    """Digest §1: median 360 mV, worst 120 mV over 16,384 woken cells."""
    mw = _window(FeCAPArray(16384, CFG, torch.Generator().manual_seed(0)))
    assert abs(float(mw.median()) - 0.360) < 0.010
    assert 0.090 < float(mw.min()) < 0.150


def test_energy_formula_and_value():
    """E = 2Pr·S·V = MW·(C_D+C_BL)·V ≈ 216 fJ at 3 V, 2 µs (digest §1)."""
    c = CFG.cell
    e = float(switching_energy_fj(3.0, 2e-6, CFG))
    assert e == pytest.approx(c.median_window_v * (c.c_d_ff + c.c_bl_ff) * 3.0, rel=1e-3)
    assert 200 < e < 225


@FAST
@given(v=st.floats(1.0, 5.0), t=st.floats(1e-9, 1e-4), dv=st.floats(0.0, 1.0), k=st.floats(1.0, 100.0),
       model=st.sampled_from(["nls", "merz"]))
def test_switched_fraction_is_a_monotone_probability(v, t, dv, k, model):
    cfg = SwitchingConfig(model=model)
    f = float(switched_fraction(v, t, cfg))
    assert 0.0 <= f <= 1.0
    assert float(switched_fraction(v + dv, t, cfg)) >= f - 1e-12
    assert float(switched_fraction(v, t * k, cfg)) >= f - 1e-12


@FAST
@given(n=st.integers(0, 10**4))
def test_wake_up_opens_the_loop(n):
    w = WakeUpConfig()
    f = float(wake_factor(torch.tensor(float(n)), w))
    assert w.pristine_fraction - 1e-12 <= f <= 1.0
    assert float(wake_factor(torch.tensor(float(n + 1)), w)) >= f
    assert float(wake_factor(torch.tensor(1000.0), w)) > 0.99


@FAST
@given(bits=st.lists(st.booleans(), min_size=1, max_size=64), seed=st.integers(0, 2**16))
def test_read_is_destructive_and_restore_rewrites(bits, seed):
    g = torch.Generator().manual_seed(seed)
    b = torch.tensor(bits)
    a = FeCAPArray(len(bits), CFG, g)
    a.write(b)
    assert torch.equal(a.read(generator=g, restore=True), b)  # healthy woken cells read right
    assert torch.equal(a.bits, b)
    assert torch.equal(a.read(generator=g, restore=False), b)
    assert not bool(a.bits.any())  # a read leaves 0
    assert torch.equal(a.ops, torch.full((len(bits),), 1 + 2 + 1))


def test_small_window_gives_read_errors_and_unwoken_cells_fail():
    g = torch.Generator().manual_seed(3)
    ones = torch.ones(4096, dtype=torch.bool)
    pristine = FeCAPArray(4096, CFG, g, woken=False)
    pristine.write(ones)
    assert int((~pristine.read(generator=g)).sum()) > 20  # pinched loop: window ≈ 0.4×, tails fail
    woken = FeCAPArray(4096, CFG, g)
    woken.write(ones)
    assert bool(woken.read(generator=g).all())


def test_fatigue_condition_a_fails_bits_at_1e7_and_b_does_not():
    g = torch.Generator().manual_seed(5)
    bits = torch.rand(16384, generator=g) < 0.5
    errors = {}
    for cond in "AB":
        a = FeCAPArray(16384, dataclasses.replace(CFG, fatigue=FatigueConfig(condition=cond)), torch.Generator().manual_seed(1))
        a.cycles += 1e7
        a.write(bits)
        errors[cond] = int((a.read(generator=g) != bits).sum())
    assert errors["A"] > 0 and errors["B"] == 0
    fa = FatigueConfig()
    assert float(fa.factor(torch.tensor(1e7), "B")) > 0.98
    assert float(fa.factor(torch.tensor(1e7), "A")) < 0.6


def test_switching_energy_rises_with_amplitude_and_width():
    e = [[float(switching_energy_fj(v, t, CFG)) for t in (1e-8, 1e-7, 1e-6)] for v in (2.75, 3.0, 3.25)]
    assert all(row == sorted(row) for row in e)
    assert e[0][0] < e[1][0] < e[2][0]


def test_vref_must_lie_inside_the_supply():
    from ferristor.errors import ConfigError
    with pytest.raises(ConfigError, match="SenseAmpConfig.vref_v"):
        SenseAmpConfig(vref_v=1.5, supply_v=1.2)
