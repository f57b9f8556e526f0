"""Parameters of the hybrid learning rule (digest §4)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config_base import FLOAT32_SCALE, check_choice, check_number, param

ROUNDING_MODES = ("stochastic", "nearest", "truncate")
INIT_SHAPES = ("uniform", "normal")
SAMPLERS = ("dense", "sparse")
K_UNITS = ("inputs", "updates")
BATCH_REDUCTIONS = ("mean", "sum")


@dataclass
class RuleConfig:
    lr: float = param(0.1, unit="1", source="digest §4 table [P] (MNIST, Fashion-MNIST; ECG trains at 0.01 [I], the paper's 0.3 collapses: RESULTS.md)", doc="learning rate; ΔW_h = −lr·∂L/∂W_a")
    p: float = param(0.2, unit="1", source="digest §4 table [P]", doc="probability that a weight is updated on a sample (fresh Bernoulli mask)")
    k: int = param(100, unit="sample", source="digest §4 [P] (the value); its unit at batch > 1 [I] (k_unit)", doc="a transfer every k samples (inputs) — or k updates, see k_unit")
    k_unit: str = param("inputs", source="digest §4 [I]", doc="what k counts at batch > 1: 'inputs' (samples: a mini-batch of B advances it by B; a transfer after each step that passes a multiple of k, at most one per step: digest §5's N/k transfers at B ≤ k, one per step at B > k) or 'updates' (optimizer steps); the same at batch 1")
    batch_reduction: str = param("mean", source="digest §4 [I]", doc="a mini-batch's loss: the 'mean' over its samples (torch's default) or their 'sum' (B times the step); the same at batch 1")
    rounding: str = param("stochastic", source="digest §4 [I]", doc="how ΔW_h lands on the hidden grid: 'stochastic' (unbiased), 'nearest' (half up) or 'truncate' (toward 0)")
    hidden_lsb: float = param(2.0 ** -9, unit="weight", source="[I]", doc="real value of one hidden LSB; 2^-9 puts the 10-bit hidden weight in (−1, 1)")
    init_scale: float = param(0.5, unit="1", source="[I]; 0.5 chosen on 1-epoch MNIST runs, see RESULTS.md", doc="initial hidden weights uniform on ±init_scale·511 (integers; FP: the same real interval)")
    init_shape: str = param("uniform", source="[I]", doc="'uniform' on ±init_scale·511, or 'normal' with the same variance (σ = init_scale·511/√3, saturated at ±511)")
    sampler: str = param("dense", source="[I]", doc="how the Bernoulli(p) masks are drawn: 'dense' (one word per weight; the faster on AVX2 at p ≥ 0.1) or 'sparse' (geometric gaps between masked-in weights, which alone draw; faster at small p) — the same statistics, different streams (docs/engine.md)")

    def __post_init__(self):
        check_number("lr", self.lr, lo=0, lo_open=True)
        check_number("p", self.p, lo=0, hi=1, lo_open=True)
        check_number("k", self.k, lo=1, integer=True)
        check_choice("rounding", self.rounding, ROUNDING_MODES)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("k_unit", self.k_unit, K_UNITS)
        check_choice("batch_reduction", self.batch_reduction, BATCH_REDUCTIONS)
        check_number("hidden_lsb", self.hidden_lsb, lo=FLOAT32_SCALE[0], hi=FLOAT32_SCALE[1])
        check_number("init_scale", self.init_scale, lo=0, hi=1, lo_open=True)
        check_choice("init_shape", self.init_shape, INIT_SHAPES)
