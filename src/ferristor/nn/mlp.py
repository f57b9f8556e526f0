"""A multilayer perceptron trained with the hybrid rule, R independent replicas at once."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..circuit.layout import PAPER_LAYOUT, SynapseLayout
from ..circuit.ledger import LedgerConfig, initial_programming_report, network_report
from ..circuit.transfer import TransferConfig
from ..config_base import check_choice, check_number, param
from ..errors import ConfigError
from ..rule.config import RuleConfig
from ..rule.rng import STREAM_TRANSFER, STREAM_UPDATE, replica_key, step_keys, torch_generator
from . import functional as F
from .bank import MODES, HybridWeightBank


@dataclass
class NetworkSpec:
    sizes: tuple[int, ...] = param((784, 200, 100, 10), unit="neuron", source="digest §4 table [P]")
    norm: str = param("layer", source="digest §4 table [P]", doc="'layer' (LayerNorm γ=1, β=0 after every layer), 'batch' or 'none'")
    output: str = param("softmax", source="digest §4 table [P]", doc="'softmax' + cross-entropy, or 'sigmoid' + binary cross-entropy")

    def __post_init__(self):
        self.sizes = tuple(self.sizes)
        if len(self.sizes) < 2:
            raise ConfigError("sizes", self.sizes, "at least an input and an output size")
        for s in self.sizes:
            check_number("sizes", s, lo=1, integer=True)
        check_choice("norm", self.norm, ("layer", "batch", "none"))
        check_choice("output", self.output, ("softmax", "sigmoid"))
        if self.output == "sigmoid" and self.sizes[-1] != 1:
            raise ConfigError("sizes", self.sizes, "a single output unit with output='sigmoid'")


class HybridMLP(nn.Module):
    """Replicas of one MLP, each its own chip: own initialisation, masks and variability draws."""

    def __init__(self, spec: NetworkSpec, seeds: list[int], *, mode: str = "hm", rule: RuleConfig | None = None,
                 transfer: TransferConfig | None = None, ledger: LedgerConfig | None = None,
                 layout: SynapseLayout = PAPER_LAYOUT, backend: str = "auto", device=None):
        super().__init__()
        check_choice("mode", mode, MODES)
        self.spec, self.seeds, self.mode = spec, list(seeds), mode
        self.rule = rule or RuleConfig()
        self.transfer = transfer or TransferConfig(model="table" if mode == "hm-var" else "ideal")
        self.ledger = ledger or LedgerConfig()
        self.layout = layout
        self.banks = nn.ModuleList(
            HybridWeightBank(i, o, len(self.seeds), mode=mode, rule=self.rule, transfer=self.transfer,
                             ledger=self.ledger, layout=layout, layer_index=li, backend=backend, device=device)
            for li, (i, o) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:])))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self._update_keys = np.array([replica_key(s, STREAM_UPDATE) for s in self.seeds], dtype=np.uint64)
        self.generators = [torch_generator(s, STREAM_TRANSFER, device or "cpu") for s in self.seeds]
        # Batch-1 passes in one compiled call when the fused CPU backend runs (see nn.fused_cpu).
        self._fused = None
        if all(b.backend == "numba" for b in self.banks) and spec.norm != "batch":
            from ..rule.kernels_cpu import step_keys_fast
            from .fused_cpu import FusedPasses
            self._fused = FusedPasses(spec.sizes, self.replicas, spec.norm, spec.output, F.EPS)
            self._step_keys_fast = step_keys_fast

    @property
    def replicas(self) -> int:
        return len(self.seeds)

    def reset_parameters(self) -> None:
        """Initialise every replica from its seed and program the analogue weights once."""
        self.step.zero_()
        self.generators = [torch_generator(s, STREAM_TRANSFER, g.device) for s, g in zip(self.seeds, self.generators)]
        for bank in self.banks:
            bank.reset_parameters(self.seeds)
            if self.mode != "fp":
                bank.program(self.generators, initial=True)

    def weights(self) -> list[torch.Tensor]:
        return [b.effective_weight() for b in self.banks]

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Output probabilities (R, N, classes) of inputs x (N, in) or (R, N, in)."""
        if x.dim() == 2:
            x = x.expand(self.replicas, *x.shape)
        out, _ = F.forward(self.weights(), x, self.spec.norm, self.spec.output)
        return out

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        out = self.predict_proba(x)
        return out.argmax(-1) if self.spec.output == "softmax" else (out[..., 0] > 0.5).long()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One sample (or one mini-batch) per replica: x (R, in) or (R, B, in), y (R,) or (R, B)."""
        weights = self.weights()
        step = int(self.step)
        if self._fused is not None and x.dim() == 2:
            deltas, inputs = self._fused.run([w.numpy() for w in weights], x.numpy(), y.numpy())
            for li, bank in enumerate(self.banks):
                bank.update_rank1_numpy(deltas[li], inputs[li], self._step_keys_fast(self._update_keys, step, li))
        else:
            out, cache = F.forward(weights, x, self.spec.norm, self.spec.output)
            factors = F.backward(weights, cache, F.loss_grad(out, y, self.spec.output), self.spec.norm)
            for li, (bank, (delta, inp)) in enumerate(zip(self.banks, factors)):
                bank.update(delta, inp, step_keys(self._update_keys, step, li))
        # "Every k samples": k counts inputs, so a mini-batch of B advances the count by B.
        batch = x.shape[1] if x.dim() == 3 else 1
        self.step.add_(1)
        if self.mode != "fp" and (step + 1) * batch // self.rule.k > step * batch // self.rule.k:
            for bank in self.banks:
                bank.program(self.generators)

    # --- ledger ----------------------------------------------------------------------------
    def ledger_report(self) -> list[dict]:
        """One report per replica: per layer and for the whole network, plus the initial programming."""
        if self.mode == "fp":
            return []
        reports = []
        n_w = sum(b.in_features * b.out_features for b in self.banks)
        for r in range(self.replicas):
            rep = network_report([b.counts(r) for b in self.banks], self.ledger, self.layout)
            rep["initial_programming"] = initial_programming_report(n_w, self.ledger, self.layout)
            reports.append(rep)
        return reports

    def flush_counts(self) -> None:
        """Move pending per-step event counters into the totals (before a checkpoint)."""
        for b in self.banks:
            b.flush_counts()

    def generator_states(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def set_generator_states(self, states) -> None:
        for g, s in zip(self.generators, states):
            g.set_state(s)
