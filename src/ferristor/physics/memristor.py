"""Filamentary memristor (1T1R) model, vectorised over devices (digest §1).

Life of a device: pristine → formed by adaptive 6 V / 300 µs pulses until R < 50 kΩ → cycles of
RESET (low-conductance state, LCS) and SET. A SET's conductance is fixed by the compliance current
Icc through a monotonic, saturating curve G_set(Icc) = G_max·u/(1+u), u = (Icc/I_knee)^n, on top
of the LCS the preceding RESET left, scaled by a device factor (device-to-device spread, drawn once)
and a cycle factor (cycle-to-cycle spread, drawn every SET). With cycling the HCS/LCS window closes
towards a middle conductance, w(n) = 1/(1 + (n/N_close)^γ). Reads at 0.4 V add read noise; drift
(G·(1 + t/t0)^−ν) is off by default.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config_base import check_increasing, check_number, param
from ..errors import FerristorError


class DeviceStateError(FerristorError, RuntimeError):
    """An operation was asked of a device in a state that does not allow it."""


@dataclass
class FormingConfig:
    v_form: float = param(6.0, unit="V", source="digest §1 [P]")
    t_form_s: float = param(300e-6, unit="s", source="digest §1 [P]")
    target_kohm: float = param(50.0, unit="kΩ", source="digest §1 [P]", doc="forming stops once R falls below this")
    g_pristine_us: float = param(0.01, unit="µS", source="[I]", doc="conductance of a pristine device")
    p_form: float = param(0.5, unit="1", source="[I]", doc="chance that one pulse creates the filament")
    g_formed_us: float = param(35.0, unit="µS", source="[I]", doc="median conductance right after a successful pulse")
    g_formed_sigma_ln: float = param(0.4, unit="ln", source="[I]")
    max_pulses: int = param(50, unit="pulse", source="[I]", doc="the adaptive loop gives up after this many")

    def __post_init__(self):
        for name in ("v_form", "t_form_s", "target_kohm", "g_pristine_us", "g_formed_us"):
            check_number(f"FormingConfig.{name}", getattr(self, name), lo=0, lo_open=True)
        check_number("FormingConfig.p_form", self.p_form, lo=0, hi=1, lo_open=True)
        check_number("FormingConfig.g_formed_sigma_ln", self.g_formed_sigma_ln, lo=0)
        check_number("FormingConfig.max_pulses", self.max_pulses, lo=1, integer=True)

    @property
    def target_us(self) -> float:
        return 1e3 / self.target_kohm


@dataclass
class SwitchingCurveConfig:
    """RESET distribution and the G(Icc) curve of a SET."""

    lcs_median_us: float = param(0.8, unit="µS", source="[I]", doc="median LCS after RESET (level 0 of Fig. 4 is 1.4 µS, digest §3)")
    lcs_sigma_ln: float = param(0.4, unit="ln", source="[I]")
    g_max_us: float = param(206.52, unit="µS", source="[I] fitted to the Fig. 4 level means (digest §3)", doc="saturation of G_set(Icc)")
    i_knee_ua: float = param(113.6, unit="µA", source="[I] fitted", doc="compliance current at half saturation")
    hill_n: float = param(1.0, unit="1", source="[I]", doc="steepness of G_set(Icc); 1 = G ∝ Icc at low current, saturating")
    sigma_d2d: float = param(0.0813, unit="1", source="[I] fitted: d2d = c2c, total pooled σ_G = 8.7 µS (digest §3)", doc="relative device-to-device spread of G_set")
    sigma_c2c: float = param(0.0813, unit="1", source="[I] fitted", doc="relative cycle-to-cycle spread of G_set")
    level_icc_ua: tuple = param((0.0, 6.0, 12.0, 19.0, 27.0, 36.0, 46.0, 58.0), unit="µA", source="[I] chosen for ≈10 µS steps",
                                doc="compliance currents of the programmable levels, one a level (Fig. 2g: 8, 0–80 µS); any "
                                    "count ≥ 2 (`ferristor device memristor-levels` draws them all; training does not read them)")

    def __post_init__(self):
        for name in ("lcs_median_us", "g_max_us", "i_knee_ua", "hill_n"):
            check_number(f"SwitchingCurveConfig.{name}", getattr(self, name), lo=0, lo_open=True)
        for name in ("lcs_sigma_ln", "sigma_d2d", "sigma_c2c"):
            check_number(f"SwitchingCurveConfig.{name}", getattr(self, name), lo=0, hi=1)
        self.level_icc_ua = check_increasing("SwitchingCurveConfig.level_icc_ua", self.level_icc_ua, lo=0)


@dataclass
class EnduranceConfig:
    n_close: float = param(1e5, unit="cycle", source="digest §1 [P]", doc="SET/RESET cycles at which the window has half closed")
    gamma: float = param(2.0, unit="1", source="[I]", doc="abruptness of the closing")
    g_mid_us: float = param(15.0, unit="µS", source="[I]", doc="conductance both states converge to")

    def __post_init__(self):
        check_number("EnduranceConfig.n_close", self.n_close, lo=0, lo_open=True)
        check_number("EnduranceConfig.gamma", self.gamma, lo=0, lo_open=True)
        check_number("EnduranceConfig.g_mid_us", self.g_mid_us, lo=0)


@dataclass
class MemristorReadConfig:
    v_read: float = param(0.4, unit="V", source="digest §1 [P]")
    sigma_rel: float = param(0.01, unit="1", source="[I]", doc="relative read noise (not given by the paper)")
    drift_nu: float = param(0.0, unit="1", source="[I]", doc="drift exponent; 0 = off ('month-long' stability, digest §1)")
    drift_t0_s: float = param(1.0, unit="s", source="[I]")

    def __post_init__(self):
        check_number("MemristorReadConfig.v_read", self.v_read, lo=0, lo_open=True)
        check_number("MemristorReadConfig.sigma_rel", self.sigma_rel, lo=0)
        check_number("MemristorReadConfig.drift_nu", self.drift_nu, lo=0, hi=1)
        check_number("MemristorReadConfig.drift_t0_s", self.drift_t0_s, lo=0, lo_open=True)


@dataclass
class MemristorConfig:
    forming: FormingConfig = field(default_factory=FormingConfig)
    curve: SwitchingCurveConfig = field(default_factory=SwitchingCurveConfig)
    endurance: EnduranceConfig = field(default_factory=EnduranceConfig)
    read: MemristorReadConfig = field(default_factory=MemristorReadConfig)


# --- stateless physics ---------------------------------------------------------------------------

def g_set_curve(icc_ua, g_max, i_knee, n) -> torch.Tensor:
    """Conductance added by a SET at compliance current icc_ua (µA), before spread. Monotonic."""
    u = (torch.as_tensor(icc_ua, dtype=torch.float64).clamp_min(0.0) / i_knee) ** n
    return g_max * u / (1.0 + u)


def window_factor(cycles: torch.Tensor, cfg: EnduranceConfig) -> torch.Tensor:
    return 1.0 / (1.0 + (cycles.to(torch.float64) / cfg.n_close) ** cfg.gamma)


def set_conductance(g_lcs, icc_ua, d2d, c2c, cycles, cfg: MemristorConfig) -> torch.Tensor:
    """Deterministic core of a SET: LCS + spread-scaled G_set(Icc), window closed by cycling."""
    c = cfg.curve
    g_set = g_set_curve(icc_ua, c.g_max_us, c.i_knee_ua, c.hill_n) * (1.0 + c.sigma_d2d * d2d + c.sigma_c2c * c2c).clamp_min(0.0)
    w = window_factor(cycles, cfg.endurance)
    g_hcs = g_lcs + g_set
    return cfg.endurance.g_mid_us + (g_hcs - cfg.endurance.g_mid_us) * w


def reset_conductance(lcs_noise, cycles, cfg: MemristorConfig) -> torch.Tensor:
    """Deterministic core of a RESET: log-normal LCS drifting up to g_mid as the window closes."""
    g = cfg.curve.lcs_median_us * torch.exp(cfg.curve.lcs_sigma_ln * lcs_noise)
    w = window_factor(cycles, cfg.endurance)
    return cfg.endurance.g_mid_us + (g - cfg.endurance.g_mid_us) * w


# --- stateful array ------------------------------------------------------------------------------

class MemristorArray:
    """`n` 1T1R devices. ``g_us``: conductance; ``formed``; ``ops`` (forming pulses excluded),
    ``forming_pulses``, ``cycles`` (= SET/RESET pairs); ``reset_done`` guards SET-after-RESET."""

    def __init__(self, n: int, config: MemristorConfig | None = None, generator: torch.Generator | None = None):
        self.config = config or MemristorConfig()
        self.n = int(n)
        self.d2d = torch.randn(self.n, generator=generator, dtype=torch.float64)  # device factor, for life
        self.g_us = torch.full((self.n,), self.config.forming.g_pristine_us, dtype=torch.float64)
        self.formed = torch.zeros(self.n, dtype=torch.bool)
        self.reset_done = torch.zeros(self.n, dtype=torch.bool)
        self.ops = torch.zeros(self.n, dtype=torch.int64)
        self.forming_pulses = torch.zeros(self.n, dtype=torch.int64)
        self.cycles = torch.zeros(self.n, dtype=torch.float64)
        self.age_s = torch.zeros(self.n, dtype=torch.float64)

    def _mask(self, mask) -> torch.Tensor:
        return torch.ones(self.n, dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool)

    def _require_formed(self, m: torch.Tensor, what: str) -> None:
        if bool((m & ~self.formed).any()):
            bad = torch.nonzero(m & ~self.formed).flatten()[:5].tolist()
            raise DeviceStateError(f"{what} needs formed memristors; devices {bad} are still pristine")

    def form(self, mask=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Adaptive forming: pulse the selected pristine devices until G ≥ 1/50 kΩ. Returns pulses used."""
        f = self.config.forming
        todo = self._mask(mask) & ~self.formed
        used = torch.zeros(self.n, dtype=torch.int64)
        for _ in range(f.max_pulses):
            if not bool(todo.any()):
                break
            hit = torch.rand(self.n, generator=generator, dtype=torch.float64) < f.p_form
            g_new = f.g_formed_us * torch.exp(f.g_formed_sigma_ln * torch.randn(self.n, generator=generator, dtype=torch.float64))
            self.g_us = torch.where(todo & hit, torch.maximum(self.g_us, g_new), self.g_us)
            used += todo.long()
            todo = todo & (self.g_us < f.target_us)
        self.forming_pulses += used
        self.formed |= self._mask(mask) & (self.g_us >= f.target_us)
        return used

    def reset(self, mask=None, generator: torch.Generator | None = None) -> None:
        m = self._mask(mask)
        self._require_formed(m, "RESET")
        noise = torch.randn(self.n, generator=generator, dtype=torch.float64)
        self.g_us = torch.where(m, reset_conductance(noise, self.cycles, self.config), self.g_us)
        self.reset_done |= m
        self.ops += m.long()
        self.age_s = torch.where(m, 0.0, self.age_s)

    def set(self, icc_ua, mask=None, generator: torch.Generator | None = None) -> None:
        """SET with compliance current(s) icc_ua; every SET must follow a RESET (digest §1)."""
        m = self._mask(mask)
        self._require_formed(m, "SET")
        if bool((m & ~self.reset_done).any()):
            raise DeviceStateError("SET must be preceded by a RESET (digest §1): RESET the devices first")
        c2c = torch.randn(self.n, generator=generator, dtype=torch.float64)
        icc = torch.as_tensor(icc_ua, dtype=torch.float64).expand(self.n)
        g = set_conductance(self.g_us, icc, self.d2d, c2c, self.cycles, self.config)
        self.g_us = torch.where(m, g, self.g_us)
        self.reset_done &= ~m
        self.ops += m.long()
        self.cycles += m.double()  # a RESET + SET pair is one cycle
        self.age_s = torch.where(m, 0.0, self.age_s)

    def program_level(self, level, mask=None, generator: torch.Generator | None = None) -> None:
        """RESET then SET at the compliance current of one of the programmable levels (Fig. 2g):
        ``level`` (per device, or one for all) indexes ``curve.level_icc_ua``."""
        table = torch.tensor(self.config.curve.level_icc_ua, dtype=torch.float64)
        level = torch.as_tensor(level).long()
        if level.numel() and not (0 <= int(level.min()) and int(level.max()) < len(table)):
            from ..errors import ConfigError
            bad = int(level.min()) if int(level.min()) < 0 else int(level.max())
            raise ConfigError("level", bad, f"a level in 0…{len(table) - 1} (SwitchingCurveConfig.level_icc_ua holds "
                                            f"{len(table)} compliance currents)")
        icc = table[level]
        self.reset(mask, generator)
        self.set(icc, mask, generator)

    def wait(self, seconds: float) -> None:
        self.age_s += float(seconds)

    def read(self, mask=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Conductance (µS) sensed at 0.4 V: drifted value times (1 + read noise). Not destructive."""
        r = self.config.read
        m = self._mask(mask)
        g = self.g_us * (1.0 + self.age_s / r.drift_t0_s) ** (-r.drift_nu)
        g = g * (1.0 + r.sigma_rel * torch.randn(self.n, generator=generator, dtype=torch.float64))
        return torch.where(m, g.clamp_min(0.0), torch.zeros_like(g))

    def read_current_ua(self, mask=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Read current (µA) at the 0.4 V read voltage: G (µS) × V."""
        return self.read(mask, generator) * self.config.read.v_read
