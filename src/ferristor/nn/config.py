"""What a hybrid layer is made of: storage mode, the hidden grid's real scale, transfer and ledger."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..circuit.layout import PAPER_LAYOUT, SynapseLayout
from ..circuit.ledger import LedgerConfig
from ..circuit.transfer import TransferConfig
from ..config_base import FLOAT32_SCALE, check_choice, check_number, param
from ..errors import ConfigError
from ..rule.config import INIT_SHAPES
from ..rule.schemes import SchemeConfig

MODES = ("fp", "hm", "hm-var")


@dataclass
class HybridConfig:
    """The physical configuration of a hybrid layer (``HybridLinear``, ``HybridConv2d``).

    ``transfer=None`` picks the paper's model for the mode: ideal for ``hm`` (HM w/o Var), the
    measured-σ table for ``hm-var`` (HM w/ Var, digest §4)."""

    mode: str = param("hm-var", source="digest §4 [P]", doc="'fp' (float32 weights, the same masked rule), 'hm' (ideal transfer) or 'hm-var' (transfer with variability)")
    hidden_lsb: float = param(2.0 ** -9, unit="weight", source="[I]", doc="real value of one hidden LSB; 2^-9 puts the 10-bit hidden weight in (−1, 1)")
    init_scale: float = param(0.5, unit="1", source="[I]; chosen on 1-epoch MNIST runs, see RESULTS.md", doc="initial hidden weights uniform on ±init_scale·511 (integers; fp: the same real interval)")
    init_shape: str = param("uniform", source="[I]", doc="'uniform' on ±init_scale·511, or 'normal' with the same variance (σ = init_scale·511/√3, saturated at ±511)")
    transfer: TransferConfig | None = param(None, doc="transfer model; None: by mode (ideal for hm, table for hm-var)")
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    layout: SynapseLayout = field(default_factory=lambda: PAPER_LAYOUT)
    scheme: SchemeConfig = field(default_factory=SchemeConfig)  # the learning rule (rule.schemes); hybrid by default

    def __post_init__(self):
        check_choice("mode", self.mode, MODES)
        check_scheme(self.scheme)
        check_number("hidden_lsb", self.hidden_lsb, lo=FLOAT32_SCALE[0], hi=FLOAT32_SCALE[1])
        check_number("init_scale", self.init_scale, lo=0, hi=1, lo_open=True)
        check_choice("init_shape", self.init_shape, INIT_SHAPES)
        if self.transfer is None:
            self.transfer = TransferConfig(model="table" if self.mode == "hm-var" else "ideal")
        if self.mode == "hm-var" and self.transfer.model == "ideal":
            raise ConfigError("transfer.model", self.transfer.model, "'table' or 'circuit' with mode='hm-var' (variability needs a noisy transfer)")
        if self.mode == "hm" and self.transfer.model != "ideal":
            raise ConfigError("transfer.model", self.transfer.model, "'ideal' with mode='hm' (use mode='hm-var' for variability)")
        if self.mode == "fp" and not self.scheme.is_hybrid:
            raise ConfigError("scheme.rule", self.scheme.rule, "'hybrid' with mode='fp' (a baseline rule programs devices: "
                              "mode 'hm' for ideal writes, 'hm-var' for writes with variability)")
        check_layout(self.layout, self.transfer, self.scheme, self.mode)

    @property
    def level_step(self) -> float:
        """Real value of one analogue level: 2^shift hidden LSBs."""
        return (1 << self.layout.level_shift) * self.hidden_lsb

    def replace(self, **changes) -> "HybridConfig":
        """A validated copy with some fields changed (``transfer`` re-derived from a new mode)."""
        if "mode" in changes and "transfer" not in changes:
            changes["transfer"] = None
        return dataclasses.replace(self, **changes)


def check_scheme(scheme) -> None:
    """A layer learns by a named rule (``SchemeConfig``); a composed ``rule.compose.Rule`` is a model of
    one for analysis, driven by hand, which no layer runs: refused by name, not an AttributeError later."""
    if isinstance(scheme, SchemeConfig):
        return
    what = type(scheme).__name__
    hint = (" (a composed rule is for analysis, driven by hand: Rule.step/periodic on a state dict; a layer "
            "trains SchemeConfig(rule=...), which builds the same pieces, docs/rules.md)"
            if what in ("Rule", "Chain") else "")
    raise ConfigError("scheme", what, reason="expected a SchemeConfig naming the learning rule: SchemeConfig(rule=...) "
                      "with 'hybrid', 'memristor-sgd', 'mixed-precision' or 'tiki-taka'" + hint)


def check_layout(layout: SynapseLayout, transfer: TransferConfig, scheme: SchemeConfig, mode: str) -> None:
    """What models only the paper's 3 analogue bits: the measured level means (8 of them), the
    circuit transfer (the chain's 4:2:1 capacitors and reference means), and the baseline rules
    (their devices' level tables)."""
    if mode == "fp":
        return
    bits = {"layout.analogue_magnitude_bits": layout.analogue_magnitude_bits}
    paper_bits = layout.analogue_magnitude_bits == PAPER_LAYOUT.analogue_magnitude_bits
    if transfer.model == "circuit" and not paper_bits:
        raise ConfigError("transfer.model", "circuit", "'table' or 'ideal' (the device chain models the paper's 3 analogue bits)",
                          context=bits)
    if transfer.model == "circuit" and (layout.sign_cells, layout.msb_cells) != (PAPER_LAYOUT.sign_cells, PAPER_LAYOUT.msb_cells):
        raise ConfigError("transfer.model", "circuit", "'table' or 'ideal' (the device chain models the paper's "
                          f"sign cell and {PAPER_LAYOUT.msb_cells} MSB cells)",
                          context={"layout.sign_cells": layout.sign_cells, "layout.msb_cells": list(layout.msb_cells)})
    if paper_bits:
        return
    if transfer.level_means == "measured":
        raise ConfigError("transfer.level_means", "measured", "'ideal' (the paper measured 8 levels, for 3 analogue bits)",
                          context=bits)
    if not scheme.is_hybrid:
        raise ConfigError("scheme.rule", scheme.rule, "'hybrid' (the baseline rules model the paper's 3 analogue bits)",
                          context=bits)


def as_config(config, option: str = "config") -> HybridConfig:
    """A layer's config as given: a HybridConfig, a mode name (``'hm-var'``: the paper's config in
    that mode), or None (the default config); anything else is refused naming ``option``."""
    if config is None:
        return HybridConfig()
    if isinstance(config, str):
        return HybridConfig(mode=config)  # HybridConfig checks the mode and names it
    if not isinstance(config, HybridConfig):
        raise ConfigError(option, type(config).__name__, "a HybridConfig, a mode name such as 'hm-var', or None")
    return config
