"""What every hybrid layer shares: parameters on hybrid synapses, their state in buffers, the update
and the transfer.

A hybrid parameter (:class:`HybridParameter`) holds the *analogue* weights — what the memristor
pairs hold and the forward/backward passes read. Everything else lives in the owning layer's
buffers, named after the parameter (for ``weight``): ``weight_hidden`` (the FeCAP integers,
float32 holding exact integers), ``weight_events`` (hidden-weight updates per synapse),
``weight_transfers`` (transfers per replica), ``weight_updates`` (the update counter that indexes
the random streams). So ``state_dict()`` is a complete snapshot of the chip and ``.to(device)``
moves all of it. Seeds (one per replica, an independent chip) are a buffer too.

Every tensor of a parameter has a *crossbar* view (R, I, O): R replicas, I rows (input lines),
O columns (outputs) — the layout the rule's kernels work on. The layers say how their logical
shapes map onto it.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import warnings
import weakref

import numpy as np
import torch
from torch import nn

from ..backend import backend_for, cpu_module, numba_for, triton_for
from ..circuit.devices import DeviceGroup
from ..circuit.ledger import LayerCounts, hybrid_groups, network_groups_report
from ..circuit.transfer import CounterNoise, TableTransfer, fused_transfer, make_transfer, split_sign, used_settings
from ..errors import ConfigError, FerristorWarning, NonFiniteGradientError
from ..rule import functional as F_rule
from ..rule.streams import STREAM_INIT, STREAM_TRANSFER, STREAM_UPDATE, check_seed, stream_keys
from . import foreign_step
from .config import MODES, HybridConfig, as_config

_FLUSH_EVERY = 250  # uint8 event counters are flushed into int64 before they can overflow
# backward passes a parameter records without a HybridSGD step before it warns: a loop that steps
# and clears only another optimizer (a warm-up) piles them up unseen
TAPE_WARN = 1000

foreign_step.register()  # plain optimizers may not step hybrid synapses (nn/foreign_step.py)
_AUTOGRAD_GRAD = torch._C.TensorBase.__dict__["grad"]  # the slot autograd fills, under HybridParameter.grad


class HybridParameter(nn.Parameter):
    """A parameter stored on hybrid FeCAP/memristor synapses. Its value is the analogue weight;
    ``owner`` is the layer that keeps its hidden state and ``slot`` its name there. Optimizers
    recognise it by type: :class:`ferristor.optim.HybridSGD` applies the rule to it."""

    def __new__(cls, data: torch.Tensor, owner: "HybridModule | None" = None, slot: str = ""):
        p = torch.Tensor._make_subclass(cls, data, True)
        p.owner, p.slot = owner, slot
        return p

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = HybridParameter(self.data.clone(memory_format=torch.preserve_format), None, self.slot)
        result.requires_grad_(self.requires_grad)
        memo[id(self)] = result  # before the owner, which refers back to this parameter
        result.owner = copy.deepcopy(self.owner, memo)
        return result

    def __reduce_ex__(self, protocol):
        # the owner goes in the state, restored after this object exists: it refers back to it
        return _rebuild_hybrid_parameter, (self.data, self.requires_grad, self.slot), {"owner": self.owner}

    def __setstate__(self, state):
        self.owner = state["owner"]

    # Assigning .grad replaces a parameter's gradient (None drops it), the one the layer keeps as
    # factors too: the step then applies the tensor assigned, or nothing, as torch's SGD would.
    # Reading is autograd's own .grad (None while a HybridSGD captures the factors); reading None while
    # a gradient is kept as factors says so once (clip_grad_norm_, GradScaler would miss it silently).
    @property
    def grad(self):
        grad = _AUTOGRAD_GRAD.__get__(self)
        owner = self.owner
        if grad is None and owner is not None and owner._tapes.get(self.slot) and not owner._moving:
            owner._warn_grad_kept(self.slot)
        return grad

    @grad.setter
    def grad(self, value):
        if self.owner is not None:
            self.owner._drop_gradient(self.slot, keep_inputs=value is not None)
        _AUTOGRAD_GRAD.__set__(self, value)

    @grad.deleter
    def grad(self):
        self.grad = None

    def __repr__(self):
        mode = self.owner.config.mode if self.owner is not None else "?"
        return f"HybridParameter({self.slot}, shape={tuple(self.shape)}, mode={mode})"


def _digest(obj) -> int:
    """A 56-bit tag of a JSON-able value (the settings a saved state carries): stable across runs and machines."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "little")


def _finite(tape, grad) -> bool:
    """Whether a recorded gradient is finite. A NaN or infinite one (a NaN input, a diverged loss)
    would write NaN into the hidden integers of every masked-in synapse and count the step as work,
    so the optimizer refuses it before the step's first update (:meth:`HybridModule.check_gradient`).
    Checked: both factors — x too: an input of −inf through a ReLU leaves δ finite, and x·δ is
    NaN — and a dense gradient whole (``kernels_cpu.all_finite``: ~1 µs a layer at batch 1)."""
    for entry in tape or ():
        for a in entry:
            if a is not None and not _finite_array(a):
                return False
    return grad is None or _finite_array(grad)


def _finite_array(a) -> bool:
    if torch.is_tensor(a) and (a.device.type != "cpu" or not numba_for(a)):
        return bool(torch.isfinite(a).all())
    return bool(cpu_module("rule.kernels_cpu").all_finite(_array(a)))


def _rebuild_hybrid_parameter(data, requires_grad, slot):
    p = HybridParameter(data, None, slot)
    p.requires_grad_(requires_grad)
    return p


def _is_config(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _config_parts(config, path: str = "config") -> list[tuple[str, object, dict]]:
    """The dataclasses of a layer's config that the layer reads — the config, its transfer, ledger,
    layout and scheme, and the transfer's device chain where the model is 'circuit' — each with a
    copy of its fields (nested configs by identity: each is compared on its own): what
    :meth:`HybridModule.check_config` compares the config with at each step."""
    fields = vars(config)
    parts = [(path, config, {k: v if _is_config(v) else copy.deepcopy(v) for k, v in fields.items()})]
    for key, value in fields.items():
        if _is_config(value) and not (key == "circuit" and getattr(config, "model", None) != "circuit"):
            parts += _config_parts(value, f"{path}.{key}")
    return parts


def _config_changes(config, parts) -> list[tuple[str, object, object]]:
    """(field path, value now, value when the layer was built) of every field of ``config`` that
    differs from what ``parts`` (:func:`_config_parts` when the layer was built) saw."""
    changes, compared = [], {path for path, _, _ in parts}
    for path, _, saved in parts:
        obj = config
        for key in path.split(".")[1:]:
            obj = getattr(obj, key, None)
        now = vars(obj) if _is_config(obj) else {}
        for key, before in saved.items():
            value = now.get(key, "(missing)")
            if f"{path}.{key}" in compared and type(value) is type(before):
                continue  # a nested config: compared field by field on its own
            if value is not before and value != before:
                changes.append((f"{path}.{key}", value, before))
    return changes


def _seed_list(seeds, replicas: int | None) -> list[int]:
    """Seeds of the replicas; drawn from torch's global generator when not given (as nn.Linear's init).
    An integer (Python's, numpy's, a 0-d integer tensor or array) or a sequence of them, one per replica."""
    n = replicas or 1
    if seeds is None:
        return [int(s) for s in torch.randint(0, 2 ** 62, (n,))]
    wanted = f"an integer in [0, 2^63) for one chip, or {n} of them, one per replica" if n > 1 else \
        "an integer in [0, 2^63)"
    if isinstance(seeds, (torch.Tensor, np.ndarray)):
        integral = not seeds.is_floating_point() and not seeds.is_complex() if isinstance(seeds, torch.Tensor) \
            else np.issubdtype(seeds.dtype, np.integer)
        if not integral or seeds.dtype in (torch.bool, np.bool_):
            raise ConfigError("seeds", f"a {seeds.dtype} {type(seeds).__name__}", wanted)
        seeds = seeds.tolist()
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, (bool, np.bool_)):
        seeds = [seeds]
    elif isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ConfigError("seeds", seeds, wanted)
    seeds = list(seeds)
    if len(seeds) != n:
        raise ConfigError("seeds", seeds, f"{n} seed(s), one per replica")
    return [check_seed(s) for s in seeds]


def positive_int(option: str, value) -> int:
    """A size argument as torch's layers take it: an integer ≥ 1 (numpy's too), as an int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(option, value, "an integer ≥ 1")
    return int(value)


class _Slot:
    """How one hybrid parameter's logical tensors map onto its (R, I, O) crossbar. ``kind``:
    'linear' (logical (O, I), stored as the (I, O) crossbar), 'bias' (logical (O,), one row driven
    by a constant input) or 'conv' (logical (O, C, kh, kw), crossbar (C·kh·kw, O))."""

    def __init__(self, kind: str, storage_shape: tuple[int, ...], single: bool):
        self.kind, self.storage_shape, self.single = kind, storage_shape, single

    def from_crossbar(self, c: torch.Tensor) -> torch.Tensor:
        """A crossbar tensor (R, I, O), e.g. a dense gradient, in the parameter's logical shape."""
        if self.kind == "linear":
            t = c.transpose(1, 2)
        elif self.kind == "bias":
            t = c[:, 0]
        else:
            t = c.transpose(1, 2).reshape(self.storage_shape)
        return t[0] if self.single else t

    def to_logical(self, storage: torch.Tensor) -> torch.Tensor:
        t = storage.transpose(-1, -2) if self.kind == "linear" else storage
        return t[0] if self.single else t

    def to_crossbar(self, t: torch.Tensor) -> torch.Tensor:
        if self.single:
            t = t.unsqueeze(0)
        if self.kind == "linear":
            return t.transpose(1, 2)
        if self.kind == "bias":
            return t.unsqueeze(1)
        return t.view(t.shape[0], t.shape[1], -1).transpose(1, 2)


def _flush_before_save(module, prefix, keep_vars):
    module.check_config()  # the buffers below are filled from the config
    module.flush_counts()
    module._store_settings()


def _forget_pending(module, incompatible_keys):
    """A loaded state holds every event (saving flushes first): events counted since, not yet
    flushed, belong to the state that was replaced."""
    for name in module._slots:
        module._buffers[f"{name}_pending"].zero_()
        module._since_flush[name] = 0
    module._tapes.clear()
    module._inputs.clear()


def name_streams(model: nn.Module, prefix: str = "") -> nn.Module:
    """Name every hybrid layer of ``model`` by its module path (``prefix`` + path), as ``convert``
    does: copies of one block (``nn.TransformerEncoder``'s clones, ``copy.deepcopy``) then draw their
    own masks and noise. Returns the model."""
    for path, m in model.named_modules():
        if isinstance(m, HybridModule):
            m.rename(prefix + path if prefix + path else type(m).__name__)
    return model


def _tensor(a):
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else a


def _array(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().numpy()


def _zero_grad(self, set_to_none: bool = True) -> None:
    """``nn.Module.zero_grad``, reaching the gradients hybrid layers keep as factors: a captured
    gradient leaves ``.grad`` None, which torch's zero_grad skips, and the next step would apply it."""
    for module in self.modules():
        if isinstance(module, HybridModule):
            module._tapes.clear()
            module._inputs.clear()
    _MODULE_ZERO_GRAD(self, set_to_none)


class HybridModule(nn.Module):
    """Base of the hybrid layers. Subclasses declare their parameters with :meth:`_add_hybrid` and
    record gradients with :meth:`_record_gradient`; the rest is shared."""

    def __init__(self, config: HybridConfig | None, replicas: int | None, seeds, name: str | None):
        super().__init__()
        if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1):
            raise ConfigError("replicas", replicas, "None (one chip) or an integer ≥ 1")
        # the layer's own copy, as a torch module owns its arguments: a config the caller goes on
        # changing (the next layer of a sweep) or gives several layers changes none of them
        self.config = copy.deepcopy(as_config(config))
        self._config_parts = _config_parts(self.config)
        self.replicas = replicas
        if name is not None and not isinstance(name, str):
            raise ConfigError("name", name, "a string (the layer's identity in the random streams) or None")
        self.rng_name = name or ""
        self.register_buffer("seeds", torch.tensor(_seed_list(seeds, replicas), dtype=torch.int64))
        # the layer's settings, one for all replicas (as its update counter): see _load_from_state_dict
        self.register_buffer("hidden_lsb", torch.tensor(float(self.config.hidden_lsb), dtype=torch.float64))
        self.register_buffer("settings", torch.tensor(self._settings_tag(), dtype=torch.int64))
        self.register_buffer("transfer_settings", torch.tensor(self._transfer_tag(), dtype=torch.int64))
        self.register_buffer("stream_settings", torch.tensor(self._stream_tag(), dtype=torch.int64))
        self._slots: dict[str, _Slot] = {}
        self._written: dict[str, tuple] = {}  # per parameter, its (version, storage) as the layer last wrote it
        self._loading = False  # inside load_state_dict, whose assign=True puts plain Parameters in
        self._tapes: dict[str, list] = {}
        self._inputs: dict[str, int] = {}
        self._since_flush: dict[str, int] = {}
        self._captors = weakref.WeakSet()  # the HybridSGDs holding a parameter of this layer (capture_factors)
        self._capture_override: bool | None = None
        self._keys_cache: dict = {}
        self._np_cache: dict = {}
        self._kernel_consts: dict = {}
        self._transfer_model = None
        self._scheme_runner = None  # a baseline rule's runner (nn.schemes), built on first use
        self.register_state_dict_pre_hook(_flush_before_save)
        self.register_load_state_dict_post_hook(_forget_pending)

    # --- who consumes the gradients --------------------------------------------------------------
    @property
    def capture_factors(self) -> bool:
        """True while a ``HybridSGD`` holding one of this layer's parameters is alive (or when set):
        backward then keeps the factors (x, δ) the rule's kernels consume instead of forming ∂L/∂W
        in ``.grad``; once no such optimizer is left, any other optimizer gets ``.grad`` as usual."""
        return bool(self._captors) if self._capture_override is None else self._capture_override

    @capture_factors.setter
    def capture_factors(self, value: bool | None) -> None:
        """Force capturing on or off (None: back to following the optimizers)."""
        self._capture_override = None if value is None else bool(value)

    def capture_for(self, optimizer, on: bool = True) -> None:
        """``optimizer`` (a HybridSGD) consumes this layer's captured gradients (``on``), or no longer does."""
        if on:
            self._captors.add(optimizer)
        else:
            self._captors.discard(optimizer)
            if not self._captors:
                self._tapes.clear()
                self._inputs.clear()

    def __getstate__(self):
        # the optimizers capturing for this layer belong to this object: a copy or an unpickled layer
        # captures for the HybridSGDs built on it (a copied or loaded HybridSGD registers itself)
        state = super().__getstate__()
        state["_captors"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._captors = weakref.WeakSet()
        if "_capture_override" not in self.__dict__:  # pickled when capturing was a plain flag
            self._capture_override = None
            self.__dict__.pop("capture_factors", None)
        if "_config_parts" not in self.__dict__:  # pickled before layers compared their config
            self._config_parts = _config_parts(self.config)
        if "transfer_settings" not in self._buffers:  # pickled before layers tagged their transfer
            self._buffers["transfer_settings"] = torch.tensor(self._transfer_tag(), dtype=torch.int64,
                                                              device=self._buffers["seeds"].device)
        if "stream_settings" not in self._buffers:  # pickled before layers tagged their stream name
            self._buffers["stream_settings"] = torch.tensor(self._stream_tag(), dtype=torch.int64,
                                                       device=self._buffers["seeds"].device)
        self._loading = False
        self._mark_written()  # a copy's or an unpickled layer's parameters are new tensors

    # --- what a saved state carries beside the chip's tensors --------------------------------------
    # Scalar buffers, filled whenever a state is saved: the grid's real scale (``convert`` may give each
    # layer its own) and tags of the mode, storage layout and rule that wrote the state, of its transfer
    # configuration and of its stream name. Tensors, not ``get_extra_state``: code that walks a
    # state_dict's values meets tensors only.
    def _settings_tag(self) -> int:
        c = self.config
        digest = _digest([dataclasses.asdict(c.layout), dataclasses.asdict(c.scheme)])
        return digest * 4 + MODES.index(c.mode)  # the mode in the low bits, to name it in a refusal

    def _transfer_tag(self) -> int:
        """A tag of the transfer configuration that programs the analogue weights: a state loaded from
        a layer of another one is not refused (evaluating a chip trained on one device on another is
        an experiment) but warned about (``_load_from_state_dict``)."""
        return _digest(used_settings(self.config.transfer))

    def _stream_tag(self) -> int:
        """A tag of the layer's stream name: a state loaded into a layer of another name continues on
        other random streams, so it is warned about (``_load_from_state_dict``)."""
        return _digest(self.rng_name)

    def _store_settings(self) -> None:
        self._buffers["stream_settings"].fill_(self._stream_tag())
        self._buffers["hidden_lsb"].fill_(float(self.config.hidden_lsb))
        self._buffers["settings"].fill_(self._settings_tag())
        self._buffers["transfer_settings"].fill_(self._transfer_tag())

    def check_config(self) -> None:
        """Refuse a config changed since the layer was built (``layer.config.hidden_lsb = …``): the
        layer's state was made under the one it was built with — hidden integers on its grid, buffers
        of its mode and layout, a transfer model built once — so a change would take effect in part,
        silently. A step (``HybridSGD``), ``state_dict()`` and the ledger call it; a few µs."""
        parts = self._config_parts
        if self.__dict__.get("config") is parts[0][1] and [obj.__dict__ for _, obj, _ in parts] == [
                saved for _, _, saved in parts]:
            return
        changes = _config_changes(self.config, parts)
        if not changes:  # replaced by an equal config, or changed and set back
            self._config_parts = _config_parts(self.config)
            return
        path, value, before = changes[0]
        shown = lambda v: f"a {type(v).__name__}" if _is_config(v) else v  # noqa: E731
        raise ConfigError(f"{self.rng_name or type(self).__name__}.{path}", shown(value),
                          reason=f"changed after the layer was built (it was {shown(before)!r}); a layer owns a copy "
                          "of the config it was given and holds state made under it (hidden integers on its grid, "
                          "buffers of its mode and layout, its transfer model), so the change would take effect in "
                          "part: build a new layer with the config you want (config.replace(…)), or set the field back")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """A state of another mode, storage layout or rule is refused (its integers or levels would be
        read as something else); one saved on another grid scale brings its scale along (the hidden
        integers are the chip's, their real value its LSB). A state saved before layers kept these
        loads as it did. ``assign=True`` keeps the parameters hybrid."""
        self.check_config()
        lsb_key, tag_key = prefix + "hidden_lsb", prefix + "settings"
        my_tag, my_lsb = self._settings_tag(), float(self.config.hidden_lsb)
        state_dict = {**state_dict}
        saved_tag = state_dict.setdefault(tag_key, torch.tensor(my_tag))
        saved_lsb = state_dict.setdefault(lsb_key, torch.tensor(my_lsb, dtype=torch.float64))
        saved_tag = int(saved_tag.reshape(-1)[0]) if torch.is_tensor(saved_tag) and saved_tag.numel() else my_tag
        saved_lsb = float(saved_lsb.reshape(-1)[0]) if torch.is_tensor(saved_lsb) and saved_lsb.numel() else my_lsb
        if saved_tag != my_tag:
            saved_mode, here = MODES[saved_tag % 4] if saved_tag % 4 < len(MODES) else "?", self.mode
            raise ConfigError("state_dict", f"mode={saved_mode!r}" if saved_mode != here else "another storage layout or rule",
                              f"a state saved by a layer of the same mode, storage layout and rule (mode={here!r} here)",
                              context={"layer": self.rng_name or type(self).__name__})
        my_transfer = self._transfer_tag()
        saved_transfer = state_dict.setdefault(prefix + "transfer_settings", torch.tensor(my_transfer))
        if (self.mode != "fp" and torch.is_tensor(saved_transfer) and saved_transfer.numel()
                and int(saved_transfer.reshape(-1)[0]) != my_transfer):
            t = self.config.transfer
            warnings.warn(f"{self.rng_name or type(self).__name__}: the loaded state's analogue weights were programmed "
                          f"by another transfer configuration than this layer's (model {t.model!r} here); its next "
                          "transfers use this layer's", FerristorWarning, stacklevel=3)
        saved_stream = state_dict.setdefault(prefix + "stream_settings", torch.tensor(self._stream_tag()))
        if torch.is_tensor(saved_stream) and saved_stream.numel() and int(saved_stream.reshape(-1)[0]) != self._stream_tag():
            warnings.warn(f"{self.rng_name or type(self).__name__}: the loaded state was trained by a layer of another "
                          f"stream name than this one ({self.rng_name!r}); from here it draws this name's masks and "
                          "noise, so a resumed run does not continue the saved one (build the layer with the saved "
                          "layer's name= to continue it)", FerristorWarning, stacklevel=3)
        for name in self._slots:
            if prefix + name in state_dict and self.mode != "fp" and not any(
                    prefix + key in state_dict for key in self._state_keys(name)):
                error_msgs.append(
                    f"{prefix + name}: a hybrid parameter's value without its synapses' state ({prefix + name}_hidden, "
                    "…), as a float model's state_dict holds: the value is what the memristor pairs hold, derived from "
                    "that state, and the next transfer would overwrite it. Load float weights with "
                    f"ferristor.convert(float_model) or layer.set_float_weights_({name!r}, values)")
                return
        self._loading = True  # assign=True sets plain Parameters, made hybrid again below
        try:
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                          error_msgs)
        finally:
            self._loading = False
        if saved_lsb != my_lsb:
            self.config = self.config.replace(hidden_lsb=saved_lsb)
            self._config_parts = _config_parts(self.config)
            self._kernel_consts.clear()
            self._transfer_model = self._scheme_runner = None
        for name in self._slots:  # load_state_dict(assign=True) puts plain Parameters in: keep them hybrid
            p = self._parameters.get(name)
            if p is not None and not isinstance(p, HybridParameter):
                hybrid = HybridParameter(p.data, self, name)
                hybrid.requires_grad_(p.requires_grad)
                self._parameters[name] = hybrid
        self._np_cache.clear()
        self._mark_written()

    def _state_keys(self, name: str) -> list[str]:
        """The persistent buffers that hold parameter ``name``'s synapses' state."""
        return [key for key in self._buffers if key.startswith(name + "_") and key not in self._non_persistent_buffers_set]

    # --- the parameters' values are the layer's to write --------------------------------------------
    # A hybrid parameter's value is what the memristor pairs hold, written by the transfers from the
    # hidden integers. A write from outside (nn.init.*, weight.copy_, weight.data = …) would leave those
    # integers as they were and be overwritten at the next transfer, silently: it is refused at the
    # next use. The layer's own writes go through .data or numpy views, which bump no version counter.
    def _mark_written(self, name: str | None = None) -> None:
        for n in ([name] if name else list(self._slots)):
            p = self._parameters.get(n)
            if p is not None:
                self._written[n] = (p._version, p.data_ptr())

    def check_written(self, name: str | None = None) -> None:
        """Refuse a parameter (``name``, else every one) written from outside the layer since it last
        wrote it (see above), before any work. In fp mode the float weights are the whole state: any
        write stands."""
        if self.mode == "fp":
            return
        for name, seen in (self._written.items() if name is None else [(name, self._written.get(name))]):
            p = self._parameters.get(name)
            if p is not None and seen is not None and (p._version, p.data_ptr()) != seen:
                layer = self.rng_name or type(self).__name__
                raise ConfigError(f"{layer}.{name}", "written from outside the layer (nn.init, copy_, .data = …)",
                                  reason="a hybrid parameter's value is what its memristor pairs hold, programmed from "
                                  "the hidden FeCAP integers, which the write left as they were: the next transfer "
                                  f"would undo it. Set values with layer.set_float_weights_({name!r}, values), which "
                                  "maps them onto the hidden grid and programs them (or ferristor.convert a float "
                                  "model)")

    def register_parameter(self, name: str, param) -> None:
        """A hybrid parameter stays hybrid: a plain ``nn.Parameter`` assigned in its place would be
        trained by plain SGD as a float weight while the layer's state and ledger went on as if hybrid."""
        slots = self.__dict__.get("_slots", {})
        if (name in slots and param is not None and not self._loading
                and not (isinstance(param, HybridParameter) and param.owner is self)):
            layer = self.rng_name or type(self).__name__
            raise ConfigError(f"{layer}.{name}", f"a {type(param).__name__} assigned in place of the layer's own",
                              reason="a hybrid layer's parameters are its own synapses: set their values with "
                              f"layer.set_float_weights_({name!r}, values), or build a float layer instead")
        super().register_parameter(name, param)
        if name in slots:
            self._mark_written(name)

    # --- declaration ----------------------------------------------------------------------------
    @property
    def n_replicas(self) -> int:
        return self.replicas or 1

    @property
    def mode(self) -> str:
        return self.config.mode

    def _add_hybrid(self, name: str, slot: _Slot, device) -> HybridParameter:
        """Register parameter ``name`` and its buffers (all zero until :meth:`reset_parameters`)."""
        self._slots[name] = slot
        new = lambda dtype: slot.to_logical(torch.zeros(slot.storage_shape, dtype=dtype, device=device))  # noqa: E731
        param = HybridParameter(new(torch.float32), self, name)
        self.register_parameter(name, param)
        if self.mode != "fp" and not self.config.scheme.is_hybrid:  # a baseline rule's own state (nn.schemes)
            from .schemes import buffers, scalar_buffers
            for kind, dtype in buffers(self.config.scheme).items():
                self.register_buffer(f"{name}_{kind}", new(dtype))
            for kind in scalar_buffers(self.config.scheme):
                self.register_buffer(f"{name}_{kind}", torch.zeros((), dtype=torch.int64, device=device))
        elif self.mode != "fp":
            self.register_buffer(f"{name}_hidden", new(torch.float32))
            if not self.config.ledger.transfer_writes_unchanged:
                self.register_buffer(f"{name}_level_code", new(torch.int16))
                self.register_buffer(f"{name}_skips", new(torch.int64))
        self.register_buffer(f"{name}_pending", new(torch.uint8), persistent=False)
        self.register_buffer(f"{name}_events", new(torch.int64))
        self.register_buffer(f"{name}_transfers", torch.zeros(self.n_replicas, dtype=torch.int64, device=device))
        self.register_buffer(f"{name}_updates", torch.zeros((), dtype=torch.int64, device=device))
        self._since_flush[name] = 0
        return param

    def hybrid_names(self) -> tuple[str, ...]:
        return tuple(n for n in self._slots if self._parameters.get(n) is not None)

    def crossbar(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """The (R, I, O) view of a logical tensor of parameter ``name`` (its value, a buffer, a gradient)."""
        return self._slots[name].to_crossbar(tensor)

    def _buf(self, name: str, kind: str) -> torch.Tensor:
        return self._buffers[f"{name}_{kind}"]

    def stream_name(self, name: str) -> str:
        """The parameter's identity in the random streams: the layer's name + the parameter's."""
        return f"{self.rng_name}.{name}" if self.rng_name else name

    def rename(self, name: str) -> None:
        """Give the layer another stream name (``name=`` of its constructor): its next updates and
        transfers draw from streams of that name; the values it holds stay. For copies of one layer
        (``copy.deepcopy`` of a block), which would otherwise share every draw — see :func:`name_streams`."""
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "a non-empty string")
        self.rng_name = name
        self._keys_cache.clear()
        self._np_cache.clear()

    def stream_keys(self, name: str, stream: int) -> np.ndarray:
        """uint32 (R, 2) keys of (seed, parameter, stream); cached while the seeds are unchanged."""
        tag = (name, stream, id(self.seeds), self.seeds._version)
        keys = self._keys_cache.get(tag)
        if keys is None:
            self._keys_cache = {k: v for k, v in self._keys_cache.items() if k[2:] == tag[2:]}
            keys = self._keys_cache[tag] = stream_keys(self.seeds.tolist(), self.stream_name(name), stream)
        return keys

    # --- initial values and programming -----------------------------------------------------------
    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initial values drawn per replica from its seed (``init_shape``: uniform on ±init_scale·511
        LSBs, or normal with the same variance), then
        one programming of the memristors; every counter back to zero."""
        for name in self.hybrid_names():
            self._reset_counters(name)
            bound = round(self.config.init_scale * self.config.layout.max_hidden)
            lsb, m = self.config.hidden_lsb, self.config.layout.max_hidden
            fp = self.mode == "fp"
            if self.config.init_shape == "normal":
                # The uniform's variance (σ = bound/√3), saturated where the hidden grid ends.
                sigma = bound / np.sqrt(3.0)
                z = self._normals(name, STREAM_INIT, 1)
                h = (z * (sigma * lsb)).clamp_(-m * lsb, m * lsb) if fp else torch.round(z * sigma).clamp_(-m, m)
            else:
                z = self._words(name, STREAM_INIT, 0)
                if fp:
                    h = ((z >> 8).to(torch.float32) * (1.0 / 16777216.0) * 2 - 1) * (bound * lsb)
                else:
                    h = ((z * (2 * bound + 1)) >> 32) - bound  # uniform integer in [−bound, bound]
            if fp:
                self.crossbar(name, self._parameters[name].data).copy_(h)
            else:
                if not self.config.scheme.is_hybrid:
                    self.scheme_runner.init_(self, name, h.to(torch.float32))
                    continue
                self.crossbar(name, self._buf(name, "hidden")).copy_(h.to(torch.float32))
                self.program_(name, initial=True)
        self._mark_written()

    @torch.no_grad()
    def set_float_weights_(self, name: str, weight: torch.Tensor, lsb: float | None = None) -> None:
        """Map float weights (logical shape) onto the hidden grid — round to nearest, saturate at
        ±max — and program them (``convert``). ``lsb``: real value of one LSB (default: the config's)."""
        param = self._parameters[name]
        if tuple(weight.shape) != tuple(param.shape[-weight.dim():]):
            raise ConfigError(f"{name} shape", tuple(weight.shape), f"{tuple(param.shape)} (the layer's)")
        self._reset_counters(name)
        w = weight.detach().to(param.device, torch.float32).expand_as(param)
        if self.mode == "fp":
            param.data.copy_(w)
            return
        lsb = lsb or self.config.hidden_lsb
        m = self.config.layout.max_hidden
        if not self.config.scheme.is_hybrid:
            self.scheme_runner.init_(self, name, self.crossbar(name, torch.round(w / lsb).clamp_(-m, m)))
            return
        self._buf(name, "hidden").copy_(torch.round(w / lsb).clamp_(-m, m))
        self.program_(name, initial=True)
        self._mark_written(name)

    def _reset_counters(self, name: str) -> None:
        for kind in ("pending", "events", "transfers", "updates", "skips", "writes", "fast_writes", "fast_resets", "cursor"):
            buf = self._buffers.get(f"{name}_{kind}")
            if buf is not None:
                buf.zero_()
        self._since_flush[name] = 0
        self._tapes.pop(name, None)
        self._inputs.pop(name, None)

    def _words(self, name: str, stream: int, step: int) -> torch.Tensor:
        """int64 (R, I, O) counter-based words of every synapse of ``name``."""
        keys = self.stream_keys(name, stream)
        n_rep, n_in, n_out = self.crossbar(name, self._parameters[name]).shape
        device = self._parameters[name].device
        if backend_for(device) == "numba":
            from ..rule.random_cpu import words
            return torch.from_numpy(words(keys, np.arange(n_in, dtype=np.int64), n_out, step).astype(np.int64))
        from ..rule.random_torch import words
        kt = torch.from_numpy(keys.astype(np.int64)).to(device)
        return words(kt, torch.arange(n_in, device=device), torch.arange(n_out, device=device), step)

    def _normals(self, name: str, stream: int, step: int) -> torch.Tensor:
        """float32 (R, I, O) counter-based standard normals of every synapse of ``name``."""
        keys = self.stream_keys(name, stream)
        n_rep, n_in, n_out = self.crossbar(name, self._parameters[name]).shape
        device = self._parameters[name].device
        if backend_for(device) == "numba":
            from ..rule.random_cpu import normals
            return torch.from_numpy(normals(keys, np.arange(n_in, dtype=np.int64), n_out, step))
        from ..rule.random_torch import normals
        kt = torch.from_numpy(keys.astype(np.int64)).to(device)
        return normals(kt, torch.arange(n_in, device=device), n_out, step)

    @property
    def scheme_runner(self):
        """The runner of a baseline rule (``nn.schemes``); None for the hybrid rule and fp."""
        if self._scheme_runner is None and self.mode != "fp" and not self.config.scheme.is_hybrid:
            from .schemes import SchemeRunner
            self._scheme_runner = SchemeRunner(self)
        return self._scheme_runner

    @property
    def transfer_model(self):
        if self._transfer_model is None and self.mode != "fp":
            self._transfer_model = make_transfer(self.config.transfer, self.config.layout.max_level)
        return self._transfer_model

    @torch.no_grad()
    def program_(self, name: str, *, initial: bool = False) -> None:
        """Transfer sign + MSBs of every hidden weight of ``name`` into its memristor pairs (digest §3).
        The noise of transfer n (0 = the initial programming) is drawn from counter n of the transfer
        stream, so it depends on the chip's history only."""
        if self.scheme_runner is not None:  # a baseline rule: its periodic part (every k inputs)
            if not initial:
                self.scheme_runner.transfer_(self, name)
            return
        transfers = self._buf(name, "transfers")
        if transfers.device.type == "cpu":  # a numpy view: ~1 µs to read and count, against ~8 for the tensor
            arrays = self._cpu_arrays(name)
            transfers, bound = arrays["transfers"], self._bound_cpu_transfer(name, arrays)
            if bound is not None:  # at k = 1 a transfer runs every step: the kernel, without its preparation
                bound(0 if initial else int(transfers[0]) + 1)
                if not initial:
                    transfers += 1
                return
        self.write_transfer_(name, CounterNoise(self.stream_keys(name, STREAM_TRANSFER),
                                                0 if initial else int(transfers[0]) + 1), initial=initial)
        if not initial:
            transfers += 1

    def _bound_cpu_transfer(self, name: str, arrays: dict):
        """The fused CPU transfer of ``name`` with its arguments prepared (``bind_hidden_cpu``), kept
        with the cached views (``_cpu_arrays``: new views, new binding); None where
        :meth:`write_transfer_` takes another path."""
        bound = arrays.get("transfer")
        model = self.transfer_model
        if bound is None or bound[0] is not model:
            run = None
            if (numba_for(self._parameters[name]) and fused_transfer(model)
                    and self.config.ledger.transfer_writes_unchanged):  # write_transfer_'s fused CPU path
                cfg = self.config
                run = model.bind_hidden_cpu(arrays["hidden"], cfg.layout.level_shift, cfg.level_step,
                                            self.stream_keys(name, STREAM_TRANSFER), arrays["param"])
            bound = arrays["transfer"] = (model, run)
        return bound[1]

    def transfer_capturable(self, name: str) -> bool:
        """Whether a CUDA graph may capture :meth:`write_transfer_` of ``name`` (``nn.train_gpu``): the
        fused GPU transfer, which reads its noise counter from the device (``CounterNoise.on_device``),
        or tensor operations that draw nothing (σ = 0: a fixed function of the hidden weights)."""
        model = self.transfer_model
        if self.mode == "fp" or self.scheme_runner is not None:
            return False
        return self._fused_gpu_transfer(name) or (isinstance(model, TableTransfer) and model.sigma == 0)

    def _fused_gpu_transfer(self, name: str) -> bool:
        return (fused_transfer(self.transfer_model) and self.config.ledger.transfer_writes_unchanged
                and triton_for(self._parameters[name]))

    @torch.no_grad()
    def write_transfer_(self, name: str, noise: CounterNoise | None, *, initial: bool = False) -> None:
        """The memristor writes of one transfer (:meth:`program_` without its counter)."""
        cfg, layout = self.config, self.config.layout
        model = self.transfer_model
        if (backend_for(self._parameters[name].device) == "numba" and fused_transfer(model)
                and cfg.ledger.transfer_writes_unchanged):
            arrays = self._cpu_arrays(name)  # cached views: at k = 1 a transfer runs every step
            model.program_hidden_cpu_(arrays["hidden"], layout.level_shift, cfg.level_step, noise, arrays["param"])
            return
        hidden = self.crossbar(name, self._buf(name, "hidden"))
        analogue = self.crossbar(name, self._parameters[name].data)
        if self._fused_gpu_transfer(name):
            model.program_hidden_triton_(hidden, layout.level_shift, cfg.level_step, noise, analogue)
        else:
            sign, magnitude = split_sign(hidden, layout.level_shift)
            value = model.program(sign, magnitude, noise).mul_(cfg.level_step)
            if cfg.ledger.transfer_writes_unchanged:
                analogue.copy_(value)
            else:
                code = self.crossbar(name, self._buf(name, "level_code"))
                new_code = (magnitude * 2 + (hidden < 0)).to(torch.int16)
                if initial:
                    analogue.copy_(value)
                else:
                    changed = new_code != code
                    analogue.copy_(torch.where(changed, value, analogue))
                    self.crossbar(name, self._buf(name, "skips")).add_(~changed)
                code.copy_(new_code)

    # --- gradients and the update -------------------------------------------------------------------
    def _record_gradient(self, name: str, inputs: int, x=None, delta=None, dense=None) -> torch.Tensor | None:
        """Called by a layer's backward: keep the factors x (R, B, I) [None: the constant bias input]
        and δ (R, B, O), or a dense crossbar gradient (R, I, O), when an optimizer captures them;
        else return the dense crossbar gradient for ordinary autograd. Factors may be tensors or numpy
        arrays (the fused CPU pass hands numpy)."""
        self._inputs[name] = self._inputs.get(name, 0) + inputs
        if self.capture_factors:
            tape = self._tapes.setdefault(name, [])
            tape.append((x, delta, dense))
            param = self._parameters[name]
            if param._backward_hooks or param._post_accumulate_grad_hooks:
                self._warn_tensor_hooks(name)
            if len(tape) == TAPE_WARN:
                warnings.warn(f"{self.stream_name(name)}: {TAPE_WARN:,} gradients recorded and no HybridSGD step has "
                              "consumed them; they accumulate (as .grad would) and hold memory. Call opt.zero_grad() "
                              "of the HybridSGD, or model.zero_grad(), to drop them",
                              FerristorWarning, stacklevel=2)
            return None
        return dense if dense is not None else self._dense_from_factors(_tensor(x), _tensor(delta))

    def _warn_tensor_hooks(self, name: str) -> None:
        """Tensor hooks on a parameter whose gradient is kept as factors are called with None (torch
        calls them with the gradient the layer returns), or not at all where a fused pass hands the
        factors over without autograd: say so, and what works instead. Python shows
        a warning once per message: once per parameter."""
        warnings.warn(f"{self.stream_name(name)}: its tensor hooks (register_hook, register_post_accumulate_grad_hook) "
                      "are called with None (not at all in a fused training pass, which runs no autograd) — and .grad "
                      "stays None — while a HybridSGD holds this layer: the rule "
                      "keeps the gradient as what its kernels consume, not as ∂L/∂W. Hook the layer instead: "
                      "layer.register_full_backward_pre_hook(lambda m, grad_output: …) sees ∂L/∂output and may return "
                      "a replacement, which the rule and the layers below then take; or release the HybridSGD "
                      "(opt.release()) to have .grad filled for tensor hooks", FerristorWarning)

    def _warn_grad_kept(self, name: str) -> None:
        """``.grad`` read as None while the gradient is kept as factors: code that clips, scales or
        inspects ``.grad`` would skip this parameter without a word. Once per parameter (per message)."""
        warnings.warn(f"{self.stream_name(name)}: .grad reads None, but this parameter has a gradient: a HybridSGD "
                      "holds the layer, which keeps it as what the rule's kernels consume (factors x, δ), not in "
                      ".grad — so torch.nn.utils.clip_grad_norm_, GradScaler or code reading .grad leave it out. To "
                      "clip it, use the optimizer's opt.clip_grad_norm_(max_norm) (chip by chip, from what the layers "
                      "keep); to scale or change it, hook the layer: layer.register_full_backward_pre_hook(lambda m, "
                      "g: (g[0].clamp(-c, c),)) changes ∂L/∂output, which the rule then takes; or release the "
                      "HybridSGD (opt.release()) to have .grad filled", FerristorWarning, stacklevel=3)

    def _hand_over(self, name: str, x, delta, use: str | None) -> torch.Tensor | None:
        """A parameter's gradient from its factors x (R, B, I) [None: a bias] and δ (R, B, O), as
        ``autograd_util.grad_use`` says: ``"record"`` (kept for the optimizer, or formed for autograd
        when no optimizer captures), ``"return"`` (formed for ``torch.autograd.grad``, not kept) or
        None (nothing) → the gradient in the parameter's shape, or None."""
        if use == "record":
            dense = self._record_gradient(name, delta.shape[1], x=x, delta=delta)
        elif use == "return":
            dense = self._dense_from_factors(_tensor(x) if x is not None else None, _tensor(delta))
        else:
            return None
        return self._slots[name].from_crossbar(dense) if dense is not None else None

    def _dense_from_factors(self, x, delta) -> torch.Tensor:
        if x is None:  # bias: the constant input 1
            return delta.clone() if delta.shape[1] == 1 else delta.sum(1, keepdim=True)  # B = 0 too: zeros
        if backend_for(delta.device) == "numba":
            outer_sum = cpu_module("nn.passes_cpu").outer_sum
            out = torch.empty(x.shape[0], x.shape[2], delta.shape[2])
            outer_sum(x.numpy(), delta.numpy(), out.numpy())
            return out
        return torch.bmm(x.transpose(1, 2), delta)

    def _drop_gradient(self, name: str, keep_inputs: bool = False) -> None:
        """Drop the gradient parameter ``name`` recorded as factors (zero_grad, an assigned ``.grad``);
        ``keep_inputs``: the inputs it covered still count (a ``.grad`` assigned in its place)."""
        self._tapes.pop(name, None)
        if not keep_inputs:
            self._inputs.pop(name, None)

    _HOST_COUNTERS = ("updates", "transfers")
    _moving = False  # inside _apply (a .to()), whose reads of .grad are torch's own

    def _apply(self, fn, recurse=True):
        """``.to(device)`` and friends: the per-synapse state moves; the update and transfer counters
        stay on the host — they index the random streams and are read every step, and reading a GPU
        scalar would stall the GPU once per parameter and step. The synapses' state stays float32 (exact
        integers, the kernels' type): ``.double()``, ``.half()``, ``.to(torch.bfloat16)`` are refused."""
        dtype = fn(torch.zeros(1)).dtype  # what the call does to a float32 tensor (a move keeps float32)
        if dtype != torch.float32:
            raise ConfigError("dtype", str(dtype).replace("torch.", ""), "float32 for a hybrid layer (its synapses' "
                              "state is float32 holding exact integers); convert the other layers one by one, or the "
                              "inputs with .float(). torch converts a model's layers in order, so those before this "
                              "one are already converted: model.float() brings them back (a float16 or bfloat16 "
                              "cast has rounded them)", context={"layer": self.rng_name or type(self).__name__})
        host = {k: b for name in self._slots for kind in self._HOST_COUNTERS
                if (b := self._buffers.get(k := f"{name}_{kind}")) is not None}
        self._moving = True  # torch's _apply reads each .grad: no note on gradients kept as factors
        try:
            out = super()._apply(fn, recurse)
        finally:
            self._moving = False
        for key, before in host.items():
            if not self._buffers[key].is_cpu:
                self._buffers[key] = before
        # the crossbar views (``_Slot.to_crossbar``) and the kernels need the standard layout:
        # ``.to(memory_format=torch.channels_last)`` converts the rest of a model and leaves this one's
        for param in self._parameters.values():
            if param is not None and not param.is_contiguous():
                param.data = param.data.contiguous()
        for key, buf in self._buffers.items():
            if buf is not None and not buf.is_contiguous():
                self._buffers[key] = buf.contiguous()
        self._np_cache.clear()
        self._mark_written()
        return out

    def check_gradient(self, name: str) -> None:
        """Refuse a NaN or infinite recorded gradient of parameter ``name`` (``_finite``), before any
        update of the step (``HybridSGD.hybrid_step`` checks every parameter first)."""
        if not _finite(self._tapes.get(name), _AUTOGRAD_GRAD.__get__(self._parameters[name])):
            raise NonFiniteGradientError(self.stream_name(name))

    def gradient_norms(self, name: str, norm_type: float = 2.0) -> torch.Tensor | None:
        """Per replica (chip), the ``norm_type``-norm of the gradient parameter ``name`` keeps for the
        rule — its recorded factors summed into ∂L/∂W, and a ``.grad`` assigned — as float32 (R,),
        what ``torch.linalg.vector_norm`` gives for that chip's ∂L/∂W; None where it keeps none."""
        with torch.no_grad():
            tape = [(_tensor(x), _tensor(d), g) for x, d, g in self._tapes.get(name) or ()]
            grad = _AUTOGRAD_GRAD.__get__(self._parameters[name])
            if grad is not None:
                tape.append((None, None, self.crossbar(name, grad)))
            if not tape:
                return None
            dense = self._dense_sum(tape)
            return torch.linalg.vector_norm(dense.reshape(dense.shape[0], -1), norm_type, dim=1)

    def scale_gradient_(self, name: str, coef: torch.Tensor) -> None:
        """Multiply the gradient parameter ``name`` keeps by ``coef`` (R,), replica by replica: each
        recorded δ or dense gradient (new arrays: the fused pass may hand views of its buffers) and a
        ``.grad`` assigned (in place, as ``clip_grad_norm_`` does)."""
        c = coef.detach().to(torch.float32).reshape(-1, 1, 1)
        tape = self._tapes.get(name)
        if tape:
            def scaled(a):
                if a is None:
                    return None
                return a * c.numpy() if isinstance(a, np.ndarray) else a * c.to(a.device)
            self._tapes[name] = [(x, scaled(d), scaled(g)) for x, d, g in tape]
        grad = _AUTOGRAD_GRAD.__get__(self._parameters[name])
        if grad is not None:
            with torch.no_grad():
                self.crossbar(name, grad).mul_(c.to(grad.device))

    def hybrid_step_(self, name: str, *, lr: float, p: float, rounding: str, sampler: str = "dense") -> int:
        """Apply one masked update to parameter ``name`` from its recorded gradient; returns the number
        of inputs it covered (0 if the parameter took no gradient since the last step). ``sampler``:
        how the masks are drawn ('dense' or 'sparse', docs/engine.md)."""
        self.check_written(name)  # this parameter's: a step runs one per parameter
        param = self._parameters[name]
        tape = self._tapes.pop(name, None)
        recorded = name in self._inputs
        inputs = self._inputs.pop(name, 0)
        if recorded and not inputs:  # the gradient of an empty batch: it covered no input, no step
            return 0
        if tape is not None and len(tape) == 1 and param.grad is None and numba_for(param):
            x, delta, dense = tape[0]
            runner = self.scheme_runner
            # the hybrid rule: a convolution's dense gradient, or batch-1 factors; a baseline: batch-1
            # factors, on its fused kernels (the table transfer model)
            if (dense is not None or delta.shape[1] == 1) if runner is None else \
                    (dense is None and delta.shape[1] == 1 and runner.fused(self, name)):
                self._update_cpu(name, x, delta, dense, lr, p, rounding, sampler)
                return inputs
        tape = [(_tensor(x), _tensor(d), g) for x, d, g in (tape or [])]
        if param.grad is not None:
            tape.append((None, None, self.crossbar(name, param.grad)))
            inputs = max(inputs, 1)
        if not tape:
            return 0
        with torch.no_grad():
            factors = self._gradient_factors(tape)
            keys = self.stream_keys(name, STREAM_UPDATE)
            updates = self._buf(name, "updates")
            pending = self.crossbar(name, self._buf(name, "pending"))
            if self.mode == "fp":
                F_rule.fp_update_(self.crossbar(name, param.data), pending, keys, int(updates), lr=lr, p=p,
                                  sampler=sampler, **factors)
            elif self.scheme_runner is not None:
                self.scheme_runner.step_(self, name, factors, lr, p, rounding)
            else:
                cfg = self.config
                F_rule.hybrid_update_(self.crossbar(name, self._buf(name, "hidden")), pending, keys, int(updates),
                                      lr=lr, lsb=cfg.hidden_lsb, p=p, rounding=rounding,
                                      max_hidden=cfg.layout.max_hidden, count_zero=cfg.ledger.count_zero_updates,
                                      sampler=sampler, **factors)
            updates += 1
        self._counted(name)
        return inputs

    def _counted(self, name: str) -> None:
        self._since_flush[name] += 1
        if self._since_flush[name] >= _FLUSH_EVERY:
            self._flush(name)

    def _update_cpu(self, name: str, x, delta, dense, lr: float, p: float, rounding: str, sampler: str) -> None:
        """One update on the CPU kernels with arrays and constants bound once, from a dense (R, I, O)
        gradient or from batch-1 factors (x None: a bias), by the hybrid rule or the layer's baseline
        (``SchemeRunner.step_cpu``): what the general path above does without its torch calls, which
        at batch 1 (several µs each) would exceed a small layer's kernel."""
        a = self._cpu_arrays(name)
        xx = None if dense is not None else a["ones"] if x is None else _array(x)[:, 0]
        if self.scheme_runner is not None:
            self.scheme_runner.step_cpu(self, name, _array(delta)[:, 0], xx, lr, p, rounding)
        else:
            K = cpu_module("rule.kernels_cpu")
            fp = self.mode == "fp"
            state, step = a["param"] if fp else a["hidden"], int(a["updates"])
            consts = self._constants(a, lr, p, rounding, sampler)
            if dense is not None:
                K.dense_(fp, sampler, state, a["pending"], np.ascontiguousarray(_array(dense)), a["keys"], step, consts)
            else:
                K.rank1_(fp, sampler, state, a["pending"], _array(delta)[:, 0], xx, a["keys"], step, consts)
        a["updates"] += 1  # the buffer itself (a numpy view of its memory)
        self._counted(name)

    def kernel_constants(self, name: str, lr: float, p: float, rounding: str, sampler: str) -> tuple:
        """The CPU update kernel's constants for this parameter and rule (``kernels_cpu.update_constants``), cached."""
        return self._constants(self._cpu_arrays(name), lr, p, rounding, sampler)

    def _constants(self, arrays: dict, lr: float, p: float, rounding: str, sampler: str) -> tuple:
        cache = arrays["consts"]
        consts = cache.get((lr, p, rounding, sampler))
        if consts is None:
            if len(cache) >= 8:  # an lr schedule makes a new entry per step: keep the cache small
                cache.clear()
            cfg = self.config
            consts = cache[(lr, p, rounding, sampler)] = cpu_module("rule.kernels_cpu").update_constants(
                fp=self.mode == "fp", sampler=sampler, lr=lr, p=p, lsb=cfg.hidden_lsb, rounding=rounding,
                max_hidden=cfg.layout.max_hidden, count_zero=cfg.ledger.count_zero_updates)
        return consts

    def _cpu_arrays(self, name: str) -> dict:
        """numpy views of a parameter's crossbar state and its update keys, cached while the tensors
        behind them (and the seeds) stay the same."""
        # read every step by forward, backward and update: dict lookups only (a Module attribute costs more)
        param, bufs = self._parameters[name], self._buffers
        hidden, seeds, transfers = bufs.get(name + "_hidden"), bufs["seeds"], bufs[name + "_transfers"]
        tag = (param.data_ptr(), id(bufs[name + "_pending"]), id(bufs[name + "_updates"]), id(hidden), id(seeds),
               seeds._version, transfers.data_ptr())
        cached = self._np_cache.get(name)
        if cached is None or cached[0] != tag:
            arrays = {"param": self.crossbar(name, param.detach()).numpy(),
                      "pending": self.crossbar(name, self._buf(name, "pending")).numpy(),
                      "updates": self._buf(name, "updates").numpy(), "transfers": transfers.numpy(),
                      "keys": self.stream_keys(name, STREAM_UPDATE),
                      "ones": np.ones((self.n_replicas, 1), np.float32), "consts": {}}
            if hidden is not None:
                arrays["hidden"] = self.crossbar(name, hidden).numpy()
            cached = self._np_cache[name] = (tag, arrays)
        return cached[1]

    def _gradient_factors(self, tape: list) -> dict:
        """One recorded batch-1 capture → rank-1 factors; anything else → one dense (R, I, O) gradient."""
        if len(tape) == 1:
            x, delta, dense = tape[0]
            if dense is not None:
                return {"grad": dense.contiguous() if backend_for(dense.device) == "numba" else dense}
            if delta.shape[1] == 1:
                xx = torch.ones(delta.shape[0], 1, device=delta.device) if x is None else x[:, 0]
                return {"delta": delta[:, 0].contiguous(), "x": xx.contiguous()}
        return {"grad": self._dense_sum(tape).contiguous()}

    def _dense_sum(self, tape: list) -> torch.Tensor:
        """The (R, I, O) sum of a tape's entries: factors (x, δ) made dense, dense gradients as they are."""
        total = None
        for x, delta, dense in tape:
            g = dense if dense is not None else self._dense_from_factors(x, delta)
            total = g.clone() if total is None else total.add_(g)
        return total

    def _flush(self, name: str) -> None:
        self._buf(name, "events").add_(self._buf(name, "pending"))
        self._buf(name, "pending").zero_()
        self._since_flush[name] = 0

    def flush_counts(self) -> None:
        """Move pending per-step event counters into the totals (``state_dict`` does it first)."""
        for name in self.hybrid_names():
            self._flush(name)

    # --- the ledger ------------------------------------------------------------------------------------
    def counts(self, replica: int = 0) -> LayerCounts | None:
        """Counters of all this layer's synapses (weights and bias columns) on one replica, for the
        hybrid rule (None in fp mode and for a baseline rule: see :meth:`device_groups`)."""
        self.check_config()
        if self.mode == "fp" or self.scheme_runner is not None:
            return None
        self.flush_counts()
        events, writes, transfers = [], [], 0
        for name in self.hybrid_names():
            ev = self.crossbar(name, self._buf(name, "events"))[replica].reshape(-1)
            t = int(self._buf(name, "transfers")[replica])
            w = torch.full_like(ev, t)
            if not self.config.ledger.transfer_writes_unchanged:
                w -= self.crossbar(name, self._buf(name, "skips"))[replica].reshape(-1)
            events.append(ev.cpu())
            writes.append(w.cpu())
            transfers = max(transfers, t)
        return LayerCounts(torch.cat(events), transfers, torch.cat(writes))

    def n_synapses(self) -> int:
        return sum(self.crossbar(n, self._parameters[n])[0].numel() for n in self.hybrid_names())

    def device_groups(self, replica: int = 0) -> tuple[list[DeviceGroup], int]:
        """The devices this layer's rule operated on, with their operations (``circuit.devices``), and
        its transfers, for one replica — for any rule; fp: its float32 weights, digital, not a device."""
        self.check_config()
        if self.mode == "fp":
            self.flush_counts()
            ev = torch.cat([self.crossbar(n, self._buf(n, "events"))[replica].reshape(-1).cpu() for n in self.hybrid_names()])
            return [DeviceGroup("digital", "float32 weight", 1, ev)], 0
        transfers = max(int(self._buf(n, "transfers")[replica]) for n in self.hybrid_names())
        if self.scheme_runner is not None:
            return self.scheme_runner.groups(self, replica), transfers
        return hybrid_groups(self.counts(replica), self.config.ledger, self.config.layout), transfers

    def ledger_report(self) -> list[dict] | None:
        """One report per replica (per-device operations, energy, endurance); None in fp mode."""
        if self.mode == "fp":
            return None
        from .ledger import initial_report
        reports = []
        for r in range(self.n_replicas):
            rep = network_groups_report([self.device_groups(r)], self.config.ledger)
            rep["initial_programming"] = initial_report([self])
            reports.append(rep)
        return reports

    def _check_dtype(self, x: torch.Tensor) -> None:
        if x.dtype != torch.float32:
            raise ConfigError(f"{type(self).__name__} input dtype", str(x.dtype).replace("torch.", ""),
                              "float32 (convert with .float())")


# ``model.zero_grad()`` is the parent's (an nn.Sequential's): it drops what the hybrid layers below
# keep too, as ``opt.zero_grad()`` does (wrapped once per process; the original runs after)
_MODULE_ZERO_GRAD = getattr(nn.Module.zero_grad, "unwrapped", nn.Module.zero_grad)
_zero_grad.unwrapped = _MODULE_ZERO_GRAD
nn.Module.zero_grad = _zero_grad
