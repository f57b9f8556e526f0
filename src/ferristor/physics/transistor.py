"""The access transistor of a 1T1R memristor cell: gate voltage → compliance current (digest §1, §3).

Sakurai–Newton alpha-power law, smoothed: I = K·(s·softplus((V_GS − V_th)/s))^α — the saturation
current above threshold (α = 2 long channel, → 1 velocity saturated) and an exponential tail below. During a transfer the gate is the floating transfer
line and the source sits on BL_mem = −0.9 V, so V_GS = V_TL + 0.9 V.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config_base import check_number, param


@dataclass
class AccessTransistorConfig:
    vth_v: float = param(1.5562, unit="V", source="[I] fitted to the Fig. 4 level means (digest §3)",
                         doc="effective threshold (thick-oxide device, body effect included)")
    k_ua_per_v2: float = param(120.0, unit="µA/V^α", source="[I]", doc="current factor K of I = K·(V_GS − V_th)^α (the name's v2 is "
                                                                               "the square law's, α = 2): ≈110 µA at the top transfer level")
    alpha: float = param(0.8662, unit="1", source="[I] fitted", doc="alpha-power exponent (1 = velocity saturated, 2 = square law)")
    smoothing_v: float = param(0.0474, unit="V", source="[I] fitted", doc="width of the sub-threshold tail")
    v_source: float = param(-0.9, unit="V", source="digest §3 [P]", doc="BL_mem bias during the transfer SET")

    def __post_init__(self):
        check_number("AccessTransistorConfig.vth_v", self.vth_v, lo=-1.0, hi=5.0)
        check_number("AccessTransistorConfig.k_ua_per_v2", self.k_ua_per_v2, lo=0, lo_open=True)
        check_number("AccessTransistorConfig.alpha", self.alpha, lo=0.5, hi=2.5)
        check_number("AccessTransistorConfig.smoothing_v", self.smoothing_v, lo=0, lo_open=True)
        check_number("AccessTransistorConfig.v_source", self.v_source, lo=-5.0, hi=5.0)


def saturation_current_ua(v_gs, vth, k, s, alpha=2.0) -> torch.Tensor:
    """Compliance current (µA) of the access transistor; arguments may be tensors (for calibration)."""
    x = torch.as_tensor(v_gs, dtype=torch.float64)
    return k * (s * torch.nn.functional.softplus((x - vth) / s)) ** alpha


def compliance_current_ua(v_gate, cfg: AccessTransistorConfig) -> torch.Tensor:
    """Compliance current set by a gate voltage v_gate (V) with the source at ``cfg.v_source``."""
    v_gs = torch.as_tensor(v_gate, dtype=torch.float64) - cfg.v_source
    return saturation_current_ua(v_gs, cfg.vth_v, cfg.k_ua_per_v2, cfg.smoothing_v, cfg.alpha)
