"""``HybridSGD``: the paper's learning rule as a ``torch.optim`` optimizer (digest §4).

Per hybrid parameter and step: a fresh Bernoulli(p) mask, the masked change −lr·∂L/∂W rounded onto
the 10-bit hidden FeCAP grid and saturated (``rule``); every k *inputs* the sign + 3 MSBs are
transferred into the memristors. A mini-batch of B advances the input count by B — the optimizer
reads B from the gradients the layers recorded, so nobody does the arithmetic — and a transfer
follows each step in which the count passes a multiple of k: at most one per step, since the hidden
weights change only at the steps and a second transfer between the same two updates would write the
same levels. So N inputs make N/k transfers at B ≤ k, but one per step, N/B, at B > k (warned once).

Plain parameters in the same groups (a float head, normalisation gains) are updated with plain
``torch.optim.SGD`` — the group's lr, momentum, weight decay — exactly as ``SGD`` would. To leave
them to another optimizer, do not give them to this one (``hybrid_parameters(model)``).

State, and where it lives: the chip's own counters (the update counter that indexes the random
streams, the transfer count, the ledger) are buffers of the layers, so saving the model saves the
chip; the optimizer keeps the rule's schedule — inputs seen per parameter — and the rule's
hyperparameters in its param groups. Saving both and loading them into fresh objects resumes
bit for bit; the random keys are derived from the layers' seeds and names, never stored.
"""
from __future__ import annotations

import itertools
import operator
import warnings
from typing import Iterable

import torch
from torch.optim import SGD

from ..config_base import check_choice, check_number
from ..errors import ConfigError, FerristorWarning, NonFiniteGradientError
from ..nn.hybrid import HybridParameter
from ..rule.config import K_UNITS, ROUNDING_MODES, SAMPLERS


def hybrid_parameters(model: torch.nn.Module) -> list[HybridParameter]:
    return [p for p in model.parameters() if isinstance(p, HybridParameter)]


def plain_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if not isinstance(p, HybridParameter)]


def _lr(group: dict) -> float:
    """The group's lr as a number (torch's optimizers also take a tensor)."""
    lr = group["lr"]
    return float(lr) if torch.is_tensor(lr) else lr


def _check_lr(lr, *, at_step: bool = False) -> None:
    check_number("lr", lr, lo=0, lo_open=not at_step)


def _check_rule(group: dict, *, at_step: bool = False) -> None:
    """The rule's values of a group, as the constructor takes them. At a step (``at_step``) an lr of 0
    is taken too: schedulers end there (CosineAnnealingLR's default eta_min=0, LinearLR to 0), and the
    step then moves nothing but the FeCAP reads/rewrites of its masked-in weights."""
    _check_lr(_lr(group), at_step=at_step)
    check_number("p", group["p"], lo=0, hi=1, lo_open=True)
    check_number("k", group["k"], lo=1, integer=True)
    check_choice("rounding", group["rounding"], ROUNDING_MODES)
    check_choice("sampler", group["sampler"], SAMPLERS)
    check_choice("k_unit", group["k_unit"], K_UNITS)


_NO_MOMENTUM = ("0 for a group holding hybrid parameters (the rule has neither momentum nor weight decay, digest §4; "
                "a scheduler such as OneCycleLR sets momentum unless cycle_momentum=False)")


def _check_hybrid_group(group: dict) -> None:
    """What a group holding hybrid parameters cannot have: the rule has no momentum, weight decay or
    ascent (digest §4). Checked when the group is added and before a step, since a scheduler may set
    them later (OneCycleLR cycles momentum unless told cycle_momentum=False)."""
    for key in ("momentum", "weight_decay"):
        if group[key]:
            raise ConfigError(key, group[key], _NO_MOMENTUM)
    if group["nesterov"]:
        raise ConfigError("nesterov", group["nesterov"], "False for a group holding hybrid parameters (the rule has "
                          "no momentum, digest §4)")
    if group["maximize"]:
        raise ConfigError("maximize", True, "False for a group holding hybrid parameters (the rule descends; "
                          "negate the loss to ascend)")


_READ_VALUES = operator.itemgetter("lr", "p", "k", "rounding", "sampler", "k_unit", "momentum", "weight_decay",
                                   "nesterov", "maximize")


def _group_values(group: dict) -> tuple:
    """What :func:`_check_group` reads: a step re-checks a group only when this differs from the values
    it last checked. A value equal to a checked one acts as it does (p=True after p=1), but for k,
    whose type is part of it (2.0 == 2, yet k counts inputs as an integer). A tensor lr is read as a
    number, since a scheduler may change it in place. lr comes first: a schedule that changes lr
    alone leaves ``[1:]`` as it was."""
    values = _READ_VALUES(group)
    if type(values[0]) is not float and torch.is_tensor(values[0]):
        values = (float(values[0]),) + values[1:]
    return values + (type(values[2]),)


def _check_group(index: int, group: dict, values: tuple, lr_only: bool = False) -> None:
    """The constructor's checks of a group's values, at a step: a ConfigError naming the group and field
    (``param_groups[0]['p']=0.0 is not allowed: …``) — they live in the group for a scheduler to set.
    ``lr_only``: nothing but lr changed since the last check (a schedule), so lr alone is checked."""
    try:
        if lr_only:
            _check_lr(values[0], at_step=True)
            return
        _check_rule(group, at_step=True)
        if any(isinstance(param, HybridParameter) for param in group["params"]):
            _check_hybrid_group(group)
    except ConfigError as error:
        raise ConfigError(f"param_groups[{index}][{error.field!r}]", error.value, error.allowed, reason=error.reason,
                          context=error.context) from None


_INPUTS = "an integer ≥ 1 (the inputs this step covered; by default the batch the layers recorded)"


def _check_inputs(inputs):
    """``step(inputs=…)`` as the count it adds to the transfer schedule: an int ≥ 1 (a numpy or torch
    integer scalar as its int), else a ConfigError — a negative, fractional or bool count had moved the
    schedule back, off the integers, or by one."""
    if inputs is None or (type(inputs) is int and inputs >= 1):
        return inputs
    count = inputs  # a bool is no count, though operator.index takes True and torch.tensor(True)
    if (not isinstance(inputs, bool) and str(getattr(inputs, "dtype", "")) not in ("bool", "torch.bool")
            and getattr(inputs, "ndim", 0) == 0):  # a scalar, not torch.tensor([6])
        try:
            count = operator.index(inputs)
        except TypeError:
            pass
    try:
        return check_number("inputs", count, lo=1, integer=True)
    except ConfigError:
        raise ConfigError("inputs", inputs, _INPUTS) from None


# What a param group of a HybridSGD state holds and a step reads, that no __setstate__ fills in: the
# rule's own settings (sampler and k_unit, added later, are given their old defaults there) and the
# SGD values torch's step reads (nesterov and maximize it defaults itself).
_SAVED_KEYS = ("lr", "momentum", "dampening", "weight_decay", "p", "k", "rounding")


def _check_saved_groups(groups) -> None:
    """A state to load (or an unpickled one) whose param groups lack what a HybridSGD's hold: one saved
    by torch.optim.SGD (an fp warm-up) or another optimizer. Loaded, it had failed at the next step
    (KeyError 'p'); refused before this optimizer changes."""
    for index, group in enumerate(groups):
        missing = [key for key in _SAVED_KEYS if key not in group]
        if missing:
            raise ConfigError("state_dict", f"param_groups[{index}] without {', '.join(missing)}", reason=(
                "not a HybridSGD state (one saved by torch.optim.SGD or another optimizer has none of the rule's "
                "settings): build the HybridSGD fresh instead of loading it — a plain optimizer's state holds none "
                "of the rule's counters (the inputs each hybrid parameter has seen), so there is nothing of the "
                "rule to resume; this optimizer is unchanged"))


def _refuse_ignored_inputs(groups: list, inputs) -> None:
    """``step(inputs=n)`` where a group holding hybrid parameters counts k in updates: ``_hybrid_step``
    adds 1 a step there whatever n says, so n is refused rather than silently dropped."""
    hybrid = [index for index, group in enumerate(groups)
              if any(isinstance(param, HybridParameter) for param in group["params"])]
    ignoring = [index for index in hybrid if groups[index].get("k_unit") == "updates"]
    if not ignoring:
        return
    why = "with k_unit='updates' one step is one update whatever its batch"
    if len(ignoring) == len(hybrid):
        raise ConfigError("inputs", inputs, reason=f"ignored: {why}, so no count of inputs reaches the transfer "
                          "schedule; leave inputs out (or build the optimizer with k_unit='inputs' to count inputs)")
    named = ", ".join(f"param_groups[{index}]" for index in ignoring)
    raise ConfigError("inputs", inputs, reason=f"ignored by {named} ({why}), while the other groups would count "
                      "it: leave inputs out (those count the batch the layers recorded), or give every group "
                      "holding hybrid parameters the same k_unit")


_SERIAL = itertools.count()  # the order HybridSGDs were built (or copied) in: the newest holds a parameter


def _label(param: HybridParameter) -> str:
    """A hybrid parameter as a message names it: its stream name (layer name + parameter)."""
    owner = param.owner
    name = owner.stream_name(param.slot)
    return name if owner.rng_name else f"{name} (of an unnamed {type(owner).__name__}, shape {tuple(param.shape)})"


class HybridSGD(SGD):
    """Args (beyond ``torch.optim.SGD``'s, which apply to plain parameters only):
        lr: learning rate (digest §4: 0.1 for MNIST).
        p: probability that a synapse is updated on a step (0.2 for MNIST; Fig. 6 uses 1).
        k: a transfer every k inputs (100; Fig. 6: 512): after each step in which the input count passes a
            multiple of k, at most once per step — a batch larger than k transfers once per step, fewer
            than inputs/k times (a FerristorWarning says so, once).
        k_unit: 'inputs' (a mini-batch of B counts B; the default) or 'updates' (a step counts 1).
        rounding: 'stochastic', 'nearest' or 'truncate' onto the hidden grid [I].
        sampler: how the Bernoulli(p) masks are drawn — 'dense' (a word per weight) or 'sparse'
            (geometric gaps: only masked-in weights draw); the same statistics, different streams
            (docs/engine.md, Randomness).
        plain: 'sgd' (update plain parameters with SGD) or 'error' (refuse them, naming each).

    One HybridSGD steps a hybrid parameter: the layer keeps one captured gradient, and the step that
    applies it consumes it. The newest HybridSGD holding a parameter holds it; an older one still
    holding it refuses to step (a ConfigError naming the layer, before anything moves) until the newer
    one is released or gone — then it steps again. Not refused at construction: ``opt =
    HybridSGD(model.parameters())`` run a second time (a notebook cell, an optimizer re-created to load
    a checkpoint) builds the new one while the old one is still bound, and an LR scheduler keeps it alive.
    """

    applies_hybrid_rule = True  # the optimizers nn/foreign_step.py lets step hybrid synapses
    # A GradScaler then leaves the step to this optimizer (setting grad_scale) instead of unscaling
    # .grad itself — which would miss the hybrid gradients and have them applied times the scale:
    # step() refuses it, naming it (_refuse_grad_scaler).
    _step_supports_amp_scaling = True

    def __init__(self, params: Iterable, lr: float = 0.1, p: float = 0.2, k: int = 100, rounding: str = "stochastic",
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, plain: str = "sgd", sampler: str = "dense", k_unit: str = "inputs"):
        check_choice("plain", plain, ("sgd", "error"))
        _check_lr(_lr({"lr": lr}))  # before torch's own check, which names no option
        self._plain_policy, self._ready = plain, False
        self._checked: list[tuple] = []  # each group's values as last checked (_check_groups)
        self._serial, self._superseded = next(_SERIAL), {}  # id → parameter a newer HybridSGD took (_take_over)
        self._warned_batch = False  # a step of more than k inputs (_hybrid_step): warned once
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize, foreach=False)
        self.defaults.update(p=p, k=k, rounding=rounding, sampler=sampler, k_unit=k_unit)
        self._ready = True
        for group in self.param_groups:
            self._setup_group(group)
        self._check_streams()

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        if self._ready:  # SGD.__init__ adds the first groups before the rule's defaults exist
            self._setup_group(self.param_groups[-1])
            self._check_streams()

    def _setup_group(self, group: dict) -> None:
        for key in ("p", "k", "rounding", "sampler", "k_unit"):
            group.setdefault(key, self.defaults[key])
        _check_rule(group)
        names = group.get("param_names") or [None] * len(group["params"])
        for param, name in zip(group["params"], names):
            if isinstance(param, HybridParameter):
                _check_hybrid_group(group)
                self._take_over(param)
                param.owner.capture_for(self)  # rank-1 factors instead of dense gradients, while this lives
            elif self._plain_policy == "error":
                label = name or f"a plain parameter of shape {tuple(param.shape)}"
                raise ConfigError("params", label, "hybrid parameters only (plain='error'); use HybridLinear/HybridConv2d "
                                  "or give plain parameters to another optimizer")

    def _holds(self, param: HybridParameter) -> bool:
        return any(q is param for group in self.param_groups for q in group["params"])

    def _take_over(self, param: HybridParameter) -> None:
        """This (newer) optimizer holds ``param``: an older HybridSGD holding it refuses to step from now."""
        for other in list(getattr(param.owner, "_captors", ())):
            if other is not self and isinstance(other, HybridSGD) and other._holds(param):
                other._superseded[id(param)] = param

    def _newer_holder(self, param: HybridParameter) -> bool:
        """Whether a HybridSGD built after this one holds ``param`` (alive and not released)."""
        return any(other is not self and isinstance(other, HybridSGD) and other._serial > self._serial
                   and other._holds(param) for other in list(getattr(param.owner, "_captors", ())))

    def check_ready(self) -> None:
        """What a step checks before anything moves (the groups' values; that no newer HybridSGD holds
        a parameter; that no layer's config changed since it was built): :meth:`step` and :meth:`hybrid_step` begin with it, and a loop that runs the rule
        without them (``experiments.fast_step``'s compiled chunks) calls it."""
        if self._superseded:
            self._check_holder()
        self._check_groups()
        self._check_configs()

    def _check_holder(self) -> None:
        """Refuse to step while a newer HybridSGD holds one of this one's hybrid parameters: its step
        takes the gradient, so this one's would change nothing. A parameter whose newer holder is gone
        or released is this one's again."""
        for key, param in list(self._superseded.items()):
            if not self._newer_holder(param):
                del self._superseded[key]
                param.owner.capture_for(self)
        if self._superseded:
            param = next(iter(self._superseded.values()))
            raise ConfigError("params", _label(param), reason="a HybridSGD built after this one holds this parameter "
                              "and its step takes the gradient, so this one's would change nothing: step the newer "
                              "one (or release() it, or let it go, for this one to step again)")

    def _check_streams(self) -> None:
        """Two parameters with the same seed and the same name would draw the same masks."""
        seen: dict[tuple[int, str], HybridParameter] = {}
        for group in self.param_groups:
            for param in group["params"]:
                if not isinstance(param, HybridParameter):
                    continue
                stream = param.owner.stream_name(param.slot)
                for seed in param.owner.seeds.tolist():
                    other = seen.setdefault((seed, stream), param)
                    if other is not param:
                        raise ConfigError("name", stream, "distinct layer names (name=… when built, layer.rename(…), or ferristor.nn.name_streams(model) "
                                          "to name every layer by its path) or seeds: two hybrid "
                                          f"parameters would share seed {seed}'s random stream")

    def _init_group(self, group, params, grads, momentum_buffer_list):
        # SGD's own step handles plain parameters only; the rule handles hybrid ones.
        plain = {**group, "params": [p for p in group["params"] if not isinstance(p, HybridParameter)]}
        return super()._init_group(plain, params, grads, momentum_buffer_list)

    def step(self, closure=None, inputs: int | None = None):
        """One step. ``inputs`` overrides the number of inputs this step covered (default: the batch
        size the layers recorded in the backward pass): an integer ≥ 1, refused where a group holding
        hybrid parameters counts k in updates (k_unit='updates'), which would ignore it."""
        inputs = self._inputs(inputs)
        self._refuse_grad_scaler()
        loss = None
        if closure is not None:  # the gradients first, so a non-finite one is refused before anything moves
            with torch.enable_grad():
                loss = closure()
        self.check_ready()
        self._check_gradients()
        super().step()
        self._apply_rule(inputs, caller_level=5)  # torch's profiling wrapper sits between step() and its caller
        return loss

    def _refuse_grad_scaler(self) -> None:
        """A step under an enabled ``GradScaler`` (it sets ``grad_scale``): its gradients are the loss
        scale times ∂L/∂W, and the hybrid ones, kept as factors, are not in the ``.grad`` it unscales
        or checks for inf — the rule would write them times the scale. Refused before anything moves."""
        if getattr(self, "grad_scale", None) is not None:
            for attr in ("grad_scale", "found_inf"):  # the scaler deletes them after a step that returns
                self.__dict__.pop(attr, None)
            raise ConfigError("GradScaler", "enabled", "disabled (GradScaler(enabled=False)) or absent with a "
                              "HybridSGD: the hybrid layers keep float32 state and gradients, so there is no "
                              "float16 underflow to scale against, and the scaled gradients they keep as factors "
                              "would reach the chip unscaled by it; the chip is unchanged")

    def _inputs(self, inputs):
        """``inputs=`` of a step, checked (an integer ≥ 1) and refused where a group would ignore it."""
        inputs = _check_inputs(inputs)
        if inputs is not None:
            _refuse_ignored_inputs(self.param_groups, inputs)
        return inputs

    def hybrid_step(self, inputs: int | None = None) -> None:
        """The rule's part of :meth:`step` alone (no plain SGD, no step hooks): ``experiments.fast_step``."""
        inputs = self._inputs(inputs)
        self.check_ready()
        self._check_gradients()
        self._apply_rule(inputs, caller_level=4)

    def _check_groups(self) -> None:
        """The groups' values as the constructor checks them, before anything moves: code or a
        scheduler may have set them since. A group is checked again only when its values differ from
        those last checked, and lr alone where nothing else changed. In a batch-1 loop of a 12×10
        layer (~120 µs an iteration, forward and backward included) ~1.5 µs a step, ~3 µs where a
        scheduler sets lr every step; the same at 784×200 (~270 µs), within the noise there."""
        checked = self._checked
        for index, group in enumerate(self.param_groups):
            values = _group_values(group)
            if index < len(checked):
                last = checked[index]
                if last == values:
                    continue
                _check_group(index, group, values, lr_only=last[1:] == values[1:])
                checked[index] = values
            else:
                _check_group(index, group, values)
                checked.append(values)

    def _check_configs(self) -> None:
        """A layer whose config was changed since it was built is refused before anything moves
        (``HybridModule.check_config``): its state was made under the config it was built with. Each
        layer once per step, not once per parameter (its weight and bias share the config)."""
        owners = {id(p.owner): p.owner for group in self.param_groups for p in group["params"]
                  if isinstance(p, HybridParameter)}
        for owner in owners.values():
            owner.check_config()

    def _check_gradients(self) -> None:
        """A NaN or infinite gradient of any hybrid parameter is refused before anything moves."""
        for group in self.param_groups:
            for param in group["params"]:
                if isinstance(param, HybridParameter):
                    param.owner.check_gradient(param.slot)

    def _apply_rule(self, inputs: int | None, caller_level: int) -> None:
        """caller_level: the warnings stack level, seen from _hybrid_step, of the code that called step()
        or hybrid_step(), so that a warning names the user's line."""
        for group in self.param_groups:
            for param in group["params"]:
                if isinstance(param, HybridParameter):
                    self._hybrid_step(param, group, inputs, caller_level)

    def release(self) -> None:
        """Stop capturing gradients for this optimizer's hybrid layers (as when it is deleted): another
        optimizer then finds ∂L/∂W in ``.grad`` as usual. ``fit`` releases the one it builds."""
        for group in self.param_groups:
            for param in group["params"]:
                if isinstance(param, HybridParameter) and param.owner is not None:
                    param.owner.capture_for(self, on=False)

    def __setstate__(self, state) -> None:
        # load_state_dict calls this with the loaded groups (after its pre-hooks, which may adapt a
        # state) before anything of this optimizer has changed
        _check_saved_groups(state.get("param_groups", ()))
        super().__setstate__(state)
        self._plain_policy, self._ready = self.__dict__.get("_plain_policy", "sgd"), True
        self._checked = []
        self._warned_batch = self.__dict__.get("_warned_batch", False)
        copied = "_serial" not in self.__dict__  # a copy or an unpickled one; not load_state_dict on this one
        if copied:  # the newest: it holds what it shares with the original (copy.copy)
            self._serial, self._superseded = next(_SERIAL), {}
        for group in self.param_groups:  # a state saved before the rule had these settings: their defaults
            group.setdefault("sampler", "dense")
            group.setdefault("k_unit", "inputs")
        for group in self.param_groups:  # a copied or unpickled optimizer captures for its (copied) layers
            for param in group["params"]:
                if isinstance(param, HybridParameter) and param.owner is not None:
                    if copied:
                        self._take_over(param)
                    param.owner.capture_for(self)

    def is_pure(self) -> bool:
        """True when every parameter is hybrid and no step hook is registered (but ferristor's own guard
        against plain optimizers, a no-op for this one: nn/foreign_step.py): then :meth:`hybrid_step`
        does all that :meth:`step` does."""
        from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

        from ..nn.foreign_step import is_guard
        return (all(isinstance(p, HybridParameter) for g in self.param_groups for p in g["params"])
                and not (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                         or any(not is_guard(h) for h in _global_optimizer_pre_hooks.values())
                         or _global_optimizer_post_hooks))

    def _hybrid_step(self, param: HybridParameter, group: dict, inputs: int | None, caller_level: int) -> None:
        owner, name = param.owner, param.slot
        seen = owner.hybrid_step_(name, lr=_lr(group), p=group["p"], rounding=group["rounding"],
                                  sampler=group["sampler"])
        if not seen:
            return
        state = self.state[param]
        before = state.get("inputs", 0)
        after = before + (1 if group["k_unit"] == "updates" else inputs if inputs is not None else seen)
        state["inputs"] = after
        k = group["k"]
        if owner.mode != "fp" and after // k > before // k:
            # one transfer however many multiples of k the step passed: the hidden weights changed once
            owner.program_(name)
            if after - before > k and not self._warned_batch:
                self._warned_batch = True
                warnings.warn(FerristorWarning(
                    f"less than the {after - before} inputs one step took: a step makes at most one transfer (a "
                    f"second one between the same two updates would write the same levels), so this run "
                    f"transfers once per step, fewer than once per k inputs (digest §5's N/k); a batch ≤ k "
                    f"transfers every k inputs", field="k", value=k), stacklevel=caller_level)

    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` for the gradients this optimizer is about to apply, chip by
        chip. torch's reads ``.grad``, which a hybrid parameter leaves None while its layer keeps the
        gradient as factors; this one reads what the layers keep (``HybridModule.gradient_norms``).
        Per replica: the ``norm_type``-norm over all this optimizer's gradients (the norm of the
        per-parameter norms, as torch forms it), and that replica's gradients scaled by
        ``max_norm / (norm + 1e-6)`` where this is below 1 — every chip clips its own, as R separate
        trainings would. Returns the norms before clipping, float32 (R,): one element for one chip.
        Plain parameters have no replica axis: their ``.grad`` joins the norm with one replica and is
        refused with several (clip those with torch's own)."""
        check_number("max_norm", max_norm, lo=0.0)
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or not norm_type > 0:
            raise ConfigError("norm_type", norm_type, "a number > 0, or float('inf')")
        hybrid = [p for g in self.param_groups for p in g["params"] if isinstance(p, HybridParameter)]
        plain = [p for g in self.param_groups for p in g["params"]
                 if not isinstance(p, HybridParameter) and p.grad is not None]
        replicas = sorted({p.owner.n_replicas for p in hybrid}) or [1]
        if len(replicas) > 1:
            raise ConfigError("replicas", replicas, "one replica count over the layers one optimizer clips (each "
                              "chip clips its own gradients)")
        if plain and replicas[0] > 1:
            raise ConfigError("clip_grad_norm_", f"a plain parameter of shape {tuple(plain[0].shape)}",
                              f"hybrid parameters only with {replicas[0]} replicas: each chip clips its own "
                              "gradients, and a plain parameter has no replica axis (clip it with "
                              "torch.nn.utils.clip_grad_norm_)")
        norms, named = [], []
        for p in hybrid:
            n = p.owner.gradient_norms(p.slot, norm_type)
            if n is not None:
                norms.append(n.float().cpu())
                named.append(_label(p))
        for p in plain:
            norms.append(torch.linalg.vector_norm(p.grad.detach(), norm_type).float().cpu().reshape(1))
            named.append(f"a plain parameter of shape {tuple(p.shape)}")
        if not norms:
            return torch.zeros(replicas[0])
        total = torch.linalg.vector_norm(torch.stack(norms), norm_type, dim=0)
        if error_if_nonfinite and not bool(torch.isfinite(total).all()):
            raise NonFiniteGradientError(next(name for name, n in zip(named, norms) if not torch.isfinite(n).all()))
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for p in hybrid:
            p.owner.scale_gradient_(p.slot, coef)
        for p in plain:
            p.grad.detach().mul_(coef[0].to(p.grad.device))
        return total

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:  # first: torch's zero_grad then reads .grad of nothing kept
            for param in group["params"]:
                if isinstance(param, HybridParameter):
                    param.owner._drop_gradient(param.slot)
        super().zero_grad(set_to_none)
