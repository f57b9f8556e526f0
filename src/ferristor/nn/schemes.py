"""How a hybrid layer learns with a baseline rule (``rule.schemes``): its state, initial programming,
update, transfer and device groups.

State lives in the layer's buffers, named after the parameter as the hybrid's are (for ``weight``):
``weight_code`` (the pair's level, one's-complement code), ``weight_writes`` (programmings of the
pair), and per rule ``weight_chi`` (mixed precision's float accumulator, digital), or
``weight_fast_code``/``weight_fast`` (Tiki-Taka's fast pair A: its level and analogue value),
``weight_fast_writes``, ``weight_fast_resets``, ``weight_slow`` (C's value when γ ≠ 0) and
``weight_cursor`` (the next line to transfer). The parameter itself holds what the passes read.
So ``state_dict()`` is the whole chip, as for the hybrid rule, and save/resume is bit for bit.
The hidden FeCAP buffer does not exist: these chips have no FeCAP.

Every rule starts from the same chip as the hybrid: the same initial integers (drawn from the seed),
truncated to their level and programmed with the same noise (transfer stream, counter 0), so at
step 0 every rule's network computes the same function. χ and A start at 0.

The rules run on their fused CPU kernels (``rule.schemes_cpu``) for rank-1 updates with the table
transfer model, and on their composed form (``rule.compose``) otherwise — the same bits.
"""
from __future__ import annotations

import numpy as np
import torch

from ..backend import backend_for
from ..circuit.devices import DeviceGroup
from ..circuit.ledger import pair_groups
from ..circuit.transfer import TableTransfer
from ..rule import compose
from ..rule.kernels_cpu import mask_threshold, rounding_scale
from ..rule.kernels_cpu import ROUNDING_CODE
from ..rule.schemes import STREAM_FAST_WRITE, STREAM_TRANSFER_ROUNDING, SchemeConfig
from ..rule.streams import STREAM_TRANSFER

_F32, _I64 = torch.float32, torch.int64


def buffers(scheme: SchemeConfig) -> dict[str, torch.dtype]:
    """Per-synapse buffers of a baseline rule (suffix → dtype)."""
    if scheme.rule == "memristor-sgd":
        return {"code": _F32, "writes": _I64}
    if scheme.rule == "mixed-precision":
        return {"code": _F32, "chi": _F32, "writes": _I64}
    out = {"code": _F32, "fast_code": _F32, "fast": _F32, "writes": _I64, "fast_writes": _I64, "fast_resets": _I64}
    if scheme.gamma != 0:
        out["slow"] = _F32
    return out


def scalar_buffers(scheme: SchemeConfig) -> tuple[str, ...]:
    return ("cursor",) if scheme.rule == "tiki-taka" else ()


COUNTERS = ("writes", "fast_writes", "fast_resets", "cursor")  # zeroed with the layer's counters


class SchemeRunner:
    """One layer's baseline rule: built once per layer from its config."""

    def __init__(self, layer):
        cfg = layer.config
        self.scheme = cfg.scheme
        self.rule = compose.rule_for(cfg.scheme, cfg.ledger.count_zero_updates)
        self.names = tuple(buffers(cfg.scheme)) + scalar_buffers(cfg.scheme)
        if cfg.scheme.rule == "tiki-taka":
            _warn_lines_beyond_inputs(layer, cfg.scheme.lines_per_transfer)

    # --- state ----------------------------------------------------------------------------------------
    def state(self, layer, name: str) -> dict:
        """Crossbar views of the parameter's state (the composed rule's dict)."""
        st = {"weight": layer.crossbar(name, layer._parameters[name].data),
              "pending": layer.crossbar(name, layer._buf(name, "pending")),
              "transfers": layer._buf(name, "transfers")}
        for key in buffers(self.scheme):
            st[key] = layer.crossbar(name, layer._buf(name, key))
        for key in scalar_buffers(self.scheme):
            st[key] = layer._buf(name, key)
        return st

    @staticmethod
    def _store(views: dict, new: dict) -> None:
        for key, view in views.items():
            if new[key] is not view:
                view.copy_(new[key])

    def context(self, layer, name: str, **kw) -> compose.Context:
        cfg, layout = layer.config, layer.config.layout
        return compose.Context(keys=lambda s: layer.stream_keys(name, s), transfer_model=layer.transfer_model,
                               level_step=cfg.level_step, hidden_lsb=cfg.hidden_lsb, max_hidden=layout.max_hidden,
                               max_level=layout.max_level, level_shift=layout.level_shift,
                               step=int(layer._buf(name, "updates")), transfers=int(layer._buf(name, "transfers")[0]),
                               **kw)

    def _run(self, layer, name: str, chain, **kw) -> None:
        views = self.state(layer, name)
        st = dict(views)
        chain({}, st, self.context(layer, name, **kw))
        self._store(views, st)

    # --- the rule's three moments ---------------------------------------------------------------------
    @torch.no_grad()
    def init_(self, layer, name: str, hidden: torch.Tensor) -> None:
        """Program the pairs from initial hidden integers (crossbar (R, I, O)); χ, A and counters at 0."""
        for key in buffers(self.scheme):
            layer._buf(name, key).zero_()
        for key in scalar_buffers(self.scheme):
            layer._buf(name, key).zero_()
        views = self.state(layer, name)
        st = dict(views, hidden=hidden.to(_F32))
        slow = "slow" if "slow" in st else "weight"
        chain = compose.Chain(compose.TruncateToLevel("hidden", "code"),
                              compose.Program("code", slow, "all", STREAM_TRANSFER, "initial", count=None),
                              compose.Combine("slow", "fast", self.scheme.gamma) if slow == "slow" else None)
        chain({}, st, self.context(layer, name))
        del st["hidden"]
        self._store(views, st)

    @torch.no_grad()
    def step_(self, layer, name: str, factors: dict, lr: float, p: float, rounding: str) -> None:
        """One update from the gradient factors ({'delta', 'x'} rank-1, or {'grad'} dense), in the rule's
        composed form; the layer advances its update counter afterwards. (Batch-1 factors on the
        fused kernels never come here: ``HybridModule._update_cpu`` calls :meth:`step_cpu`.)"""
        self._run(layer, name, self.rule.update, lr=lr, p=p, rounding=rounding, **factors)

    @torch.no_grad()
    def transfer_(self, layer, name: str) -> None:
        """The rule's periodic part (every k inputs): mixed precision's threshold, Tiki-Taka's line transfer."""
        if self.rule.transfer is None:
            return
        if self.fused(layer, name):
            self._transfer_cpu(layer, name)
        else:
            self._run(layer, name, self.rule.transfer)

    # --- the fused CPU kernels ----------------------------------------------------------------------
    def fused(self, layer, name: str) -> bool:
        """Whether this parameter's rule runs on the fused CPU kernels (numba, the table transfer model)."""
        return (backend_for(layer._parameters[name].device) == "numba" and isinstance(layer.transfer_model, TableTransfer))

    def _arrays(self, layer, name: str) -> dict:
        """numpy views of the rule's state, its keys and the device's constants, cached beside the
        layer's own (``HybridModule._cpu_arrays``) while the tensors behind them stay the same: at
        batch 1 the dozen torch calls that build them cost a fifth of a step."""
        base = layer._cpu_arrays(name)
        bufs = layer._buffers
        tag = (id(layer.transfer_model),) + tuple(id(bufs[f"{name}_{k}"]) for k in self.names)
        cached = base.get("scheme")
        if cached is None or cached[0] != tag:
            a = {k: layer.crossbar(name, bufs[f"{name}_{k}"]).numpy() for k in buffers(self.scheme)}
            a["weight"] = base["param"]
            a["cursor"] = bufs.get(f"{name}_cursor")
            a["transfers"] = bufs[f"{name}_transfers"].numpy()
            a["n_in"] = a["weight"].shape[1]
            for label, stream in (("transfer_keys", STREAM_TRANSFER), ("fast_keys", STREAM_FAST_WRITE),
                                  ("rounding_keys", STREAM_TRANSFER_ROUNDING)):
                a[label] = layer.stream_keys(name, stream)
            a["model"] = self._model_args(layer)
            a["limit"] = np.float32(layer.config.layout.max_level)
            a["consts"] = {}
            cached = base["scheme"] = (tag, a)
        return cached[1]

    def _model_args(self, layer) -> tuple:
        model, cfg = layer.transfer_model, layer.config
        means = model.means.numpy()
        table = tuple(np.float32(v) for v in (means if len(means) == 8 else np.arange(8)))
        return (table, bool(model.ideal_means), np.float32(model.sigma), model.sigma > 0,
                model.config.sign_guard == "fold", np.float32(cfg.level_step))

    def step_cpu(self, layer, name, delta, x, lr, p, rounding) -> None:
        """One update from batch-1 factors δ (R, O), x (R, I) (numpy or tensors) on the fused kernels;
        the caller advances the update counter. ``fused`` must hold."""
        from ..rule import schemes_cpu as K
        a, base = self._arrays(layer, name), layer._cpu_arrays(name)
        step = np.int64(base["updates"])
        d, xx = np.ascontiguousarray(_array(delta), np.float32), np.ascontiguousarray(_array(x), np.float32)
        consts = a["consts"].get((lr, p, rounding))
        if consts is None:
            consts = a["consts"][(lr, p, rounding)] = (-np.float32(lr / layer.config.level_step),
                                                       np.int32(mask_threshold(p)), rounding_scale(p),
                                                       ROUNDING_CODE[rounding])
        neg_coef, p24, c, code_rounding = consts
        if self.scheme.rule == "mixed-precision":
            K.chi_update_rank1(a["chi"], base["pending"], d, xx, base["keys"], step, neg_coef, p24)
            return
        fast = self.scheme.rule == "tiki-taka"
        code, value, writes, wkeys = ((a["fast_code"], a["fast"], a["fast_writes"], a["fast_keys"]) if fast
                                      else (a["code"], a["weight"], a["writes"], a["transfer_keys"]))
        K.level_update_rank1(code, value, base["pending"], writes, d, xx, base["keys"], step, wkeys, step + 1, neg_coef,
                             p24, c, code_rounding, a["limit"], (not fast) and self.scheme.write == "every_update",
                             *a["model"])
        if fast and self.scheme.gamma != 0:
            self._combine(layer, name)

    def _combine(self, layer, name) -> None:
        views = self.state(layer, name)
        st = dict(views)
        compose.Combine("slow", "fast", self.scheme.gamma)({}, st, None)
        self._store(views, st)

    def _transfer_cpu(self, layer, name) -> None:
        from ..rule import schemes_cpu as K
        s, a = self.scheme, self._arrays(layer, name)
        index = np.int64(a["transfers"][0] + 1)
        if s.rule == "mixed-precision":
            K.chi_threshold(a["chi"], a["code"], a["weight"], a["writes"], a["transfer_keys"], index,
                            np.float32(s.epsilon), a["limit"], *a["model"])
        else:
            cursor, n_in = a["cursor"], a["n_in"]
            start = int(cursor)
            rows = (start + np.arange(min(s.lines_per_transfer, n_in), dtype=np.int64)) % n_in
            cursor.fill_((start + s.lines_per_transfer) % n_in)
            value = a["slow"] if s.gamma != 0 else a["weight"]
            K.line_transfer(a["fast_code"], a["fast"], a["fast_resets"], a["code"], value, a["writes"], rows,
                            a["rounding_keys"], index, a["transfer_keys"], index, np.float32(s.transfer_lr),
                            ROUNDING_CODE[s.transfer_rounding], a["limit"], s.reset_fast, *a["model"])
            if s.gamma != 0:
                self._combine(layer, name)
        a["transfers"] += 1  # every replica (the buffer itself)

    # --- the ledger ------------------------------------------------------------------------------------
    def groups(self, layer, replica: int) -> list[DeviceGroup]:
        """The devices this layer's rule operated on (all its parameters), one replica."""
        cfg = layer.config.ledger
        per_write = cfg.memristor_ops_per_transfer  # RESET + SET (digest §5)
        pairs = layer.config.layout.memristors

        def col(kind: str) -> torch.Tensor:
            return torch.cat([layer.crossbar(n, layer._buf(n, kind))[replica].reshape(-1).cpu()
                              for n in layer.hybrid_names()]).to(torch.float64)
        layer.flush_counts()
        if self.scheme.rule == "tiki-taka":
            return (_with_resets(pair_groups("fast pair A", col("fast_writes"), cfg, pairs), col("fast_resets"), per_write)
                    + pair_groups("slow pair C", col("writes"), cfg, pairs))
        groups = pair_groups("pair", col("writes"), cfg, pairs)
        if self.scheme.rule == "mixed-precision":
            groups.append(DeviceGroup("digital", "accumulator χ", 1, col("events")))
        return groups

    def initial_groups(self, layer) -> list[DeviceGroup]:
        """The programming before training: every pair written once (A's pair, Tiki-Taka, RESET once)."""
        n = layer.n_synapses()
        ops = layer.config.ledger.memristor_ops_per_transfer
        pairs = layer.config.layout.memristors
        if self.scheme.rule == "tiki-taka":
            return ([DeviceGroup("memristor", "fast pair A", pairs, torch.full((n,), float(ops // 2)))]
                    + pair_groups("slow pair C", torch.ones(n), layer.config.ledger, pairs))
        return pair_groups("pair", torch.ones(n), layer.config.ledger, pairs)


def _with_resets(groups: list[DeviceGroup], resets: torch.Tensor, per_write: int) -> list[DeviceGroup]:
    """A's writes (``pair_groups``: the selected and unselected memristors apart, as for any pair) plus
    its RESETs, which take every memristor of the pair to low conductance: half a write's operations
    (the RESET of RESET + SET) on each, selected or not."""
    return [DeviceGroup(g.kind, g.role, g.per_synapse, g.ops + resets * (per_write // 2)) for g in groups]


def _warn_lines_beyond_inputs(layer, lines: int) -> None:
    """A transfer reads at most every input line of A once (SelectLines): lines_per_transfer beyond a
    parameter's lines would be cut to them unsaid. Warned per parameter, naming it; a bias is one line,
    read whole at every transfer whatever the setting."""
    import warnings

    from ..errors import FerristorWarning
    for name in layer.hybrid_names():
        n_in = layer.crossbar(name, layer._parameters[name]).shape[1]
        if name != "bias" and lines > n_in:
            warnings.warn(FerristorWarning(
                f"more than the {n_in} input lines of {layer.stream_name(name)}: each of its transfers reads all "
                f"{n_in} lines of A once, not {lines}", field="scheme.lines_per_transfer", value=lines), stacklevel=2)


def _array(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().numpy()
