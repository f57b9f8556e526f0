"""Which learning rule a layer's synapses learn with, on the same devices: the paper's hybrid rule and
the baselines it is compared with (issue 13).

* ``hybrid`` — Martemucci et al. 2025 (digest §4): a 10-bit hidden integer in 14 FeCAPs takes every
  masked, rounded update; every k inputs sign + 3 MSBs are transferred into the memristor pair.
* ``memristor-sgd`` — the scheme the hybrid memory replaces: the weight *is* the memristor pair's
  level (sign + 8 magnitude levels, digest §1, §3); every masked update, in units of one level and
  rounded onto the levels, programs the pair (RESET + SET) when the level changes.
* ``mixed-precision`` — Nandakumar et al., "Mixed-precision deep learning based on computational
  memory", Front. Neurosci. 14:406 (2020): updates accumulate in a digital float χ; when
  |χ| ≥ ε the pair is programmed n = trunc(χ/ε) steps of ε and χ −= n·ε (open loop).
* ``tiki-taka`` — Gokmen & Haensch, "Algorithm for training neural networks on resistive device
  arrays", Front. Neurosci. 14:103 (2020): a fast array A (a second memristor pair per synapse)
  takes the updates; every k inputs ``lines_per_transfer`` input lines of A are read, and
  transfer_lr × the read is added to the slow array C (rounded onto C's levels); the passes read
  W = C + γ·A.

Every memristor write of every rule goes through the layer's transfer model (level means, σ =
0.594 level, the sign guard: digest §3) with noise from counter-based streams, and costs RESET +
SET = 2 operations on each memristor of the pair (digest §5) — counted by the same ledger
(``circuit.devices``). The rules as composable pieces are ``rule.compose``; the layers run them
through ``nn.schemes``.

Open choices are named fields of :class:`SchemeConfig`; a field that belongs to another rule must
keep its default (a value there would be silently ignored, so it is refused).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..config_base import check_bool, check_choice, check_number, param
from ..errors import ConfigError
from .config import ROUNDING_MODES

RULES = ("hybrid", "memristor-sgd", "mixed-precision", "tiki-taka")
WRITE_POLICIES = ("on_change", "every_update")

# Device kinds each rule writes (checked against the composed pieces' declarations in the tests).
RULE_DEVICES = {"hybrid": ("fecap", "memristor"), "memristor-sgd": ("memristor",),
                "mixed-precision": ("digital", "memristor"), "tiki-taka": ("memristor",)}

# Kinds of randomness beyond rule.streams' (update masks 2, transfer noise 3): programming noise of
# Tiki-Taka's fast array A, and the stochastic rounding of its A → C transfer.
STREAM_FAST_WRITE = 6
STREAM_TRANSFER_ROUNDING = 7

# Which fields belong to which rule (the rest must keep their defaults).
_OWNERS = {"write": "memristor-sgd", "epsilon": "mixed-precision", "gamma": "tiki-taka", "transfer_lr": "tiki-taka",
           "lines_per_transfer": "tiki-taka", "reset_fast": "tiki-taka", "transfer_rounding": "tiki-taka"}


@dataclass
class SchemeConfig:
    rule: str = param("hybrid", source="issue 13; digest §4, §7", doc="'hybrid' (the paper's rule), 'memristor-sgd', 'mixed-precision' (Nandakumar et al. 2020) or 'tiki-taka' (Gokmen & Haensch 2020); see rule.schemes")
    write: str = param("on_change", source="[I]", doc="memristor-sgd: 'on_change' (the pair is programmed when its level changes) or 'every_update' (every masked-in update programs it, as a transfer at every sample would)")
    epsilon: int = param(1, unit="level", source="Nandakumar et al. 2020 (ε = the device's granularity) [I]", doc="mixed-precision: |χ| ≥ ε levels programs the pair; one level by default (aihwkit MixedPrecisionCompound: granularity of the device)")
    gamma: float = param(0.0, unit="1", source="Gokmen & Haensch 2020; aihwkit TransferCompound default 0 [I]", doc="tiki-taka: the passes read W = C + γ·A")
    transfer_lr: float = param(1.0, unit="1", source="[I] (aihwkit: transfer_lr 1 scaled by the SGD lr; with A reset after each read, 1 moves all of A)", doc="tiki-taka: C gains transfer_lr × the read of A (in levels), rounded onto C's levels")
    lines_per_transfer: int = param(1, unit="line", source="Gokmen & Haensch 2020; aihwkit n_reads_per_transfer = 1", doc="tiki-taka: input lines of A read (one-hot reads) and transferred every k inputs, in cyclic order")
    reset_fast: bool = param(True, source="[I] (aihwkit with_reset_prob; our memristors have no symmetry point to decay to)", doc="tiki-taka: RESET A's pairs after their line is transferred, those not at 0 already (1 operation on each memristor of such a pair; a pair at 0 costs nothing); without it A's content is re-added at every read")
    transfer_rounding: str = param("stochastic", source="[I]", doc="tiki-taka: how the transferred amount lands on C's levels: 'stochastic', 'nearest' or 'truncate'")

    def __post_init__(self):
        check_choice("rule", self.rule, RULES)
        check_choice("write", self.write, WRITE_POLICIES)
        check_number("epsilon", self.epsilon, lo=1, integer=True)
        check_number("gamma", self.gamma, lo=0)
        check_number("transfer_lr", self.transfer_lr, lo=0, lo_open=True)
        check_number("lines_per_transfer", self.lines_per_transfer, lo=1, integer=True)
        check_bool("reset_fast", self.reset_fast)
        check_choice("transfer_rounding", self.transfer_rounding, ROUNDING_MODES)
        defaults = SchemeConfig.__dataclass_fields__
        for f in fields(self):
            owner = _OWNERS.get(f.name)
            if owner and owner != self.rule and getattr(self, f.name) != defaults[f.name].default:
                raise ConfigError(f.name, getattr(self, f.name),
                                  reason=f"it applies to rule {owner!r} only (this rule is {self.rule!r}); leave it at its default")

    @property
    def is_hybrid(self) -> bool:
        return self.rule == "hybrid"

    @property
    def devices(self) -> tuple[str, ...]:
        return RULE_DEVICES[self.rule]
