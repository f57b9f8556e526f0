"""Ferroelectric capacitor (FeCAP) model, vectorised over cells (digest §1).

Switching: nucleation-limited switching (NLS, Tagantsev et al. 2002) — each cell is an ensemble of
domains whose local switching times are log-normally distributed; their median follows Merz's law
τ_m(V) = τ_∞·exp(V_a/V). The switched fraction after a pulse (V, t) is Φ((ln t − ln τ_m)/σ).
We chose NLS because polycrystalline HfO2 films show its broad, log-time switching, and it gives
the pulse-width/amplitude dependence of the switching energy (Fig. 2c) with three parameters.

A cell's switched charge is 2Pr·S times a per-cell log-normal factor (device spread), times the
wake-up factor (pinched pristine loop opening over ~1,000 cycles) and the fatigue factor (loop
closing with cycling, condition A faster than B). The bit-line (BL) voltage of a read is
V0 + Q_sw/(C_D + C_BL); a clocked latch compares it with Vref (plus its own offset).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..config_base import check_choice, check_number, param

_SQRT2 = math.sqrt(2.0)


@dataclass
class FeCAPConfig:
    """Geometry, polarization and read path of one minimum-size FeCAP (1T1C)."""

    area_um2: float = param(0.36, unit="µm²", source="digest §1 [D]", doc="S_min, 600 nm square device")
    two_pr_uc_cm2: float = param(20.0, unit="µC/cm²", source="digest §1 [D]", doc="switched polarization 2Pr after wake-up")
    c_d_ff: float = param(9.5, unit="fF", source="digest §1 [P]", doc="linear (dielectric) capacitance of a minimum cell")
    c_bl_ff: float = param(188.0, unit="fF", source="digest §1 [P]", doc="bit-line capacitance")
    v_read: float = param(3.0, unit="V", source="digest §1 [P]", doc="read/program pulse amplitude")
    t_read_s: float = param(2e-6, unit="s", source="digest §1 [P]", doc="read/program pulse width")
    pr_sigma_ln: float = param(0.15, unit="ln", source="[I]", doc="cell-to-cell log-normal spread of the switched charge (also felt by the transfer line)")
    read_path_sigma_ln: float = param(0.242, unit="ln", source="[I] fitted: total √(0.15²+0.242²)=0.285 puts the worst of 16,384 windows at 120 mV (digest §1)",
                                      doc="extra log-normal spread of the memory window from the read path (BL coupling), felt by BL reads only")
    v0_sigma_v: float = param(0.008, unit="V", source="[I]", doc="cell-to-cell spread of the BL voltage of a stored 0")

    def __post_init__(self):
        for name in ("area_um2", "two_pr_uc_cm2", "c_d_ff", "c_bl_ff", "v_read", "t_read_s"):
            check_number(f"FeCAPConfig.{name}", getattr(self, name), lo=0, lo_open=True)
        for name in ("pr_sigma_ln", "read_path_sigma_ln", "v0_sigma_v"):
            check_number(f"FeCAPConfig.{name}", getattr(self, name), lo=0)

    @property
    def q_switch_fc(self) -> float:
        """Switched charge of a minimum cell: 2Pr·S (µC/cm² · µm² = 1e-8 µC = 10 fC)."""
        return self.two_pr_uc_cm2 * self.area_um2 * 10.0

    @property
    def v0(self) -> float:
        """BL voltage of a stored 0: the dielectric share of the read pulse, V·C_D/(C_D+C_BL)."""
        return self.v_read * self.c_d_ff / (self.c_d_ff + self.c_bl_ff)

    @property
    def median_window_v(self) -> float:
        """Median memory window Q_sw/(C_D+C_BL): 0.365 V with the defaults (digest §1: 360 mV)."""
        return self.q_switch_fc / (self.c_d_ff + self.c_bl_ff)


@dataclass
class SwitchingConfig:
    """Polarization switching kinetics: NLS with a Merz-law median switching time."""

    model: str = param("nls", source="[I]", doc="'nls' (log-normal switching times) or 'merz' (one time constant, 1−exp(−t/τ))")
    tau_inf_s: float = param(2.27e-12, unit="s", source="[I]", doc="Merz prefactor: τ_m(3 V) = 50 ns")
    activation_v: float = param(30.0, unit="V", source="[I]", doc="Merz activation voltage V_a (activation field × thickness)")
    sigma_ln_tau: float = param(1.0, unit="ln s", source="[I]", doc="width of the log-normal distribution of local switching times")

    def __post_init__(self):
        check_choice("SwitchingConfig.model", self.model, ("nls", "merz"))
        check_number("SwitchingConfig.tau_inf_s", self.tau_inf_s, lo=0, lo_open=True)
        check_number("SwitchingConfig.activation_v", self.activation_v, lo=0)
        check_number("SwitchingConfig.sigma_ln_tau", self.sigma_ln_tau, lo=0, lo_open=True)


@dataclass
class WakeUpConfig:
    pristine_fraction: float = param(0.4, unit="1", source="[I]", doc="switched charge of a pristine (pinched) cell relative to a woken one")
    wake_cycles: int = param(1000, unit="cycle", source="digest §1 [P]", doc="cycles applied by the wake-up step")
    tau_cycles: float = param(200.0, unit="cycle", source="[I]", doc="cycles over which the loop opens (99 % after 5τ = wake_cycles)")

    def __post_init__(self):
        check_number("WakeUpConfig.pristine_fraction", self.pristine_fraction, lo=0, hi=1)
        check_number("WakeUpConfig.wake_cycles", self.wake_cycles, lo=0, integer=True)
        check_number("WakeUpConfig.tau_cycles", self.tau_cycles, lo=0, lo_open=True)


@dataclass
class FatigueConfig:
    """Window closing with cycling: factor 1/(1 + (n/N_half)^β) per programming condition."""

    condition: str = param("B", source="digest §1 [P]", doc="programming condition in use: 'A' (bit failures by 1e7) or 'B' (adopted)")
    n_half_a: float = param(1e7, unit="cycle", source="[I]", doc="condition A: cycles at which the window halves")
    beta_a: float = param(1.0, unit="1", source="[I]")
    n_half_b: float = param(1e9, unit="cycle", source="[I]", doc="condition B: window still > 98 % at 1e7 (endurance > 1e7, digest §1)")
    beta_b: float = param(1.0, unit="1", source="[I]")

    def __post_init__(self):
        check_choice("FatigueConfig.condition", self.condition, ("A", "B"))
        for name in ("n_half_a", "beta_a", "n_half_b", "beta_b"):
            check_number(f"FatigueConfig.{name}", getattr(self, name), lo=0, lo_open=True)

    def factor(self, cycles: torch.Tensor, condition: str | None = None) -> torch.Tensor:
        cond = check_choice("condition", condition or self.condition, ("A", "B"))
        n_half, beta = (self.n_half_a, self.beta_a) if cond == "A" else (self.n_half_b, self.beta_b)
        return 1.0 / (1.0 + (cycles.to(torch.float64) / n_half) ** beta)


@dataclass
class SenseAmpConfig:
    vref_v: float = param(0.22, unit="V", source="[I]", doc="reference of the clocked latch, between V0 (0.144 V) and the worst woken V1 (0.144 + 0.120 V, digest §1)")
    offset_sigma_v: float = param(0.004, unit="V", source="[I]", doc="input offset of the latch, redrawn every read")
    supply_v: float = param(1.2, unit="V", source="[I]", doc="latch supply; Vref must lie inside (0, supply)")

    def __post_init__(self):
        check_number("SenseAmpConfig.supply_v", self.supply_v, lo=0, lo_open=True)
        check_number("SenseAmpConfig.vref_v", self.vref_v, lo=0, hi=self.supply_v, lo_open=True, hi_open=True)
        check_number("SenseAmpConfig.offset_sigma_v", self.offset_sigma_v, lo=0)


@dataclass
class FeCAPModelConfig:
    """Everything the FeCAP model needs, one sub-config per concept."""

    cell: FeCAPConfig = field(default_factory=FeCAPConfig)
    switching: SwitchingConfig = field(default_factory=SwitchingConfig)
    wake_up: WakeUpConfig = field(default_factory=WakeUpConfig)
    fatigue: FatigueConfig = field(default_factory=FatigueConfig)
    sense: SenseAmpConfig = field(default_factory=SenseAmpConfig)


# --- stateless physics ---------------------------------------------------------------------------

def switched_fraction(v, t_s, cfg: SwitchingConfig) -> torch.Tensor:
    """Fraction of the polarization reversed by a pulse of amplitude v (V) and width t_s (s)."""
    v = torch.as_tensor(v, dtype=torch.float64)
    t = torch.as_tensor(t_s, dtype=torch.float64)
    ln_tau = math.log(cfg.tau_inf_s) + cfg.activation_v / v.clamp_min(1e-3)
    if cfg.model == "merz":
        return 1.0 - torch.exp(-t / torch.exp(ln_tau))
    z = (torch.log(t) - ln_tau) / cfg.sigma_ln_tau
    return 0.5 * (1.0 + torch.erf(z / _SQRT2))


def switching_energy_fj(v, t_s, cfg: FeCAPModelConfig) -> torch.Tensor:
    """Energy of one bit switch, E = 2Pr·S·V·f(V,t) = MW·(C_D+C_BL)·V (digest §1): ≈216 fJ at 3 V, 2 µs."""
    return cfg.cell.q_switch_fc * torch.as_tensor(v, dtype=torch.float64) * switched_fraction(v, t_s, cfg.switching)


def wake_factor(cycles: torch.Tensor, cfg: WakeUpConfig) -> torch.Tensor:
    """Switched charge relative to a woken cell after `cycles` bipolar cycles."""
    n = cycles.to(torch.float64)
    return 1.0 - (1.0 - cfg.pristine_fraction) * torch.exp(-n / cfg.tau_cycles)


def memory_window_v(cycles: torch.Tensor, q_factor: torch.Tensor, cfg: FeCAPModelConfig,
                    condition: str | None = None) -> torch.Tensor:
    """Per-cell memory window (V) from its cycle count and its own charge factor (deterministic core)."""
    return (cfg.cell.median_window_v * q_factor * wake_factor(cycles, cfg.wake_up)
            * cfg.fatigue.factor(cycles, condition))


def sense(v_bl: torch.Tensor, offset: torch.Tensor, cfg: SenseAmpConfig) -> torch.Tensor:
    """Clocked latch: 1 where the BL voltage exceeds Vref plus the latch offset."""
    return v_bl > cfg.vref_v + offset


# --- stateful array ------------------------------------------------------------------------------

class FeCAPArray:
    """`n` FeCAP cells: stored bit, cycle count and per-cell spread, plus operation counters.

    ``ops`` counts programming operations per cell (a write, or the read that tries to write 0);
    ``energy_fj`` accumulates the switching energy per cell; ``read_errors`` counts wrong reads.
    """

    def __init__(self, n: int, config: FeCAPModelConfig | None = None, generator: torch.Generator | None = None,
                 woken: bool = True):
        self.config = config or FeCAPModelConfig()
        self.n = int(n)
        g = generator
        c = self.config.cell
        # Device spread, fixed for life: switched charge (also seen by the TL) and read path.
        self.q_factor = torch.exp(c.pr_sigma_ln * torch.randn(self.n, generator=g, dtype=torch.float64))
        self.read_factor = torch.exp(c.read_path_sigma_ln * torch.randn(self.n, generator=g, dtype=torch.float64))
        self.v0 = c.v0 + c.v0_sigma_v * torch.randn(self.n, generator=g, dtype=torch.float64)
        self.bits = torch.zeros(self.n, dtype=torch.bool)
        self.cycles = torch.full((self.n,), float(self.config.wake_up.wake_cycles if woken else 0), dtype=torch.float64)
        self.ops = torch.zeros(self.n, dtype=torch.int64)
        self.energy_fj = torch.zeros(self.n, dtype=torch.float64)
        self.read_errors = torch.zeros(self.n, dtype=torch.int64)

    def _mask(self, mask) -> torch.Tensor:
        return torch.ones(self.n, dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool)

    def charge_factor(self) -> torch.Tensor:
        """Switched charge of each cell relative to 2Pr·S (spread × wake-up × fatigue)."""
        return (self.q_factor * wake_factor(self.cycles, self.config.wake_up)
                * self.config.fatigue.factor(self.cycles))

    def wake_up(self, mask=None, cycles: int | None = None) -> None:
        """Apply wake-up cycling (1,000 cycles by default): ages the cells, not counted in ``ops``."""
        m = self._mask(mask)
        n = self.config.wake_up.wake_cycles if cycles is None else int(cycles)
        self.cycles += m.double() * n

    def write(self, bits, mask=None, v: float | None = None, t_s: float | None = None) -> None:
        """Program bits (a "1" needs a switch; a "0" over a stored 1 switches back)."""
        c = self.config.cell
        m = self._mask(mask)
        bits = torch.as_tensor(bits, dtype=torch.bool).expand(self.n)
        v = c.v_read if v is None else v
        t = c.t_read_s if t_s is None else t_s
        flips = m & (bits != self.bits)
        frac = float(switched_fraction(v, t, self.config.switching))
        # A pulse that reverses less than half the domains leaves the old bit.
        self.bits = torch.where(flips & (frac >= 0.5), bits, self.bits)
        self.energy_fj += flips.double() * c.q_switch_fc * self.charge_factor() * v * frac
        self.ops += m.long()
        self.cycles += 0.5 * flips.double()  # one cycle = a switch there and one back

    def bitline_voltage(self, bits: torch.Tensor | None = None) -> torch.Tensor:
        """BL voltage a read would give now: V0 for a 0, V0 + MW for a 1 (per cell)."""
        bits = self.bits if bits is None else bits
        mw = memory_window_v(self.cycles, self.q_factor * self.read_factor, self.config)
        return self.v0 + bits.double() * mw

    def read(self, mask=None, generator: torch.Generator | None = None, restore: bool = True) -> torch.Tensor:
        """Destructive read: try to write 0, sense the BL, leave 0; with restore, rewrite the 1s."""
        m = self._mask(mask)
        offset = self.config.sense.offset_sigma_v * torch.randn(self.n, generator=generator, dtype=torch.float64)
        sensed = sense(self.bitline_voltage(), offset, self.config.sense)
        self.read_errors += (m & (sensed != self.bits)).long()
        self.write(torch.zeros(self.n, dtype=torch.bool), m)  # the read pulse itself writes 0
        if restore:
            self.write(sensed, m)  # rewrite what was read (a read error propagates)
        return torch.where(m, sensed, torch.zeros_like(sensed))
