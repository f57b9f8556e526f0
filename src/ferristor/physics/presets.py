"""Presets: subclasses that only pin defaults, each citing where its numbers come from."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..circuit.charge_transfer import ChargeTransferConfig
from .memristor import MemristorConfig, SwitchingCurveConfig
from .transistor import AccessTransistorConfig


@dataclass
class Martemucci2025(ChargeTransferConfig):
    """The hybrid FeCAP–memristor array of M. Martemucci et al., "A ferroelectric–memristor memory
    for both training and inference", Nature Electronics 8, 921–933 (2025), doi:10.1038/s41928-025-01454-7.

    Given by the paper (digest §1–3): stack geometry, 2Pr, C_D, C_BL, pulse amplitudes, BL_mem bias,
    the 8 measured level means and the pooled σ_G = 8.7 µS. Fitted here with
    :func:`ferristor.circuit.charge_transfer.calibrate` (seed 2025, 10,000 draws per level): the
    access-transistor threshold, tail and exponent, G_max and I_knee of G(Icc), the SET spread.
    """

    transistor: AccessTransistorConfig = field(default_factory=lambda: AccessTransistorConfig(
        vth_v=1.5562, k_ua_per_v2=120.0, alpha=0.8662, smoothing_v=0.0474, v_source=-0.9))
    memristor: MemristorConfig = field(default_factory=lambda: MemristorConfig(curve=SwitchingCurveConfig(
        lcs_median_us=0.8, lcs_sigma_ln=0.4, g_max_us=206.52, i_knee_ua=113.6, hill_n=1.0,
        sigma_d2d=0.0813, sigma_c2c=0.0813)))
    # reference_means_us: the parent's default, the paper's eight measured means (digest §3), with its unit and source


def martemucci2025() -> Martemucci2025:
    return Martemucci2025()


PRESETS = {"martemucci2025": martemucci2025}
