"""The DAC-free FeCAP → memristor transfer (digest §3), vectorised, and its calibration.

Chain, per synapse: (1) RESET G+ and G−, TL precharged to 0 V; (2) read the sign cell, which
selects G+ or G−; (3) read the 3 MSB cells (4:2:1 minimum cells) at once onto the floating TL —
charge balance gives V_TL = (C_D·A·V_SL + Q_sw·Σ f_i·b_i)/(C_TL + C_D·A), A = 7 cells, f_i the
cells' charge factors; (4) V_TL gates the selected memristor's access transistor during a
simultaneous SET → compliance current → conductance; (5) restore the read FeCAP bits.

The defaults (transistor threshold and tail, G(Icc) curve, SET spread) are fitted by
:func:`calibrate` so the 8 magnitude levels reproduce the measured means and pooled σ (Fig. 4).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..config_base import check_increasing, check_number, flatten, param
from ..errors import ConfigError, DataError
from ..physics.fecap import FeCAPModelConfig
from ..physics.memristor import MemristorConfig, g_set_curve, set_conductance
from ..physics.transistor import AccessTransistorConfig, compliance_current_ua, saturation_current_ua
from .layout import PAPER_LAYOUT, SynapseLayout

PAPER_LEVEL_MEANS_US = (1.4, 11.9, 36.5, 58.3, 73.9, 85.5, 95.9, 103.9)  # digest §3 [P]
PAPER_POOLED_SIGMA_US = 8.7  # digest §3 [P]


@dataclass
class TransferLineConfig:
    c_tl_ff: float = param(400.0, unit="fF", source="[I] chosen so V_TL spans 0.50–1.58 V over the 8 levels (digest §3: ≈0.5–1.5 V)",
                           doc="capacitance of the floating transfer line")
    v_sl: float = param(3.5, unit="V", source="digest §3 [P]", doc="SL pulse of the MSB read (10 µs, full switching assumed)")
    t_sl_s: float = param(10e-6, unit="s", source="digest §3 [P]")
    v_set: float = param(2.3, unit="V", source="digest §3 [P]", doc="SL_mem pulse of the simultaneous SET (10 µs)")

    def __post_init__(self):
        for name in ("c_tl_ff", "v_sl", "t_sl_s", "v_set"):
            check_number(f"TransferLineConfig.{name}", getattr(self, name), lo=0, lo_open=True)


@dataclass
class ChargeTransferConfig:
    """Everything the transfer chain needs; the defaults are calibrated to Fig. 4."""

    fecap: FeCAPModelConfig = field(default_factory=FeCAPModelConfig)
    line: TransferLineConfig = field(default_factory=TransferLineConfig)
    transistor: AccessTransistorConfig = field(default_factory=AccessTransistorConfig)
    memristor: MemristorConfig = field(default_factory=MemristorConfig)
    reference_means_us: tuple = param(PAPER_LEVEL_MEANS_US, unit="µS", source="digest §3 [P]",
                                      doc="level means that define the weight scale (level 0 → 0, level 7 → 7)")

    def __post_init__(self):
        # one mean per level of the 3-MSB transfer: the chain and the weight scale read all eight
        self.reference_means_us = check_increasing("ChargeTransferConfig.reference_means_us", self.reference_means_us,
                                                   length=PAPER_LAYOUT.max_level + 1, lo=0)


# --- the chain, stateless ------------------------------------------------------------------------

def msb_bits(magnitude: torch.Tensor, layout: SynapseLayout = PAPER_LAYOUT) -> torch.Tensor:
    """Per-cell bits (..., 7) of the MSB cells, MSB1's 4 cells first: each cell copies its bit."""
    nb = layout.analogue_magnitude_bits
    cols = []
    for j, cells in enumerate(layout.msb_cells):
        bit = (torch.bitwise_right_shift(magnitude.long(), nb - 1 - j) & 1).to(torch.float64)
        cols += [bit] * cells
    return torch.stack(cols, dim=-1)


def tl_voltage(bits: torch.Tensor, cell_factors: torch.Tensor, cfg: ChargeTransferConfig) -> torch.Tensor:
    """V_TL (V) after the MSB cells dump their charge on the floating line (charge balance)."""
    c = cfg.fecap.cell
    n_cells = bits.shape[-1]
    q_lin = c.c_d_ff * n_cells * cfg.line.v_sl  # dielectric charge of every selected cell
    q_sw = c.q_switch_fc * (bits * cell_factors).sum(-1)  # only cells storing 1 switch
    return (q_lin + q_sw) / (cfg.line.c_tl_ff + c.c_d_ff * n_cells)


def tl_voltage_vs_area(area_units: torch.Tensor, cfg: ChargeTransferConfig, n_cells: int = 7) -> torch.Tensor:
    """V_TL for a total switched capacitor area (in S_min units) among n_cells read: Fig. 3e."""
    c = cfg.fecap.cell
    q = c.c_d_ff * n_cells * cfg.line.v_sl + c.q_switch_fc * area_units.to(torch.float64)
    return q / (cfg.line.c_tl_ff + c.c_d_ff * n_cells)


def transfer_conductance(magnitude: torch.Tensor, cfg: ChargeTransferConfig, noise: dict[str, torch.Tensor],
                         layout: SynapseLayout = PAPER_LAYOUT, cycles: torch.Tensor | None = None) -> torch.Tensor:
    """Conductance (µS) of the selected memristor for magnitude levels, given explicit noise:
    ``cells`` (..., 7) standard normals of the MSB cells' charge, ``lcs``, ``d2d``, ``c2c`` (...)."""
    factors = torch.exp(cfg.fecap.cell.pr_sigma_ln * noise["cells"])
    v_tl = tl_voltage(msb_bits(magnitude, layout), factors, cfg)
    icc = compliance_current_ua(v_tl, cfg.transistor)
    mcfg = cfg.memristor
    g_lcs = mcfg.curve.lcs_median_us * torch.exp(mcfg.curve.lcs_sigma_ln * noise["lcs"])
    cyc = torch.zeros_like(g_lcs) if cycles is None else cycles
    return set_conductance(g_lcs, icc, noise["d2d"], noise["c2c"], cyc, mcfg)


def draw_noise(shape: Sequence[int], generator: torch.Generator | None, n_cells: int = 7,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Standard-normal draws of one transfer, in a fixed order (cells, lcs, d2d, c2c)."""
    shape = tuple(shape)
    kw = {"generator": generator, "dtype": torch.float64, "device": device}
    return {"cells": torch.randn(shape + (n_cells,), **kw), "lcs": torch.randn(shape, **kw),
            "d2d": torch.randn(shape, **kw), "c2c": torch.randn(shape, **kw)}


def conductance_to_weight(g_us: torch.Tensor, sign: torch.Tensor, reference_means_us: Sequence[float]) -> torch.Tensor:
    """(G − G_0)/(G_top − G_0)·top with the sign applied; clipped at 0 so the sign never flips."""
    g0, gt = reference_means_us[0], reference_means_us[-1]
    top = len(reference_means_us) - 1
    return sign * ((g_us - g0) / (gt - g0) * top).clamp_min(0.0)


# Settings of the chain's devices that a training transfer does not read: every transfer draws a fresh
# chain (the pooled statistics of Fig. 4) with no device history, so the FeCAPs' read, switching,
# wake-up, fatigue and sensing and the memristors' forming, cycling and read models — which drive
# the device figures (``ferristor device``) — change nothing in training. Prefixes of
# ``ChargeTransferConfig`` paths; tests/circuit/test_charge_transfer.py checks the list both ways.
NOT_READ_BY_TRANSFER = ("fecap.cell.c_bl_ff", "fecap.cell.v_read", "fecap.cell.t_read_s", "fecap.cell.read_path_sigma_ln",
                        "fecap.cell.v0_sigma_v", "fecap.switching", "fecap.wake_up", "fecap.fatigue", "fecap.sense",
                        "line.t_sl_s", "line.v_set", "memristor.forming", "memristor.curve.level_icc_ua",
                        "memristor.endurance", "memristor.read")


def changed_settings(config: ChargeTransferConfig, prefixes: Sequence[str] = NOT_READ_BY_TRANSFER,
                     base: ChargeTransferConfig | None = None) -> list[tuple[str, object]]:
    """(path, value) of the leaves under ``prefixes`` ("" for all) where ``config`` differs from
    ``base`` (default: the calibrated defaults)."""
    ours, theirs = flatten(dataclasses.asdict(config)), flatten(dataclasses.asdict(base or ChargeTransferConfig()))
    under = lambda path: any(not p or path == p or path.startswith(p + ".") for p in prefixes)  # noqa: E731
    return [(path, v) for path, v in ours.items() if under(path) and v != theirs[path]]


class CircuitTransfer:
    """TransferModel running the physical chain. Stateless: every transfer draws the FeCAP cells'
    and memristor's spread afresh, i.e. the pooled statistics the paper measured over 33 circuits."""

    def __init__(self, config: ChargeTransferConfig | None = None, max_level: int = 7,
                 layout: SynapseLayout = PAPER_LAYOUT):
        self.config = config or ChargeTransferConfig()
        if max_level != layout.max_level or len(self.config.reference_means_us) != max_level + 1:
            raise ConfigError("max_level", max_level, f"{layout.max_level} (the circuit transfers 3 MSBs)")
        self.layout = layout

    @classmethod
    def from_config(cls, config, max_level: int = 7) -> "CircuitTransfer":
        """Build from a TransferConfig (engine side): the device chain of ``config.circuit``."""
        return cls(config.circuit, max_level)

    def conductance(self, magnitude: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = draw_noise(magnitude.shape, generator, sum(self.layout.msb_cells), magnitude.device)
        return transfer_conductance(magnitude, self.config, noise, self.layout)

    def program(self, sign: torch.Tensor, magnitude: torch.Tensor, noise=None) -> torch.Tensor:
        """Programmed weights (level units) of magnitudes (R, ...); replica r draws from the r-th
        generator of ``noise`` (a ``circuit.transfer`` noise source)."""
        if noise is None:
            raise ValueError("the circuit transfer needs a noise source (one generator per replica)")
        generators = noise.generators(magnitude.device)
        if len(generators) != magnitude.shape[0]:
            raise ValueError("the circuit transfer needs one generator per replica (dimension 0)")
        g = torch.stack([self.conductance(magnitude[r], generators[r]) for r in range(magnitude.shape[0])])
        w = conductance_to_weight(g, sign.to(torch.float64), self.config.reference_means_us)
        return w.to(torch.float32)


class QuantileCircuitTransfer:
    """The circuit transfer drawn from its per-level distribution: exact in distribution, one draw a
    weight. The chain is stateless — every transfer draws the cells' and the memristor's spread afresh
    (:class:`CircuitTransfer`) — so a programmed weight is an independent draw from a fixed
    distribution per level. This model tabulates that distribution once, from ``draws`` runs of the
    chain per level (seed ``seed``), as its quantile function on a grid of normal scores, and
    programs a weight as Q_level(z) for one counter-based normal z — the engine's transfer stream, as
    the table model draws. Only the table's Monte-Carlo error separates it from the chain, and it
    costs a table model's transfer instead of ~60 chain draws a weight (BENCHMARKS.md)."""

    Z_RANGE = 6.0  # normal scores beyond ±6 (probability 2·10⁻⁹) take the table's ends
    Z_STEPS = 4096  # grid intervals over [−6, 6]: linear interpolation between 4,097 quantiles

    def __init__(self, config: ChargeTransferConfig | None = None, max_level: int = 7,
                 layout: SynapseLayout = PAPER_LAYOUT, draws: int = 65536, seed: int = 0):
        self.config = config or ChargeTransferConfig()
        CircuitTransfer(self.config, max_level, layout)  # the same checks
        key = (json.dumps(dataclasses.asdict(self.config)), layout.max_level, int(draws), int(seed))
        if key not in _TABLES:
            while len(_TABLES) >= 8:  # a sweep's configs come and go: keep the last few
                _TABLES.pop(next(iter(_TABLES)))
            _TABLES[key] = quantile_table(self.config, layout, int(draws), int(seed))
        self.table = _TABLES[key]
        self._on_device: dict = {}

    @classmethod
    def from_config(cls, config, max_level: int = 7) -> "QuantileCircuitTransfer":
        return cls(config.circuit, max_level, draws=config.circuit_table_draws)

    def program(self, sign: torch.Tensor, magnitude: torch.Tensor, noise=None) -> torch.Tensor:
        """Programmed weights (level units, float32) of magnitudes (R, ...): replica r's normals from
        ``noise`` (``normals``, as the table model draws them). IEEE + − × and floor only, so every
        device gives the same bits."""
        if noise is None:
            raise ValueError("the circuit transfer needs a noise source (one stream per replica)")
        device = magnitude.device
        table = self._table_on(device)
        steps = table.shape[1] - 1
        z = noise.normals(magnitude.shape, device)
        pos = ((z + self.Z_RANGE) * (steps / (2 * self.Z_RANGE))).clamp_(0.0, float(steps))
        i = pos.floor().clamp_(max=steps - 1)
        frac = pos - i
        flat = magnitude.long() * (steps + 1) + i.long()
        lo, hi = table.view(-1)[flat], table.view(-1)[flat + 1]
        return (lo + frac * (hi - lo)).mul_(sign)

    def _table_on(self, device) -> torch.Tensor:
        table = self._on_device.get(torch.device(device))
        if table is None:
            table = self._on_device[torch.device(device)] = self.table.to(device).contiguous()
        return table

    def program_hidden_cpu_(self, hidden: np.ndarray, shift: int, level_step: float, noise, out: np.ndarray) -> None:
        """:meth:`program` of ``split_sign(hidden, shift)`` times ``level_step``, fused into ``out``
        (CPU, numba, (R, I, O) arrays): the same normals and float32 arithmetic, bit for bit."""
        noise = _counter_noise(noise)
        self.bind_hidden_cpu(hidden, shift, level_step, noise.keys, out)(noise.index)

    def bind_hidden_cpu(self, hidden: np.ndarray, shift: int, level_step: float, keys: np.ndarray, out: np.ndarray):
        """:meth:`program_hidden_cpu_` of fixed arrays and noise keys (R, 2), ready to run at any
        transfer counter: a callable ``(index) -> None``."""
        from .transfer_cpu import bind_quantile_transfer
        return bind_quantile_transfer(hidden, shift, self.table.numpy(), keys, self.Z_RANGE, level_step, out)

    def program_hidden_triton_(self, hidden: torch.Tensor, shift: int, level_step: float, noise, out: torch.Tensor) -> None:
        """:meth:`program_hidden_cpu_` on a CUDA device, one Triton launch (``transfer_triton``)."""
        from ..rule.functional import keys_on
        from .transfer_triton import quantile_transfer_
        noise = _counter_noise(noise)
        quantile_transfer_(hidden, out, shift=shift, table=self._table_on(hidden.device), z_range=self.Z_RANGE,
                           level_step=level_step, keys=keys_on(noise.keys, hidden.device), index=noise.index,
                           index_tensor=noise.on_device)


def _counter_noise(noise):
    from .transfer import counter_noise  # transfer.py imports this module
    return counter_noise(noise)


_TABLES: dict[tuple, torch.Tensor] = {}  # (config as JSON, max level, draws, seed) → table: one per layer would repeat it


def quantile_table(config: ChargeTransferConfig, layout: SynapseLayout, draws: int, seed: int) -> torch.Tensor:
    """(levels, Z_STEPS + 1) float32: level l's weight (level units, ≥ 0) at the normal scores of the
    grid, from the sorted weights of ``draws`` chain runs."""
    g = torch.Generator().manual_seed(seed)
    n_levels = layout.max_level + 1
    levels = torch.arange(n_levels).repeat_interleave(draws)
    cond = CircuitTransfer(config, layout.max_level, layout).conductance(levels, g)
    w = conductance_to_weight(cond, torch.ones_like(cond), config.reference_means_us).view(n_levels, draws)
    ordered = w.sort(dim=1).values.numpy()
    steps, zr = QuantileCircuitTransfer.Z_STEPS, QuantileCircuitTransfer.Z_RANGE
    # Φ(z) of the grid with the standard library's erf: one scalar routine, the same on every x86
    probs = np.array([0.5 * math.erfc(-(-zr + 2 * zr * j / steps) / math.sqrt(2.0)) for j in range(steps + 1)])
    ranks = probs * (draws - 1)
    table = np.stack([np.interp(ranks, np.arange(draws), ordered[l]) for l in range(n_levels)])
    return torch.from_numpy(table.astype(np.float32))


# --- calibration ---------------------------------------------------------------------------------

def level_statistics(cfg: ChargeTransferConfig, n_per_level: int = 20000, seed: int = 0,
                     layout: SynapseLayout = PAPER_LAYOUT, *, differential: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Monte-Carlo means, stds (µS) of the 8 levels and their pooled σ = √(mean variance): of the
    selected device's conductance, or with ``differential`` of G+ − G− (Fig. 4: the other device of
    the pair at level 0, independent; ``differential_statistics``)."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.arange(layout.max_level + 1).repeat_interleave(n_per_level)
    cond = CircuitTransfer(cfg, layout.max_level, layout).conductance(levels, g).view(layout.max_level + 1, -1)
    mean, var = cond.mean(1), cond.var(1)
    if differential:
        mean, var = differential_statistics(mean, var)
    return mean, var.sqrt(), float(var.mean().sqrt())


def differential_statistics(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-level mean and variance of G+ − G− from the selected device's: the unselected device of the
    pair sits at level 0 (its LCS), drawn independently, so the mean loses level 0's and the variance
    gains it (level 0 itself: mean 0, twice its variance)."""
    return mean - mean[0], var + var[0]


# A chain whose level means span less than half or more than twice the range of the reference means
# no longer maps levels onto weights 0…7: a unit slip (an area in µm² given in nm²), a threshold
# voltage above the line's, a sign flipped. A spread sweep moves the span by ~10 % (σ = 0.8: 1.1×).
CHAIN_SPAN_RANGE = (0.5, 2.0)
# A chain whose level 0 reads as a weight more than this many levels from 0 offsets every weight: a
# thinner transfer line (c_tl_ff 200 fF: level 0 reads 3 levels), another source voltage. The calibrated
# chain reads 0.02, and 0.03 at the widest SET spread of RESULTS.md's sweep (σ = 0.8).
CHAIN_OFFSET_LEVELS = 1.0
CHAIN_CHECK_DRAWS = 4000  # chain runs per level behind the check: ~20 ms, level means to ~0.2 µS


def chain_problem(cfg: ChargeTransferConfig, layout: SynapseLayout = PAPER_LAYOUT) -> str | None:
    """What is wrong with a chain whose transfers would not program distinguishable levels — its
    level means do not rise with the level, lie wholly above or below the reference means' (every
    weight saturates, or reads 0), do not span their range, or offset level 0 from 0 — or None.
    Training warns with it (``transfer.make_transfer``): every weight would read as nearly one value,
    and the run would look normal but for its accuracy."""
    means, _, _ = level_statistics(cfg, CHAIN_CHECK_DRAWS, seed=0, layout=layout)
    m, ref = [float(x) for x in means], cfg.reference_means_us
    shown = ", ".join(f"{x:.3g}" for x in m)
    span, ref_span = m[-1] - m[0], ref[-1] - ref[0]
    advice = ("check the units of the chain settings you changed, or fit the chain to your devices with "
              "`ferristor device calibrate`")
    if any(b <= a for a, b in zip(m, m[1:])):
        return f"the transfer chain's level means ({shown} µS) do not rise with the level: weights will not follow the hidden integers; {advice}"
    top = len(m) - 1
    w0, wt = ((x - ref[0]) / ref_span * top for x in (m[0], m[-1]))  # the weights its levels 0 and top read as
    against = (f"the transfer chain's level means ({shown} µS) against transfer.circuit.reference_means_us "
               f"({ref[0]:g} … {ref[-1]:g} µS, levels 0 … {top}): level 0 reads as weight {w0:.3g}, level {top} as {wt:.3g}")
    if w0 >= top:
        return (f"{against}: every weight reads above the top level, a zero one included — the weights saturate "
                f"at {w0:.3g} … {wt:.3g} levels and keep little but their sign; {advice}")
    if wt <= 0:
        return f"{against}: every weight reads 0 (clipped at 0, so no sign flips) and none follows its hidden integer; {advice}"
    ratio = span / ref_span
    if not CHAIN_SPAN_RANGE[0] <= ratio <= CHAIN_SPAN_RANGE[1]:
        return (f"the transfer chain's level means ({shown} µS) span {span:.3g} µS against the {ref_span:.3g} µS of "
                f"transfer.circuit.reference_means_us ({ratio:.2g}×): weights will read {'compressed towards one value' if ratio < 1 else 'beyond the levels'}; {advice}")
    if abs(w0) > CHAIN_OFFSET_LEVELS:
        effect = (f"every weight reads at least {w0:.2g} levels, a zero one included" if w0 > 0 else
                  f"every weight reads {-w0:.2g} levels low, the lowest levels clipped at 0 (so no sign flips)")
        return f"{against}: {effect}; {advice}"
    return None


# Where ``calibrate`` may put each setting it fits: (low, high, fitted on a log scale?), in the config's
# units. The transistor's threshold and exponent keep their config's allowed ranges; the others are
# wide enough for any device and keep the optimizer's values finite. A quadratic wall beyond a bound
# (``FIT_WALL``) leaves the fit untouched inside them. Unbounded, the fit had walked down flat valleys
# of its loss, where the settings trade against each other (V_th to −7 V with α → 21 and I_knee →
# 10²² µA), and so refused measurements the chain reproduces within the ranges.
FIT_BOUNDS = {"transistor.vth_v": (-1.0, 5.0, False), "transistor.smoothing_v": (1e-3, 2.0, True),
              "memristor.curve.g_max_us": (1e-2, 1e6, True), "memristor.curve.i_knee_ua": (1e-2, 1e6, True),
              "transistor.alpha": (0.5, 2.5, True), "SET spread (√2·sigma_c2c)": (1e-6, math.sqrt(2.0), True)}
FIT_WALL = 1e6  # µS² per (fit variable)² beyond a bound: a step of 0.01 past one costs 100 µS²
# Where each fitted setting lies for a device (the config's units). Outside (or at a bound of the fit),
# the fit has traded it against the others along a direction the measurements do not fix — levels
# well below G(Icc)'s saturation fix only G_max/I_knee, a steep step only a sharp threshold — and it
# means nothing physical, however well the chain then reproduces the levels (``implausible_fit``).
PLAUSIBLE_FIT = {"transistor.vth_v": (0.0, 3.0, "V"), "transistor.smoothing_v": (0.01, 1.0, "V"),
                 "transistor.alpha": (0.5, 2.5, ""), "memristor.curve.g_max_us": (10.0, 2000.0, "µS"),
                 "memristor.curve.i_knee_ua": (1.0, 2000.0, "µA")}


def implausible_fit(cfg: ChargeTransferConfig) -> list[tuple[str, float, float, float, str]]:
    """(path, value, low, high, unit) of the fitted settings of ``cfg`` not strictly inside their
    ``PLAUSIBLE_FIT`` range (a fit pinned at the edge of its bounds wanted to go further)."""
    flat = flatten(dataclasses.asdict(cfg))
    return [(path, flat[path], lo, hi, unit) for path, (lo, hi, unit) in PLAUSIBLE_FIT.items()
            if not lo < flat[path] < hi]


# Where a memristor's level means lie, in µS (what ``calibrate`` fits and the weight scale holds): the
# top level of a transfer reads between 1 nS and 10 mS. Values below are siemens (the paper's top level,
# 103.9 µS, is 1.039e-4 S), which the weight scale's 0.1 nS rounding turns into zeros after the whole
# fit; values above are nanosiemens (103,900 nS), a device no chain setting reaches.
MEASURED_RANGE_US = (1e-3, 1e4)


def _unit_hint(largest: float, what: str = "the largest is") -> str | None:
    """Why level means (or a σ) whose largest magnitude is ``largest`` µS are not in µS, or None."""
    lo, hi = MEASURED_RANGE_US
    paper = f"the paper's top level is {PAPER_LEVEL_MEANS_US[-1]} µS, digest §3"
    if largest < lo:
        return f"{what} {largest:.3g} µS, under {lo:g} µS (1 nS): in siemens? give µS (the values × 1e6; {paper})"
    if largest > hi:
        return f"{what} {largest:.4g} µS, over {hi:g} µS (10 mS): in nanosiemens? give µS (the values ÷ 1000; {paper})"
    return None


def level_means_problem(means: Sequence[float], differential: bool = False) -> str | None:
    """What is wrong with measured level means (µS, one per level 0…7, as floats) as ``calibrate``'s
    targets, or None: not finite, not in µS (siemens, nanosiemens), a negative conductance, or a
    level no higher than the one below. Checked before the fit, which would otherwise run first."""
    if not all(math.isfinite(m) for m in means):
        return "expected finite numbers"
    hint = _unit_hint(max(abs(m) for m in means))
    if hint:
        return hint
    if not differential and min(means) < 0:
        return "a conductance is ≥ 0 (G+ − G− values, level 0 about 0, are fitted with differential=True)"
    lv = next((lv for lv in range(1, len(means)) if means[lv] <= means[lv - 1]), None)
    if lv is not None:
        return (f"level {lv} ({means[lv]:.4g} µS) is not above level {lv - 1} ({means[lv - 1]:.4g} µS): the means "
                f"must rise strictly from level 0 to level {len(means) - 1}")
    return None


def sigma_problem(sigma: float) -> str | None:
    """What is wrong with a measured pooled σ (µS) as ``calibrate``'s target, or None."""
    if not (math.isfinite(sigma) and sigma >= 0):
        return "expected a finite number ≥ 0 (µS)"
    return _unit_hint(sigma, "it is") if sigma > MEASURED_RANGE_US[1] else None


def _as_floats(values) -> list[float] | None:
    """``values`` as a list of floats (a list, tuple, array or tensor of numbers), or None."""
    try:
        out = list(values) if not isinstance(values, (str, bytes)) else None
        if out is None or any(isinstance(v, (str, bytes, bool)) for v in out):
            return None
        return [float(v) for v in out]
    except (TypeError, ValueError):
        return None


def check_targets(means_us, sigma_us, differential: bool, n_levels: int) -> tuple[list[float], float]:
    """``calibrate``'s targets as floats, or a ConfigError naming ``means_us`` / ``sigma_us`` as typed."""
    means = _as_floats(means_us)
    if means is None or len(means) != n_levels:
        raise ConfigError("means_us", means_us, f"{n_levels} level means in µS, one per level 0…{n_levels - 1}")
    problem = level_means_problem(means, differential)
    if problem:
        raise ConfigError("means_us", means, reason=problem)
    sigma = _as_floats([sigma_us])
    if sigma is None:
        raise ConfigError("sigma_us", sigma_us, "a number ≥ 0 (µS)")
    problem = sigma_problem(sigma[0])
    if problem:
        raise ConfigError("sigma_us", sigma[0], reason=problem)
    return means, sigma[0]


def calibrate(means_us: Sequence[float], sigma_us: float, base: ChargeTransferConfig | None = None,
              n_per_level: int = 4000, seed: int = 0, layout: SynapseLayout = PAPER_LAYOUT, *,
              differential: bool = False) -> ChargeTransferConfig:
    """Fit the transistor threshold, tail and exponent, the G(Icc) curve and the SET spread so the chain's
    level means and pooled σ match the targets (Monte Carlo with common random numbers, L-BFGS), each
    setting within ``FIT_BOUNDS`` (so the result is always a valid config), at the best point the
    optimizer evaluated.
    The FeCAP, transfer-line and LCS parameters stay as given. ``differential``: the targets are of
    G+ − G− (Fig. 4's levels, level 0 ≈ 0), fitted as ``differential_statistics`` of the chain's; the
    absolute conductances then rest on the LCS (``memristor.curve.lcs_median_us``), which the fit keeps,
    and the weight scale (``reference_means_us``) becomes the fitted chain's own level means.
    ``means_us`` (8, strictly increasing; conductances ≥ 0) and ``sigma_us`` are in µS, checked before
    the fit (``check_targets``): values in siemens or nanosiemens are refused saying so."""
    base = base or ChargeTransferConfig()
    means_us, sigma_us = check_targets(means_us, sigma_us, differential, layout.max_level + 1)  # before the fit's seconds
    target = torch.tensor(means_us, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    levels = torch.arange(layout.max_level + 1).repeat_interleave(n_per_level)
    noise = draw_noise(levels.shape, gen, sum(layout.msb_cells))
    z_set = (noise["d2d"] + noise["c2c"]) / math.sqrt(2.0)  # σ_d2d = σ_c2c: their sum is one normal
    c = base.fecap.cell
    v_tl = tl_voltage(msb_bits(levels, layout), torch.exp(c.pr_sigma_ln * noise["cells"]), base)
    v_gs = v_tl - base.transistor.v_source
    mc = base.memristor
    g_lcs = mc.curve.lcs_median_us * torch.exp(mc.curve.lcs_sigma_ln * noise["lcs"])
    t, m = base.transistor, mc.curve
    # fit variables: V_th, then the logarithms of s, G_max, I_knee, α and the SET spread (√2·σ_each)
    p = torch.tensor([t.vth_v, math.log(t.smoothing_v), math.log(m.g_max_us), math.log(m.i_knee_ua),
                      math.log(t.alpha), math.log(max(math.hypot(m.sigma_d2d, m.sigma_c2c), 1e-3))],
                     dtype=torch.float64, requires_grad=True)
    bounds = torch.tensor([(math.log(lo), math.log(hi)) if log else (lo, hi) for lo, hi, log in FIT_BOUNDS.values()],
                          dtype=torch.float64)

    def conductances(p):  # (levels, draws) µS of the chain with parameters p
        icc = saturation_current_ua(v_gs, p[0], t.k_ua_per_v2, torch.exp(p[1]), torch.exp(p[4]))
        gs = g_set_curve(icc, torch.exp(p[2]), torch.exp(p[3]), m.hill_n)
        return (g_lcs + gs * (1.0 + torch.exp(p[5]) * z_set).clamp_min(0.0)).view(layout.max_level + 1, -1)

    def stats(p):
        g = conductances(p)
        mean, var = g.mean(1), g.var(1)
        if differential:
            mean, var = differential_statistics(mean, var)
        return mean, var.mean().sqrt()

    opt = torch.optim.LBFGS([p], max_iter=200, line_search_fn="strong_wolfe")
    best: list = [math.inf, p.detach().clone()]  # the lowest loss evaluated, and where

    def closure():
        opt.zero_grad()
        mu, sd = stats(p)
        wall = ((bounds[:, 0] - p).clamp_min(0.0) ** 2 + (p - bounds[:, 1]).clamp_min(0.0) ** 2).sum()
        loss = ((mu - target) ** 2).sum() + 8.0 * (sd - sigma_us) ** 2 + FIT_WALL * wall
        loss.backward()
        value = loss.item()
        if math.isfinite(value) and value < best[0]:
            best[:] = [value, p.detach().clone()]
        return loss

    for _ in range(4):
        opt.step(closure)
        if not bool(torch.isfinite(p).all()):  # a NaN step of the line search on a flat loss
            break
    p = torch.minimum(torch.maximum(best[1], bounds[:, 0]), bounds[:, 1])  # the best point, within the bounds
    v = p.tolist()
    s_each = math.exp(v[5]) / math.sqrt(2.0)
    if differential:  # the weight scale: the fitted chain's own conductances (the data hold none)
        with torch.no_grad():
            means_us = conductances(p).mean(1).tolist()
    return dataclasses.replace(
        base,
        transistor=dataclasses.replace(t, vth_v=round(v[0], 4), smoothing_v=round(math.exp(v[1]), 4),
                                       alpha=round(math.exp(v[4]), 4)),
        memristor=dataclasses.replace(mc, curve=dataclasses.replace(
            m, g_max_us=round(math.exp(v[2]), 2), i_knee_ua=round(math.exp(v[3]), 2),
            sigma_d2d=round(s_each, 4), sigma_c2c=round(s_each, 4))),
        reference_means_us=tuple(round(float(x), 4) for x in means_us),  # 0.1 nS: beyond any measurement
    )


# The columns of a CSV of measured transfers: the selected device's conductance, or the pair's
# differential G+ − G− (Fig. 4; what ``ferristor device transfer-levels`` writes).
ABSOLUTE_COLUMN, DIFFERENTIAL_COLUMN = "conductance_uS", "g_diff_uS"


def read_level_measurements(path: str | os.PathLike, layout: SynapseLayout = PAPER_LAYOUT) -> list[list[float]]:
    """The conductances (µS) of each magnitude level 0…max of a CSV of the selected device's measured
    transfers (a conductance_uS column). A differential file is refused: its values are G+ − G−, not
    conductances (``read_transfer_measurements`` reads both kinds and says which)."""
    levels, differential = read_transfer_measurements(path, layout)
    if differential:
        raise DataError(f"{path}: holds differential values ({DIFFERENTIAL_COLUMN}: G+ − G−), not the selected "
                        f"device's conductances: read it with read_transfer_measurements, or fit it with "
                        f"calibrate_from_csv (which fits a pair's statistics)")
    return levels


def read_transfer_measurements(path: str | os.PathLike, layout: SynapseLayout = PAPER_LAYOUT
                               ) -> tuple[list[list[float]], bool]:
    """(The values (µS) of each magnitude level 0…max, differential?) from a CSV with columns level and
    either conductance_uS (the selected device's conductance, ≥ 0; a signed level counts by its
    magnitude: the selected device is programmed the same way) or g_diff_uS (G+ − G−, as Fig. 4 and
    ``ferristor device transfer-levels`` give it; a negative level's value counts with its sign flipped).
    Every fault is a DataError naming the file and, where there is one, the row."""
    n_levels = layout.max_level + 1

    def bad(reason: str) -> DataError:
        return DataError(f"{path}: {reason}")
    if os.path.isdir(path):
        raise bad("is a folder, not a CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # a spreadsheet's byte-order mark is read past
            reader = csv.DictReader(fh)
            # each row with the number of its (last) line: a blank line is skipped, not counted as a row
            header, rows = reader.fieldnames or [], [(reader.line_num, r) for r in reader]
    except OSError as e:
        raise bad(f"cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise bad("is not a text file (save the measurements as CSV)") from None
    except csv.Error as e:
        raise bad(f"is not a readable CSV ({e})") from None
    kinds = [c for c in (ABSOLUTE_COLUMN, DIFFERENTIAL_COLUMN) if c in header]
    if "level" in header and len(kinds) == 2:
        raise bad(f"has both a '{ABSOLUTE_COLUMN}' column (the selected device's conductance) and a "
                  f"'{DIFFERENTIAL_COLUMN}' column (G+ − G−): give one kind of measurement a file, so it is clear "
                  f"which to fit — remove the other column, or split the file in two")
    if "level" not in header or len(kinds) != 1:
        found = ", ".join(map(repr, header)) or "none (an empty file)"
        raise bad(f"expected the columns 'level' and one of '{ABSOLUTE_COLUMN}' (the selected device's conductance) "
                  f"or '{DIFFERENTIAL_COLUMN}' (G+ − G−), found {found}")
    column = kinds[0]
    differential = column == DIFFERENTIAL_COLUMN
    by_level: dict[int, list[float]] = {}
    for line, r in rows:
        # DictReader puts a row's extra fields under None and fills missing ones with None: a decimal
        # comma ('3,12,5' under level,conductance_uS) would be read as 12 µS without a word
        fields = sum(r[name] is not None for name in header) + len(r.get(None) or [])
        if fields != len(header):
            hint = (": a decimal comma splits a value in two — write 12.5, not 12,5" if fields > len(header) else
                    ": give every column a value")
            raise bad(f"row {line}: {fields} field{'s' if fields != 1 else ''} where the header has {len(header)} "
                      f"({','.join(header)}){hint}")
        text = {name: r[name] for name in ("level", column)}
        for name, value in text.items():
            if value is None or not value.strip():
                raise bad(f"row {line}: no {name} value")
        try:
            signed = int(text["level"])
        except ValueError:
            raise bad(f"row {line}: level {text['level']!r} is not an integer") from None
        level = abs(signed)
        try:
            g = float(text[column])
        except ValueError:
            raise bad(f"row {line}: {column} {text[column]!r} is not a number") from None
        if not math.isfinite(g):
            raise bad(f"row {line}: {column} {text[column]!r} is not a finite number")
        if differential:
            g = -g if signed < 0 else g  # G+ − G− of a negative level: the selected device is G−
        elif g < 0:  # a conductance cannot be; a negative level's differential G+ − G− is: that column says so
            raise bad(f"row {line}: conductance_uS {text[column].strip()} is negative: give the selected "
                      f"device's conductance (≥ 0), for a negative level too, or differential values as a "
                      f"'{DIFFERENTIAL_COLUMN}' column")
        if level >= n_levels:
            raise bad(f"row {line}: level {text['level'].strip()} is outside 0…{n_levels - 1} "
                      f"(or −{n_levels - 1}…{n_levels - 1}, signed)")
        by_level.setdefault(level, []).append(g)
    missing = [lv for lv in range(n_levels) if lv not in by_level]
    if missing:
        raise bad(f"has no measurements of level {', '.join(map(str, missing))}: expected the {n_levels} levels "
                  f"0…{n_levels - 1} of the {layout.analogue_magnitude_bits}-bit transfer")
    few = [lv for lv in range(n_levels) if len(by_level[lv]) < 2]
    if few:
        raise bad(f"level {', '.join(map(str, few))}: a single measurement; at least 2 a level (for the spread)")
    return [by_level[lv] for lv in range(n_levels)], differential


def level_summary(levels: Sequence[Sequence[float]]) -> tuple[list[float], float]:
    """Each level's mean and the pooled σ = √(mean of the levels' variances), in the unit given."""
    vals = [torch.tensor(v, dtype=torch.float64) for v in levels]
    return [float(v.mean()) for v in vals], float(torch.stack([v.var() for v in vals]).mean().sqrt())


def read_measurements_csv(path: str | os.PathLike, layout: SynapseLayout = PAPER_LAYOUT) -> tuple[list[float], float]:
    """Per-level means and pooled σ (µS) of :func:`read_level_measurements`."""
    return level_summary(read_level_measurements(path, layout))


def calibrate_from_csv(path: str | os.PathLike, base: ChargeTransferConfig | None = None, **kw) -> ChargeTransferConfig:
    """Re-calibrate the chain on a user's measured transfers (either kind of CSV, ``read_transfer_measurements``)."""
    levels, differential = read_transfer_measurements(path)
    return calibrate(*level_summary(levels), base, differential=differential, **kw)
