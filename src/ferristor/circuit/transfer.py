"""Transfer models: what analogue value a memristor pair ends up holding for a given level.

A transfer writes sign + 3 MSBs of the hidden weight (a signed level −7…+7; the sign is kept even
at level 0) into the G+/G− pair. Models return the programmed weight in *level units* (0…7 scale,
signed); the engine multiplies by the real size of one level. Every model shares one interface,
``program(sign, magnitude, noise) -> Tensor``, so the engine can swap a fast table for the
physical charge-sharing chain (``ferristor.circuit.charge_transfer``) without knowing which it runs.
``noise`` says where the draws come from: the engine's counter-based streams (:class:`CounterNoise`)
or explicit generators (:class:`GeneratorNoise`, for device-level studies).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from ..backend import numba_available
from ..config_base import FLOAT32_SCALE, check_choice, check_number, param
from ..errors import ConfigError
from .charge_transfer import ChargeTransferConfig

# Mean conductances of the 8 measured magnitude levels, expressed in weight units 0…7:
# (G − G_0)/(G_7 − G_0)·7 with G = 1.4, 11.9, 36.5, 58.3, 73.9, 85.5, 95.9, 103.9 µS (digest §3 [D]).
LEVEL_MEANS = ("ideal", "measured")  # the level-mean models TransferConfig.level_means takes
MEASURED_LEVEL_MEANS = (0.0, 0.717, 2.397, 3.886, 4.951, 5.743, 6.454, 7.0)


class NoiseSource(Protocol):
    """Where the random draws of one transfer come from; every replica (chip) has its own."""

    def normals(self, shape: Sequence[int], device) -> torch.Tensor:
        """Standard normals, float32, shape (R, ...)."""

    def generators(self, device) -> list[torch.Generator]:
        """One ``torch.Generator`` per replica, for models that draw many kinds of numbers."""


class TransferModel(Protocol):
    def program(self, sign: torch.Tensor, magnitude: torch.Tensor, noise: NoiseSource | None = None) -> torch.Tensor:
        """Sign (R, ...) ±1 and magnitude levels (R, ...) 0…7 → programmed weights (R, ...) float32
        in level units. Replica r's draws come from ``noise`` for replica r only.

    A model may also fuse the whole transfer of a crossbar (split, program, scale) into one kernel:
    ``program_hidden_cpu_(hidden, shift, level_step, noise, out)`` on numpy (R, I, O) arrays and
    ``program_hidden_triton_`` (the same on CUDA tensors), each equal to :meth:`program` bit for bit
    (``fused_transfer``), and ``bind_hidden_cpu(hidden, shift, level_step, keys, out)``: the CPU one
    with its arguments prepared once, a callable of the transfer counter."""


def fused_transfer(model) -> bool:
    """Whether ``model`` has the fused transfer kernels (:class:`TransferModel`)."""
    return hasattr(type(model), "program_hidden_cpu_")


class CounterNoise:
    """The engine's noise: counter-based draws keyed by (seed, parameter, transfer stream) per
    replica, with the transfer's number as the counter — a pure function of the chip's history,
    so a resumed run redraws exactly what it would have, on any device.

    Normals of an (R, I, ...) array take row i and, as column, the flat index of the rest."""

    def __init__(self, keys: np.ndarray, index: int, on_device: torch.Tensor | None = None):
        """``on_device``: a one-element int64 device tensor whose value is added to ``index`` — the
        counter of a transfer inside a CUDA graph (only the fused GPU transfer reads it)."""
        self.keys, self.index = np.ascontiguousarray(keys, dtype=np.uint32), int(index)
        self.on_device = on_device

    def normals(self, shape: Sequence[int], device) -> torch.Tensor:
        if self.on_device is not None:
            raise ValueError("a counter on the device is read by the fused GPU transfer only")
        shape = tuple(shape)
        rows, cols = (shape[1] if len(shape) > 1 else 1), math.prod(shape[2:])
        device = torch.device(device)
        if device.type == "cpu" and numba_available():
            from ..rule.random_cpu import normals
            out = torch.from_numpy(normals(self.keys, np.arange(rows, dtype=np.int64), cols, self.index))
        else:
            from ..rule.random_torch import normals
            keys = torch.from_numpy(self.keys.astype(np.int64)).to(device)
            out = normals(keys, torch.arange(rows, dtype=torch.int64, device=device), cols, self.index)
        return out.to(device).view(shape)

    def generators(self, device) -> list[torch.Generator]:
        """Generators seeded from (key, transfer number): the circuit model's many draws."""
        from ..rule.streams import derive_seed
        return [torch.Generator(device=device).manual_seed(derive_seed((k0, k1), f"transfer {self.index}"))
                for k0, k1 in self.keys.tolist()]


class GeneratorNoise:
    """Draws from explicit ``torch.Generator`` objects, one per replica (device-level studies)."""

    def __init__(self, generators: Sequence[torch.Generator]):
        self._generators = list(generators)

    def normals(self, shape: Sequence[int], device) -> torch.Tensor:
        if len(self._generators) != shape[0]:
            raise ValueError(f"{len(self._generators)} generators for {shape[0]} replicas")
        out = torch.empty(tuple(shape), dtype=torch.float32, device=device)
        for r, g in enumerate(self._generators):
            torch.randn(tuple(shape[1:]), generator=g, out=out[r])
        return out

    def generators(self, device) -> list[torch.Generator]:
        return self._generators


def counter_noise(noise):
    """``noise`` if the fused transfers can draw it (counter-based), else a clear refusal."""
    if not isinstance(noise, CounterNoise):
        raise ValueError("the fused transfer draws counter-based noise: pass a CounterNoise")
    return noise


def split_sign(hidden: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign (+1/−1, +1 for 0) and truncated magnitude level of hidden integers (digest §4 step 4)."""
    sign = 1.0 - 2.0 * (hidden < 0).to(torch.float32)
    magnitude = torch.bitwise_right_shift(hidden.abs().to(torch.int32), shift)
    return sign, magnitude


def check_level_model(prefix: str, sigma_levels, level_means) -> None:
    """The transferred levels' settings, as every config that carries them checks them (``prefix``:
    how that config names its fields, 'TransferConfig.' or '' for a head's own)."""
    check_number(f"{prefix}sigma_levels", sigma_levels, lo=0, hi=FLOAT32_SCALE[1])
    check_choice(f"{prefix}level_means", level_means, LEVEL_MEANS)


@dataclass
class TransferConfig:
    """How the transferred analogue value relates to the ideal level."""

    model: str = param("ideal", source="[I]", doc="'ideal' (HM w/o Var), 'table' (Gaussian around level means, HM w/ Var) or 'circuit' (charge-sharing chain)")
    sigma_levels: float = param(0.594, unit="level", source="digest §3 [P]: σ_G = 8.7 µS = 0.594 of one weight step", doc="std of a transferred weight around its level mean")
    level_means: str = param("ideal", source="digest §4 [I]", doc="'ideal' (0…7 integers) or 'measured' (the compressive measured means)")
    sign_guard: str = param("clip", source="[I]", doc="a noisy draw never crosses zero: 'clip' sets it to 0 (the unselected device stays in LCS), 'fold' mirrors it")
    circuit: ChargeTransferConfig = param(ChargeTransferConfig(), source="digest §3 [P] and the Fig. 4 calibration [I] (the martemucci2025 preset)",
                                          doc="the device chain model 'circuit' runs (FeCAP cells, transfer line, access transistor, memristor), e.g. transfer.circuit.memristor.curve.sigma_c2c")
    circuit_sampler: str = param("chain", source="[I]", doc="how model 'circuit' draws a transfer: 'chain' runs the device chain for every weight (~60 draws a weight), 'quantiles' draws from the chain's per-level distribution, tabulated once (exact in distribution up to the table's Monte-Carlo error; one draw a weight, ~10× faster a transfer)")
    circuit_table_draws: int = param(65536, unit="draw", source="[I]", doc="chain runs per level behind the 'quantiles' table (its Monte-Carlo error ∝ 1/√draws)")

    def __post_init__(self):
        check_choice("TransferConfig.model", self.model, ("ideal", "table", "circuit"))
        if not isinstance(self.circuit, ChargeTransferConfig):
            raise ConfigError("TransferConfig.circuit", type(self.circuit).__name__,
                              "a ChargeTransferConfig (ferristor.circuit.charge_transfer): its preset with changes, "
                              "e.g. dataclasses.replace(ChargeTransferConfig(), line=…), or a dict of settings "
                              "through ferristor.sweeps.configs.build(d, ChargeTransferConfig)")
        check_choice("TransferConfig.circuit_sampler", self.circuit_sampler, ("chain", "quantiles"))
        check_number("TransferConfig.circuit_table_draws", self.circuit_table_draws, lo=2, hi=2**22, integer=True)
        check_level_model("TransferConfig.", self.sigma_levels, self.level_means)
        check_choice("TransferConfig.sign_guard", self.sign_guard, ("clip", "fold"))


# The transfer settings each transfer model ignores: the ideal one draws no noise; the circuit one runs
# the device chain of transfer.circuit (circuit.charge_transfer), not the table; only it reads that chain.
_CIRCUIT = ("circuit", "circuit_sampler", "circuit_table_draws")
IGNORED_BY_MODEL = {"ideal": ("sigma_levels", "sign_guard") + _CIRCUIT, "table": _CIRCUIT,
                    "circuit": ("sigma_levels", "level_means", "sign_guard")}


def used_settings(config: TransferConfig) -> dict:
    """The settings the config's transfer model reads, as a dict (what a layer's state tags)."""
    d = dataclasses.asdict(config)
    return {k: v for k, v in d.items() if k not in IGNORED_BY_MODEL[config.model]}


def level_mean_table(kind: str, max_level: int = 7) -> torch.Tensor:
    if kind == "measured":
        if max_level != len(MEASURED_LEVEL_MEANS) - 1:
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

    def program(self, sign: torch.Tensor, magnitude: torch.Tensor, noise: NoiseSource | None = None) -> torch.Tensor:
        """Sign (R, ...) ±1 and magnitude levels (R, ...) → programmed weights in level units."""
        if self.ideal_means:
            value = magnitude.to(torch.float32)
        else:
            value = self._means_on(magnitude.device)[magnitude.long()]
        if self.sigma > 0:
            if noise is None:
                raise ValueError("a noisy transfer needs a noise source (one stream per replica)")
            value.add_(noise.normals(value.shape, value.device).mul_(self.sigma))
            value.clamp_min_(0.0) if self.config.sign_guard == "clip" else value.abs_()
        return value.mul_(sign)

    def _means_on(self, device) -> torch.Tensor:
        """The means on ``device``, copied there once (a copy per transfer could not be graph-captured)."""
        cached = getattr(self, "_means_device", None)
        if cached is None or cached.device != torch.device(device):
            cached = self._means_device = self.means.to(device)
        return cached

    def program_hidden_triton_(self, hidden: torch.Tensor, shift: int, level_step: float, noise: CounterNoise | None,
                               out: torch.Tensor) -> None:
        """:meth:`program_hidden_cpu_` on a CUDA device, one Triton launch (``transfer_triton``)."""
        from ..rule.functional import keys_on
        from .transfer_triton import table_transfer_
        noisy = self.sigma > 0
        noise = counter_noise(noise) if noisy else None
        table_transfer_(hidden, out, shift=shift, means=self._means_on(hidden.device), ideal=self.ideal_means,
                        sigma=self.sigma, fold=self.config.sign_guard == "fold", level_step=level_step,
                        keys=keys_on(noise.keys, hidden.device) if noisy else None, index=noise.index if noisy else 0,
                        index_tensor=noise.on_device if noisy else None)

    def program_hidden_cpu_(self, hidden: np.ndarray, shift: int, level_step: float, noise: CounterNoise | None,
                            out: np.ndarray) -> None:
        """:meth:`program` of ``split_sign(hidden, shift)`` times ``level_step``, fused into ``out``
        (CPU, numba, (R, I, O) arrays): the same draws and the same float32 arithmetic, bit for bit."""
        noisy = self.sigma > 0
        noise = counter_noise(noise) if noisy else None
        self.bind_hidden_cpu(hidden, shift, level_step, noise.keys if noisy else None, out)(noise.index if noisy else 0)

    def bind_hidden_cpu(self, hidden: np.ndarray, shift: int, level_step: float, keys: np.ndarray | None,
                        out: np.ndarray):
        """:meth:`program_hidden_cpu_` of fixed arrays and noise keys (R, 2) (None without noise),
        ready to run at any transfer counter: a callable ``(index) -> None``."""
        from .transfer_cpu import bind_table_transfer
        return bind_table_transfer(hidden, shift, self.means.numpy(), keys if self.sigma > 0 else None, self.sigma,
                                   self.config.sign_guard == "fold", level_step, out)


def make_transfer(config: TransferConfig, max_level: int = 7):
    """The transfer model a config names."""
    if config.model == "circuit":
        from .charge_transfer import CircuitTransfer, QuantileCircuitTransfer
        chosen = QuantileCircuitTransfer if config.circuit_sampler == "quantiles" else CircuitTransfer
        model = chosen.from_config(config, max_level)
        _warn_if_broken(config.circuit, max_level)
        return model
    return TableTransfer(config, max_level)


_CHECKED: dict[str, str | None] = {}  # chain config as JSON → its problem: checked once per process


def _warn_if_broken(circuit, max_level: int) -> None:
    import json
    import warnings

    from ..errors import FerristorWarning
    from .charge_transfer import chain_problem
    from .layout import PAPER_LAYOUT
    if max_level != PAPER_LAYOUT.max_level:
        return  # the chain models the paper's 3-bit layout only (CircuitTransfer refuses others)
    key = json.dumps(dataclasses.asdict(circuit), sort_keys=True, default=str)
    if key not in _CHECKED:
        _CHECKED[key] = chain_problem(circuit)
        if _CHECKED[key]:
            warnings.warn(_CHECKED[key], FerristorWarning, stacklevel=3)
