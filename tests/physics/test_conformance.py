"""Every device model passes the shared conformance check."""
import torch

from ferristor.circuit.transfer import GeneratorNoise

from ferristor.circuit.charge_transfer import ChargeTransferConfig, CircuitTransfer, transfer_conductance
from ferristor.physics.cell import DualModeCells
from ferristor.physics.conformance import DeviceSpec, check_device_model
from ferristor.physics.fecap import FeCAPArray, FeCAPModelConfig, memory_window_v
from ferristor.physics.memristor import MemristorArray, MemristorConfig, set_conductance

N = 16


def _fecap_spec():
    cfg = FeCAPModelConfig()

    def write(m, g):
        m.write(torch.rand(N, generator=g) < 0.5)

    def read(m, g):
        m.read(generator=g)

    return DeviceSpec(
        name="FeCAPArray", make=lambda g: FeCAPArray(N, cfg, g, woken=False),
        steps=[lambda m, g: m.wake_up(), write, read, write, read],
        state=lambda m: {"bits": m.bits, "q": m.q_factor, "energy": m.energy_fj, "cycles": m.cycles,
                         "v_bl": m.bitline_voltage()},
        counters=lambda m: {"ops": m.ops, "energy": m.energy_fj, "cycles": m.cycles, "errors": m.read_errors},
        bounds={"v_bl": (0.0, cfg.cell.v_read), "energy": (0.0, 1e6)},
        core=lambda cycles, q: memory_window_v(cycles, q, cfg),
        core_inputs=lambda g: {"cycles": torch.rand(N, generator=g, dtype=torch.float64) * 1e7,
                               "q": torch.rand(N, generator=g, dtype=torch.float64) + 0.5},
    )


def _memristor_spec():
    cfg = MemristorConfig()

    def cycle(m, g):
        m.program_level(torch.randint(0, 8, (N,), generator=g), None, g)

    return DeviceSpec(
        name="MemristorArray", make=lambda g: MemristorArray(N, cfg, g),
        steps=[lambda m, g: m.form(None, g), cycle, cycle, lambda m, g: m.reset(None, g)],
        state=lambda m: {"g": m.g_us, "formed": m.formed, "cycles": m.cycles},
        counters=lambda m: {"ops": m.ops, "cycles": m.cycles, "pulses": m.forming_pulses},
        bounds={"g": (0.0, cfg.curve.g_max_us + 50.0)},
        core=lambda g_lcs, icc, d2d, c2c, cycles: set_conductance(g_lcs, icc, d2d, c2c, cycles, cfg),
        core_inputs=lambda g: {"g_lcs": torch.rand(N, generator=g, dtype=torch.float64),
                               "icc": 100 * torch.rand(N, generator=g, dtype=torch.float64),
                               "d2d": torch.randn(N, generator=g, dtype=torch.float64),
                               "c2c": torch.randn(N, generator=g, dtype=torch.float64),
                               "cycles": 2e5 * torch.rand(N, generator=g, dtype=torch.float64)},
    )


def _cell_spec():
    half = torch.arange(N) < N // 2

    return DeviceSpec(
        name="DualModeCells", make=lambda g: DualModeCells(N, generator=g),
        steps=[lambda c, g: c.wake_up(half), lambda c, g: c.form(~half, g),
               lambda c, g: c.write_bits(torch.rand(N, generator=g) < 0.5, half),
               lambda c, g: c.reset(~half & c.memristor.formed, g),
               lambda c, g: c.set(40.0, ~half & c.memristor.formed, g)],
        state=lambda c: {"mode": c.mode, "g": c.memristor.g_us, "bits": c.fecap.bits},
        counters=lambda c: {"fe_ops": c.fecap.ops, "mem_ops": c.memristor.ops},
        bounds={"mode": (0, 2)},
    )


def _transfer_spec():
    cfg = ChargeTransferConfig()

    class Holder:
        def __init__(self):
            self.t, self.w, self.calls = CircuitTransfer(cfg), torch.zeros(2, N), torch.zeros(1)

    def program(h, g):
        gens = [torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=g))) for _ in range(2)]
        mag = torch.randint(0, 8, (2, N), generator=g)
        sign = torch.where(torch.rand(2, N, generator=g) < 0.5, -1.0, 1.0)
        h.w = h.t.program(sign, mag, GeneratorNoise(gens))
        assert bool((torch.sign(h.w) * sign >= 0).all())
        h.calls += 1

    return DeviceSpec(
        name="CircuitTransfer", make=lambda g: Holder(), steps=[program, program],
        state=lambda h: {"w": h.w}, counters=lambda h: {"calls": h.calls},
        bounds={"w": (-12.0, 12.0)},
        core=lambda magnitude, cells, lcs, d2d, c2c: transfer_conductance(
            magnitude, cfg, {"cells": cells, "lcs": lcs, "d2d": d2d, "c2c": c2c}),
        core_inputs=lambda g: {"magnitude": torch.randint(0, 8, (N,), generator=g),
                               "cells": torch.randn(N, 7, generator=g, dtype=torch.float64),
                               "lcs": torch.randn(N, generator=g, dtype=torch.float64),
                               "d2d": torch.randn(N, generator=g, dtype=torch.float64),
                               "c2c": torch.randn(N, generator=g, dtype=torch.float64)},
    )


def _array_spec():
    from ferristor.circuit.array import ArrayConfig, HybridArray
    syn = torch.arange(8)

    def write(a, g):
        a.write_hidden(syn, torch.randint(-511, 512, (8,), generator=g))

    return DeviceSpec(
        name="HybridArray", make=lambda g: HybridArray(ArrayConfig(lines=1), generator=g),
        steps=[lambda a, g: a.initialize(g), write, lambda a, g: a.transfer(None, g),
               lambda a, g: a.update_hidden(syn, torch.randint(-20, 21, (8,), generator=g), g),
               lambda a, g: a.transfer(None, g)],
        state=lambda a: {"g": a.cells.memristor.g_us, "bits": a.cells.fecap.bits, "mode": a.cells.mode},
        counters=lambda a: {"fe_ops": a.fecap_ops(), "mem_ops": a.memristor_ops(), "cycles": a.cells.fecap.cycles},
        bounds={"g": (0.0, 400.0), "mode": (0, 2)},
    )


def test_hybrid_array_conforms():
    check_device_model(_array_spec())


def test_fecap_conforms():
    check_device_model(_fecap_spec())


def test_memristor_conforms():
    check_device_model(_memristor_spec())


def test_dual_mode_cell_conforms():
    check_device_model(_cell_spec())


def test_circuit_transfer_conforms():
    check_device_model(_transfer_spec())


def test_conformance_catches_a_broken_model():
    """The check is not vacuous: a counter that decreases is caught."""
    import pytest
    spec = _memristor_spec()
    spec.steps.append(lambda m, g: m.ops.sub_(1))
    with pytest.raises(AssertionError, match="counter ops decreased"):
        check_device_model(spec)
