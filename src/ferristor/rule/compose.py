"""Learning rules as composable pieces (the way optax chains gradient transformations).

A *piece* is a small step with explicit state: it reads the signal of the step so far (``sig``: the
change ``v``, the draws ``m``/``u``, the mask, the rounded change ``d``, the lines a transfer
touches …), reads and replaces entries of the rule's state (a dict of (R, I, O) crossbar tensors:
R replicas, I input lines, O outputs, plus per-replica counters) and declares in ``writes`` which
device kinds it operates on (``fecap``, ``memristor``, ``digital``: ``circuit.devices``). A
:class:`Chain` runs pieces in order; a :class:`Rule` is two chains — the ``update`` every step
applies, and the ``transfer`` its schedule (every k inputs, owned by the optimizer as in the
engine) applies — and writes the union of its pieces' devices.

The pieces: :class:`ScaleGradient` (−lr·∂L/∂W in grid units), :class:`BernoulliMask` (a fresh
Bernoulli(p) mask per weight from the counter-based update stream), :class:`RoundOntoGrid`,
:class:`Gate` (masked, unrounded), :class:`Accumulate` (into a store, saturating; FeCAP integers or
a digital float), :class:`CountUpdates`, :class:`StepLevel` (move a memristor pair's level),
:class:`Program` (program memristor pairs through the transfer model: levels, σ, sign guard, with
counter-based noise), :class:`TruncateToLevel` (sign + MSBs of the hidden integer),
:class:`Threshold` (χ → whole steps of ε), :class:`SelectLines` / :class:`ReadLines` /
:class:`UniformDraws` / :class:`ResetLines` (Tiki-Taka's line transfer), :class:`Combine`
(W = C + γA) and :class:`CountTransfer`. :func:`hybrid_rule`, :func:`memristor_sgd`,
:func:`mixed_precision` and :func:`tiki_taka` build the rules from them.

Every draw is the engine's (``rule.random_*``: Philox row keys, per-column words, float32 normals)
and every float operation is the engine's in the same order, so the composed hybrid rule equals the
engine's numba kernels bit for bit (tested), and the baselines' fast kernels (``rule.schemes_cpu``)
equal their composed form. Speed is second here: the CPU fast paths run in training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..circuit.devices import KINDS
from ..circuit.transfer import CounterNoise
from . import random_torch
from .kernels_cpu import mask_threshold, rounding_scale
from .quantize import round_to_grid
from .schemes import STREAM_FAST_WRITE, STREAM_TRANSFER_ROUNDING, SchemeConfig
from .streams import STREAM_TRANSFER, STREAM_UPDATE

_f32 = torch.float32
INV_2_24 = 1.0 / 16777216.0


@dataclass
class Context:
    """What one application of a chain sees besides its state.

    ``keys(stream)``: the uint32 (R, 2) keys of a stream kind (``rule.streams``); ``step``: the
    parameter's update counter before this step (it indexes the update draws); ``transfers``: the
    transfers before this one (transfer n draws from counter n; 0 is the initial programming);
    ``lr``, ``p``, ``rounding``: the optimizer's; the gradient as dense ``grad`` (R, I, O) or rank-1
    factors ``delta`` (R, O) and ``x`` (R, I)."""

    keys: Callable[[int], np.ndarray]
    transfer_model: object
    level_step: float
    hidden_lsb: float
    max_hidden: int
    max_level: int
    level_shift: int
    step: int = 0
    transfers: int = 0
    lr: float = 0.1
    p: float = 0.2
    rounding: str = "stochastic"
    grad: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    x: torch.Tensor | None = None
    _kt: dict = field(default_factory=dict)

    def keys_t(self, stream: int, device) -> torch.Tensor:
        tag = (stream, str(device))
        if tag not in self._kt:
            self._kt[tag] = torch.from_numpy(np.asarray(self.keys(stream), np.uint32).astype(np.int64)).to(device)
        return self._kt[tag]


class Piece:
    """One step of a rule. ``writes``: the device kinds it operates on."""

    writes: tuple[str, ...] = ()

    def __call__(self, sig: dict, state: dict, ctx: Context) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Chain(Piece):
    def __init__(self, *pieces: Piece):
        self.pieces = tuple(p for p in pieces if p is not None)

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for p in self.pieces for k in p.writes))

    def __call__(self, sig: dict, state: dict, ctx: Context) -> None:
        for piece in self.pieces:
            piece(sig, state, ctx)


@dataclass
class Rule:
    """A learning rule: ``update`` every step, ``transfer`` on the optimizer's schedule (None: never)."""

    name: str
    update: Chain
    transfer: Chain | None = None

    @property
    def writes(self) -> tuple[str, ...]:
        chains = [self.update] + ([self.transfer] if self.transfer is not None else [])
        return tuple(dict.fromkeys(k for c in chains for k in c.writes))

    def step(self, state: dict, ctx: Context) -> dict:
        sig: dict = {}
        self.update(sig, state, ctx)
        return sig

    def periodic(self, state: dict, ctx: Context) -> dict:
        sig: dict = {}
        if self.transfer is not None:
            self.transfer(sig, state, ctx)
        return sig


# --- helpers: a piece works on all lines, or on the lines a transfer selected (sig["rows"]) --------

def _get(state: dict, key: str, sig: dict) -> torch.Tensor:
    t = state[key]
    rows = sig.get("rows")
    return t if rows is None else t[:, rows, :]


def _set(state: dict, key: str, sig: dict, value: torch.Tensor) -> None:
    rows = sig.get("rows")
    if rows is None:
        state[key] = value
    else:
        new = state[key].clone()
        new[:, rows, :] = value
        state[key] = new


def _words24(ctx: Context, stream: int, counter: int, shape, rows: torch.Tensor | None, device) -> torch.Tensor:
    """The 24-bit draw index of every (replica, line, output): ``random_torch.words`` >> 8."""
    n_in, n_out = shape[1], shape[2]
    rows = torch.arange(n_in, dtype=torch.int64, device=device) if rows is None else rows
    cols = torch.arange(n_out, dtype=torch.int64, device=device)
    return random_torch.words(ctx.keys_t(stream, device), rows, cols, counter) >> 8


# --- the update: gradient, mask, rounding, accumulation -------------------------------------------

class ScaleGradient(Piece):
    """v = −lr·∂L/∂W in units of ``unit`` ('hidden_lsb': the FeCAP grid; 'level_step': one memristor
    level), float32: −(lr/unit) times δ, then times x (the engine's order)."""

    def __init__(self, unit: str):
        if unit not in ("hidden_lsb", "level_step"):
            raise ValueError(f"unit={unit!r}")
        self.unit = unit

    def __call__(self, sig, state, ctx):
        ref = ctx.grad if ctx.grad is not None else ctx.delta
        coef = torch.tensor(ctx.lr / getattr(ctx, self.unit), dtype=_f32, device=ref.device)
        if ctx.grad is not None:
            sig["v"] = (-coef) * ctx.grad
        else:
            sig["v"] = ctx.x[:, :, None] * ((-coef) * ctx.delta)[:, None, :]


class BernoulliMask(Piece):
    """A fresh Bernoulli(p) mask per weight from the update stream at this step: m (24 bits) < P;
    given the mask, u = m·2^-24/p is uniform on [0, 1) and drives stochastic rounding (digest §4)."""

    def __call__(self, sig, state, ctx):
        v = sig["v"]
        m = _words24(ctx, STREAM_UPDATE, ctx.step, v.shape, None, v.device)
        sig["m"] = m
        sig["mask"] = m < mask_threshold(ctx.p)
        sig["u"] = m.to(_f32) * torch.tensor(float(rounding_scale(ctx.p)), dtype=_f32, device=v.device)


class RoundOntoGrid(Piece):
    """d = the change rounded onto the integer grid ('stochastic' with sig['u'], 'nearest', 'truncate';
    None: the optimizer's rounding); 0 where a mask leaves the weight out."""

    def __init__(self, rounding: str | None = None):
        self.rounding = rounding

    def __call__(self, sig, state, ctx):
        mode = self.rounding or ctx.rounding
        d = round_to_grid(sig["v"], mode, sig.get("u") if mode == "stochastic" else None)
        if "mask" in sig:
            d = torch.where(sig["mask"], d, torch.zeros((), dtype=_f32, device=d.device))
        sig["d"] = d


class Gate(Piece):
    """d = v where masked in, else 0: a float update, not rounded (mixed precision's χ)."""

    def __call__(self, sig, state, ctx):
        v = sig["v"]
        sig["d"] = torch.where(sig["mask"], v, torch.zeros((), dtype=_f32, device=v.device))


class Accumulate(Piece):
    """store ← store + d, saturating at ±limit ('max_hidden' or None); counts the update events into
    ``pending`` (every masked-in update, or only non-zero ones with ``count_zero=False``)."""

    def __init__(self, store: str, limit: str | None, device: str, count_zero: bool = True):
        if device not in KINDS:  # Rule.writes would carry a kind no ledger prices
            raise ValueError(f"device={device!r}: one of {', '.join(map(repr, KINDS))}")
        self.store, self.limit, self.device, self.count_zero = store, limit, device, count_zero
        self.writes = (device,)

    def __call__(self, sig, state, ctx):
        new = state[self.store] + sig["d"]
        if self.limit is not None:
            lim = getattr(ctx, self.limit)
            new = new.clamp(-lim, lim)
        state[self.store] = new
        events = sig["mask"] if self.count_zero else sig["mask"] & (sig["d"] != 0)
        state["pending"] = state["pending"] + events.to(state["pending"].dtype)


class CountUpdates(Piece):
    """pending += the mask: update attempts (no device operation by themselves)."""

    def __call__(self, sig, state, ctx):
        state["pending"] = state["pending"] + sig["mask"].to(state["pending"].dtype)


# --- memristor levels ----------------------------------------------------------------------------
# A pair's level is held as a one's-complement code c: c = level for G+ (0…7), c = −1 − level for
# G− (−1…−8), so a level 0 keeps the side it was reached from (the selected device, digest §3).

def signed_level(code: torch.Tensor) -> torch.Tensor:
    return torch.where(code >= 0, code, code + 1)


def code_of(level: torch.Tensor, old_code: torch.Tensor) -> torch.Tensor:
    zero_side = torch.where(old_code < 0, torch.full_like(old_code, -1.0), torch.zeros_like(old_code))
    return torch.where(level > 0, level, torch.where(level < 0, level - 1, zero_side))


def split_code(code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sign ±1.0, magnitude level int32) of codes."""
    neg = code < 0
    sign = 1.0 - 2.0 * neg.to(_f32)
    return sign, torch.where(neg, -1.0 - code, code).to(torch.int32)


class StepLevel(Piece):
    """Move the pair's level by d (whole levels), saturating at ±max_level; sig['changed'] marks the
    weights whose code changed."""

    def __init__(self, code: str):
        self.code = code

    def __call__(self, sig, state, ctx):
        old = _get(state, self.code, sig)
        level = (signed_level(old) + sig["d"]).clamp(-ctx.max_level, ctx.max_level)
        new = code_of(level, old)
        sig["changed"] = new != old
        _set(state, self.code, sig, new)


class TruncateToLevel(Piece):
    """The level a hybrid transfer writes: sign + MSBs of the hidden integer, by truncation (digest §4
    step 4); reading the sign/MSB FeCAPs is destructive, so it costs FeCAP operations."""

    writes = ("fecap",)

    def __init__(self, hidden: str = "hidden", code: str = "code"):
        self.hidden, self.code = hidden, code

    def __call__(self, sig, state, ctx):
        h = state[self.hidden]
        mag = torch.bitwise_right_shift(h.abs().to(torch.int32), ctx.level_shift).to(_f32)
        state[self.code] = torch.where(h < 0, -1.0 - mag, mag)
        sig["changed"] = torch.ones_like(h, dtype=torch.bool)


class _RowNoise:
    """Counter-based transfer noise (``CounterNoise``) of some lines only: line ``rows[j]`` draws what
    it would draw in a transfer of the whole array."""

    def __init__(self, keys: np.ndarray, index: int, rows: torch.Tensor):
        self._all, self.rows = CounterNoise(keys, index), rows

    def normals(self, shape, device) -> torch.Tensor:
        cols = int(np.prod(shape[2:]))
        keys = torch.from_numpy(self._all.keys.astype(np.int64)).to(device)
        return random_torch.normals(keys, self.rows.to(device), cols, self._all.index).view(tuple(shape))

    def generators(self, device):
        return self._all.generators(device)


class Program(Piece):
    """Program memristor pairs to the level their code holds (RESET + SET, digest §3, §5) through the
    layer's transfer model — level means, σ, sign guard — where ``which`` says: 'changed' (the code
    changed), 'mask' (every masked-in update) or 'all'. The noise of write event n of ``stream`` is
    drawn from counter n: ``counter`` 'update' → step + 1, 'transfer' → transfers + 1, 'initial' → 0
    (the initial programming). The programmed value (real units) goes to ``value``; ``count`` (if given)
    counts the writes per synapse."""

    writes = ("memristor",)

    def __init__(self, code: str, value: str, which: str, stream: int, counter: str, count: str | None):
        if which not in ("changed", "mask", "all") or counter not in ("update", "transfer", "initial"):
            raise ValueError(f"which={which!r}, counter={counter!r}")
        self.code, self.value, self.which, self.stream, self.counter, self.count = code, value, which, stream, counter, count

    def __call__(self, sig, state, ctx):
        code = _get(state, self.code, sig)
        index = {"update": ctx.step + 1, "transfer": ctx.transfers + 1, "initial": 0}[self.counter]
        rows = sig.get("rows")
        keys = ctx.keys(self.stream)
        noise = CounterNoise(keys, index) if rows is None else _RowNoise(keys, index, rows)
        sign, magnitude = split_code(code)
        programmed = ctx.transfer_model.program(sign, magnitude, noise).mul_(ctx.level_step)
        which = {"changed": sig.get("changed"), "mask": sig.get("mask"), "all": None}[self.which]
        if which is None:
            _set(state, self.value, sig, programmed)
            which = torch.ones_like(code, dtype=torch.bool)
        else:
            _set(state, self.value, sig, torch.where(which, programmed, _get(state, self.value, sig)))
        if self.count is not None:
            _set(state, self.count, sig, _get(state, self.count, sig) + which.to(torch.int64))


class Threshold(Piece):
    """Mixed precision's transfer (Nandakumar et al. 2020): n = trunc(χ/ε) whole steps of ε levels,
    d = n·ε, χ ← χ − n·ε (open loop: χ is reduced whether or not the level saturates)."""

    writes = ("digital",)

    def __init__(self, chi: str, epsilon: int):
        self.chi, self.epsilon = chi, epsilon

    def __call__(self, sig, state, ctx):
        chi = state[self.chi]
        eps = torch.tensor(float(self.epsilon), dtype=_f32, device=chi.device)
        n = torch.trunc(chi / eps)
        step = n * eps
        sig["d"] = step
        state[self.chi] = chi - step


# --- Tiki-Taka's line transfer ----------------------------------------------------------------------

class SelectLines(Piece):
    """The next ``lines`` input lines in cyclic order (the one-hot reads of Gokmen & Haensch 2020);
    advances state['cursor']."""

    def __init__(self, lines: int):
        self.lines = lines

    def __call__(self, sig, state, ctx):
        cursor = state["cursor"]
        n_in = state["code"].shape[1]
        start = int(cursor)
        sig["rows"] = (start + torch.arange(min(self.lines, n_in), dtype=torch.int64)) % n_in
        state["cursor"] = torch.full_like(cursor, (start + self.lines) % n_in)


class ReadLines(Piece):
    """v = transfer_lr × the selected lines of the fast array's analogue value, in levels."""

    def __init__(self, value: str, transfer_lr: float):
        self.value, self.transfer_lr = value, transfer_lr

    def __call__(self, sig, state, ctx):
        a = _get(state, self.value, sig)
        read = a / torch.tensor(ctx.level_step, dtype=_f32, device=a.device)
        sig["v"] = torch.tensor(self.transfer_lr, dtype=_f32, device=a.device) * read


class UniformDraws(Piece):
    """u uniform on [0, 1) per weight of the selected lines, from ``stream`` at counter transfers + 1."""

    def __init__(self, stream: int):
        self.stream = stream

    def __call__(self, sig, state, ctx):
        v = sig["v"]
        m = _words24(ctx, self.stream, ctx.transfers + 1, (v.shape[0], v.shape[1], v.shape[2]), sig.get("rows"), v.device)
        sig["u"] = m.to(_f32) * INV_2_24


class ResetLines(Piece):
    """RESET the fast pairs of the selected lines (both devices to the low-conductance state: weight 0,
    code 0), where they are not at 0 already; counts the resets (1 operation per memristor)."""

    writes = ("memristor",)

    def __init__(self, code: str, value: str, count: str):
        self.code, self.value, self.count = code, value, count

    def __call__(self, sig, state, ctx):
        code, value = _get(state, self.code, sig), _get(state, self.value, sig)
        reset = (code != 0) | (value != 0)
        _set(state, self.code, sig, torch.where(reset, torch.zeros_like(code), code))
        _set(state, self.value, sig, torch.where(reset, torch.zeros_like(value), value))
        _set(state, self.count, sig, _get(state, self.count, sig) + reset.to(torch.int64))


class Combine(Piece):
    """The weight the passes read: W = C + γ·A (Gokmen & Haensch 2020), float32, γ·A first."""

    def __init__(self, slow: str, fast: str, gamma: float):
        self.slow, self.fast, self.gamma = slow, fast, gamma

    def __call__(self, sig, state, ctx):
        fast = state[self.fast]
        state["weight"] = state[self.slow] + torch.tensor(self.gamma, dtype=_f32, device=fast.device) * fast


class CountTransfer(Piece):
    def __call__(self, sig, state, ctx):
        state["transfers"] = state["transfers"] + 1


# --- the rules -------------------------------------------------------------------------------------

def hybrid_rule(count_zero: bool = True) -> Rule:
    """Martemucci et al. 2025 (digest §4): the masked, rounded update of the FeCAP hidden integers
    (saturating at ±511); every k inputs sign + 3 MSBs programmed into every pair."""
    return Rule("hybrid",
                update=Chain(ScaleGradient("hidden_lsb"), BernoulliMask(), RoundOntoGrid(),
                             Accumulate("hidden", "max_hidden", device="fecap", count_zero=count_zero)),
                transfer=Chain(TruncateToLevel("hidden", "code"),
                               Program("code", "weight", "all", STREAM_TRANSFER, "transfer", count="writes"),
                               CountTransfer()))


def memristor_sgd(write: str = "on_change") -> Rule:
    """Every masked update, in levels and rounded, moves the pair's level; the pair is programmed when
    the level changes ('on_change') or at every masked-in update ('every_update')."""
    return Rule("memristor-sgd",
                update=Chain(ScaleGradient("level_step"), BernoulliMask(), CountUpdates(), RoundOntoGrid(),
                             StepLevel("code"),
                             Program("code", "weight", "changed" if write == "on_change" else "mask", STREAM_TRANSFER,
                                     "update", count="writes")))


def mixed_precision(epsilon: int = 1) -> Rule:
    """Nandakumar et al. 2020: masked updates accumulate in a float χ (levels); each transfer (every k
    inputs; k = 1 in the source) programs the pairs where |χ| ≥ ε."""
    return Rule("mixed-precision",
                update=Chain(ScaleGradient("level_step"), BernoulliMask(), Gate(),
                             Accumulate("chi", None, device="digital")),
                transfer=Chain(Threshold("chi", epsilon), StepLevel("code"),
                               Program("code", "weight", "changed", STREAM_TRANSFER, "transfer", count="writes"),
                               CountTransfer()))


def tiki_taka(gamma: float = 0.0, transfer_lr: float = 1.0, lines_per_transfer: int = 1, reset_fast: bool = True,
              transfer_rounding: str = "stochastic") -> Rule:
    """Gokmen & Haensch 2020: the fast pair A takes the masked, rounded updates (programmed when its
    level changes); each transfer reads ``lines_per_transfer`` input lines of A and adds transfer_lr ×
    the read to C (rounded onto C's levels, programmed when changed), then RESETs them (``reset_fast``)."""
    slow = "weight" if gamma == 0 else "slow"
    combine = Combine(slow, "fast", gamma) if gamma != 0 else None
    return Rule("tiki-taka",
                update=Chain(ScaleGradient("level_step"), BernoulliMask(), CountUpdates(), RoundOntoGrid(),
                             StepLevel("fast_code"),
                             Program("fast_code", "fast", "changed", STREAM_FAST_WRITE, "update", count="fast_writes"),
                             combine),
                transfer=Chain(SelectLines(lines_per_transfer), ReadLines("fast", transfer_lr),
                               UniformDraws(STREAM_TRANSFER_ROUNDING), RoundOntoGrid(transfer_rounding),
                               StepLevel("code"),
                               Program("code", slow, "changed", STREAM_TRANSFER, "transfer", count="writes"),
                               ResetLines("fast_code", "fast", "fast_resets") if reset_fast else None,
                               combine, CountTransfer()))


def rule_for(scheme: SchemeConfig, count_zero: bool = True) -> Rule:
    """The composed rule a scheme names."""
    if scheme.rule == "hybrid":
        return hybrid_rule(count_zero)
    if scheme.rule == "memristor-sgd":
        return memristor_sgd(scheme.write)
    if scheme.rule == "mixed-precision":
        return mixed_precision(scheme.epsilon)
    return tiki_taka(scheme.gamma, scheme.transfer_lr, scheme.lines_per_transfer, scheme.reset_fast,
                     scheme.transfer_rounding)
