"""Transfer models: what analogue value a memristor pair ends up holding for a given level.

A transfer writes sign + 3 MSBs of the hidden weight (a signed level −7…+7; the sign is kept even
at level 0) into the G+/G− pair. Models return the programmed weight in *level units* (0…7 scale,
signed); the engine multiplies by the real size of one level. Every model shares one interface,
``program(levels, signs, generators) -> Tensor``, so the engine can swap a fast table for the
physical charge-sharing chain (``ferristor.circuit.charge_transfer``) without knowing which it runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

from ..config_base import check_choice, check_number, param

# Mean conductances of the 8 measured magnitude levels, expressed in weight units 0…7:
# (G − G_0)/(G_7 − G_0)·7 with G = 1.4, 11.9, 36.5, 58.3, 73.9, 85.5, 95.9, 103.9 µS (digest §3 [D]).
MEASURED_LEVEL_MEANS = (0.0, 0.717, 2.397, 3.886, 4.951, 5.743, 6.454, 7.0)


class TransferModel(Protocol):
    def program(self, sign: torch.Tensor, magnitude: torch.Tensor,
                generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Sign (R, ...) ±1 and magnitude levels (R, ...) 0…7 → programmed weights (R, ...) float32
        in level units. ``generators`` holds one ``torch.Generator`` per replica (chip) for the
        random draws; a model must draw replica r's noise from ``generators[r]`` only."""


def split_sign(hidden: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign (+1/−1, +1 for 0) and truncated magnitude level of hidden integers (digest §4 step 4)."""
    sign = 1.0 - 2.0 * (hidden < 0).to(torch.float32)
    magnitude = torch.bitwise_right_shift(hidden.abs(), shift)
    return sign, magnitude


@dataclass
class TransferConfig:
    """How the transferred analogue value relates to the ideal level."""

    model: str = param("ideal", source="[I]", doc="'ideal' (HM w/o Var), 'table' (Gaussian around level means, HM w/ Var) or 'circuit' (charge-sharing chain)")
    sigma_levels: float = param(0.594, unit="level", source="digest §3 [P]: σ_G = 8.7 µS = 0.594 of one weight step", doc="std of a transferred weight around its level mean")
    level_means: str = param("ideal", source="digest §4 [I]", doc="'ideal' (0…7 integers) or 'measured' (the compressive measured means)")
    sign_guard: str = param("clip", source="[I]", doc="a noisy draw never crosses zero: 'clip' sets it to 0 (the unselected device stays in LCS), 'fold' mirrors it")

    def __post_init__(self):
        check_choice("TransferConfig.model", self.model, ("ideal", "table", "circuit"))
        check_number("TransferConfig.sigma_levels", self.sigma_levels, lo=0)
        check_choice("TransferConfig.level_means", self.level_means, ("ideal", "measured"))
        check_choice("TransferConfig.sign_guard", self.sign_guard, ("clip", "fold"))


def level_mean_table(kind: str, max_level: int = 7) -> torch.Tensor:
    if kind == "measured":
        if max_level != len(MEASURED_LEVEL_MEANS) - 1:
            from ..errors import ConfigError
            raise ConfigError("TransferConfig.level_means", kind, "'ideal' when the analogue levels are not 3 bits")
        return torch.tensor(MEASURED_LEVEL_MEANS, dtype=torch.float32)
    return torch.arange(max_level + 1, dtype=torch.float32)


class TableTransfer:
    """Level means from a table plus a Gaussian spread; σ = 0 gives the ideal transfer."""

    def __init__(self, config: TransferConfig, max_level: int = 7):
        self.config = config
        self.means = level_mean_table(config.level_means, max_level)
        self.ideal_means = config.level_means == "ideal"
        self.sigma = config.sigma_levels if config.model == "table" else 0.0

    def program(self, sign: torch.Tensor, magnitude: torch.Tensor,
                generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Sign (R, ...) ±1 and magnitude levels (R, ...) → programmed weights in level units."""
        if self.ideal_means:
            value = magnitude.to(torch.float32)
        else:
            value = self.means.to(magnitude.device)[magnitude.long()]
        if self.sigma > 0:
            value.add_(self.draw_noise(value, generators).mul_(self.sigma))
            value.clamp_min_(0.0) if self.config.sign_guard == "clip" else value.abs_()
        return value.mul_(sign)

    def draw_noise(self, like: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        """Unit Gaussians shaped like ``like`` (R, ...); replica r draws from ``generators[r]`` only."""
        if generators is None or len(generators) != like.shape[0]:
            raise ValueError("a noisy transfer needs one generator per replica")
        noise = torch.empty(like.shape, dtype=torch.float32, device=like.device)
        for r, g in enumerate(generators):
            torch.randn(like.shape[1:], generator=g, out=noise[r])
        return noise

    def program_hidden_cpu_(self, hidden: torch.Tensor, shift: int, level_step: float,
                            generators: Sequence[torch.Generator] | None, out: torch.Tensor) -> None:
        """:meth:`program` of ``split_sign(hidden, shift)`` times ``level_step``, fused into ``out``
        (CPU, numba): the same draws and the same float32 arithmetic, bit for bit."""
        from .transfer_cpu import table_transfer_
        noise = self.draw_noise(hidden, generators).numpy() if self.sigma > 0 else None
        table_transfer_(hidden.numpy(), shift, self.means.numpy(), noise, self.sigma,
                        self.config.sign_guard == "fold", level_step, out.numpy())


def make_transfer(config: TransferConfig, max_level: int = 7):
    """The transfer model a config names."""
    if config.model == "circuit":
        from .charge_transfer import CircuitTransfer  # device-level chain, heavier import
        return CircuitTransfer.from_config(config, max_level)
    return TableTransfer(config, max_level)
