"""A bank of R replicas of one layer's hybrid weights, with their state in buffers.

Modes: ``fp`` keeps float32 weights; ``hm``/``hm-var`` keep the hidden FeCAP integers (int16),
the analogue memristor weights used by the passes (float32, real units) and the last programmed
levels. Ledger counters live here too, so ``state_dict()`` checkpoints everything a run needs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..circuit.layout import PAPER_LAYOUT, SynapseLayout
from ..circuit.ledger import LayerCounts, LedgerConfig
from ..circuit.transfer import TableTransfer, TransferConfig, make_transfer, split_sign
from ..rule import update as ref
from ..rule.config import RuleConfig
from ..rule.rng import STREAM_INIT, torch_generator

MODES = ("fp", "hm", "hm-var")
BACKENDS = ("auto", "numba", "torch")
_FLUSH_EVERY = 250  # uint8 event counters are flushed into int64 before they can overflow


def resolve_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        if device.type != "cpu":
            return "torch"
        try:
            import numba  # noqa: F401
        except ImportError:
            return "torch"
        return "numba"
    return backend


class HybridWeightBank(nn.Module):
    def __init__(self, in_features: int, out_features: int, replicas: int, *, mode: str, rule: RuleConfig,
                 transfer: TransferConfig, ledger: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT,
                 layer_index: int = 0, backend: str = "auto", device=None):
        super().__init__()
        self.in_features, self.out_features, self.replicas = in_features, out_features, replicas
        self.mode, self.rule, self.ledger, self.layout, self.layer_index = mode, rule, ledger, layout, layer_index
        self.transfer_config = transfer
        self.transfer_model = make_transfer(transfer, layout.max_level) if mode != "fp" else None
        device = torch.device(device or "cpu")
        self.backend = resolve_backend(backend, device)
        if self.backend == "numba":  # imported here, not per sample: numba is only needed on this path
            from ..rule import kernels_cpu
            self._kernels = kernels_cpu
        # The fused CPU transfer covers the table models when every transfer rewrites every pair.
        self._fused_transfer = (self.backend == "numba" and isinstance(self.transfer_model, TableTransfer)
                                and ledger.transfer_writes_unchanged)
        shape = (replicas, out_features, in_features)
        if mode == "fp":
            self.register_buffer("weight", torch.zeros(shape, device=device))
        else:
            self.register_buffer("hidden", torch.zeros(shape, dtype=torch.int16, device=device))
            self.register_buffer("analogue", torch.zeros(shape, device=device))
            # Only needed when a transfer may skip unchanged levels (LedgerConfig.transfer_writes_unchanged).
            self.register_buffer("level_code", torch.zeros(shape, dtype=torch.int16, device=device))
            self.register_buffer("memristor_skips", torch.zeros(shape, dtype=torch.int64, device=device))
        self.register_buffer("pending_events", torch.zeros(shape, dtype=torch.uint8, device=device))
        self.register_buffer("update_events", torch.zeros(shape, dtype=torch.int64, device=device))
        self.register_buffer("transfers", torch.zeros(replicas, dtype=torch.int64, device=device))
        self._since_flush = 0  # steps since pending_events was last flushed (a checkpoint flushes first)

    # --- initialisation and transfer ---------------------------------------------------------
    def reset_parameters(self, seeds: list[int]) -> None:
        """Uniform initial weights on ±init_scale·max_hidden LSBs, drawn per replica from its seed."""
        bound = round(self.rule.init_scale * self.layout.max_hidden)
        shape = (self.out_features, self.in_features)
        for r, seed in enumerate(seeds):
            g = torch_generator(seed, STREAM_INIT * 1000 + self.layer_index)
            if self.mode == "fp":
                w = (torch.rand(shape, generator=g) * 2 - 1) * (bound * self.rule.hidden_lsb)
                self.weight[r] = w.to(self.weight.device)
            else:
                h = torch.randint(-bound, bound + 1, shape, generator=g, dtype=torch.int64)
                self.hidden[r] = h.to(torch.int16).to(self.hidden.device)
        for buf in ("pending_events", "update_events", "transfers"):
            getattr(self, buf).zero_()
        if self.mode != "fp":
            self.memristor_skips.zero_()

    @property
    def level_step(self) -> float:
        """Real value of one analogue level: 2^shift hidden LSBs."""
        return (1 << self.layout.level_shift) * self.rule.hidden_lsb

    def program(self, generators, *, initial: bool = False) -> None:
        """Transfer sign + MSBs of every hidden weight into the memristor pairs (digest §3)."""
        if self._fused_transfer:
            self.transfer_model.program_hidden_cpu_(self.hidden, self.layout.level_shift, self.level_step,
                                                    generators, self.analogue)
            if not initial:
                self.transfers += 1
            return
        sign, magnitude = split_sign(self.hidden, self.layout.level_shift)
        value = self.transfer_model.program(sign, magnitude, generators)
        value.mul_(self.level_step)
        if self.ledger.transfer_writes_unchanged:
            self.analogue.copy_(value)
        else:
            code = magnitude * 2 + (self.hidden < 0)
            if initial:
                self.analogue.copy_(value)
            else:
                changed = code != self.level_code
                self.analogue.copy_(torch.where(changed, value, self.analogue))
                self.memristor_skips += ~changed
            self.level_code.copy_(code)
        if not initial:
            self.transfers += 1

    # --- the per-sample update ---------------------------------------------------------------
    def effective_weight(self) -> torch.Tensor:
        """The weights the forward and backward passes use."""
        return self.weight if self.mode == "fp" else self.analogue

    def _hm_kwargs(self) -> dict:
        r = self.rule
        return dict(lr=r.lr, lsb=r.hidden_lsb, p=r.p, rounding=r.rounding, max_hidden=self.layout.max_hidden,
                    count_zero=self.ledger.count_zero_updates)

    def update(self, delta: torch.Tensor, x: torch.Tensor, keys: np.ndarray) -> None:
        """One masked update from the gradient factors δ (R, B, out), x (R, B, in)."""
        if delta.shape[1] == 1:
            factors = {"delta": delta[:, 0].contiguous(), "x": x[:, 0].contiguous()}
        else:  # a mini-batch: the summed outer products, once
            factors = {"grad": torch.bmm(delta.transpose(1, 2), x)}
        if self.backend == "numba" and "grad" not in factors:
            self.update_rank1_numpy(factors["delta"].numpy(), factors["x"].numpy(), keys)
            return
        if self.backend == "numba":
            k = self._kernels
            pend, g = self.pending_events.numpy(), factors["grad"].numpy()
            if self.mode == "fp":
                k.fp_update_dense_(self.weight.numpy(), pend, g, keys, lr=self.rule.lr, p=self.rule.p)
            else:
                k.hybrid_update_dense_(self.hidden.numpy(), pend, g, keys, **self._hm_kwargs())
        else:
            u = ref.counter_uniforms(keys, self.out_features * self.in_features, self.pending_events.device)
            u = u.view(self.replicas, self.out_features, self.in_features)
            if self.mode == "fp":
                new, events = ref.fp_update(self.weight, u, lr=self.rule.lr, p=self.rule.p, **factors)
                self.weight.copy_(new)
            else:
                new, events = ref.hybrid_update(self.hidden, u, **self._hm_kwargs(), **factors)
                self.hidden.copy_(new)
            self.pending_events += events.to(torch.uint8)
        self._count_step()

    def update_rank1_numpy(self, delta: np.ndarray, x: np.ndarray, keys: np.ndarray) -> None:
        """The fused CPU path of :meth:`update` for batch 1: δ (R, out), x (R, in) as numpy float32."""
        k = self._kernels
        pend = self.pending_events.numpy()
        if self.mode == "fp":
            k.fp_update_rank1_(self.weight.numpy(), pend, delta, x, keys, lr=self.rule.lr, p=self.rule.p)
        else:
            k.hybrid_update_rank1_(self.hidden.numpy(), pend, delta, x, keys, **self._hm_kwargs())
        self._count_step()

    def _count_step(self) -> None:
        self._since_flush += 1
        if self._since_flush >= _FLUSH_EVERY:
            self.flush_counts()

    def flush_counts(self) -> None:
        self.update_events += self.pending_events
        self.pending_events.zero_()
        self._since_flush = 0

    def counts(self, r: int) -> LayerCounts:
        self.flush_counts()
        transfers = int(self.transfers[r])
        writes = torch.full_like(self.update_events[r], transfers)
        if self.mode != "fp":
            writes -= self.memristor_skips[r]
        return LayerCounts(self.update_events[r].cpu(), transfers, writes.cpu())

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, replicas={self.replicas}, mode={self.mode}, "
                f"backend={self.backend}")
