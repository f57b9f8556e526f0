"""``Backbone``: input adapter + network (MobileNet-V2 or LeNet-style), with optional LSQ weights; its
spec, checksum, files, and the loading of a user's weight file."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..atomic import atomic_write
from ..config_base import param
from ..errors import ConfigError, DataError
from ..nn.lsq import lsq_layers, quantize_weights_
from .adapter import FITS, InputAdapter
from .lenet import LeNet
from .mobilenet_v2 import mobilenet_v2, pooled_features, torchvision_available

ARCHS = ("mobilenet_v2", "lenet")
IMPLEMENTATIONS = ("auto", "ferristor", "torchvision")
FORMAT = "ferristor-backbone-1"
# Each architecture's (width, input side) where none is given: MobileNet-V2's are issue 9's (width 0.5 on
# 32×32 inputs); LeNet's [I] are its full width (16 and 32 channels) on MNIST's own 28×28, unpadded.
ARCH_DEFAULTS = {"mobilenet_v2": (0.5, 32), "lenet": (1.0, 28)}


def arch_defaults(arch: str, width: float | None = None, input_size: int | None = None) -> tuple[float, int]:
    """``width`` and ``input_size``, each None replaced by ``arch``'s default (``ARCH_DEFAULTS``): the one
    place they live, read by BackboneSpec, PretrainConfig and the commands alike."""
    if arch not in ARCH_DEFAULTS:
        raise ConfigError("arch", arch, " or ".join(map(repr, ARCHS)))
    default_width, default_size = ARCH_DEFAULTS[arch]
    return (default_width if width is None else width), (default_size if input_size is None else input_size)


def defaults_text(index: int, unit: str = "") -> str:
    """'0.5 for MobileNet-V2, 1 for LeNet' (index 0: width) or '32 for …' (1: input size), for docs."""
    names = {"mobilenet_v2": "MobileNet-V2", "lenet": "LeNet"}
    return ", ".join(f"{v[index]:g}{unit} for {names[a]}" for a, v in ARCH_DEFAULTS.items())


@dataclass
class BackboneSpec:
    """What a backbone is; two backbones with equal specs and weights compute the same features.

    Each field's unit, source and meaning are in its metadata (``ferristor params BackboneSpec``).
    ``channels`` None is 3 for MobileNet-V2 — grey images repeated on the RGB channels, so
    torchvision's first convolution and its pretrained weights fit [I] — the images' own for LeNet.
    ``implementation``: 'auto' takes torchvision's MobileNet-V2 where torchvision imports and
    ferristor's copy otherwise (same keys and computation); not part of the identity."""

    arch: str = param("mobilenet_v2", source="digest §6 [P] (MobileNet-V2); 'lenet' [I] the quick CPU backbone",
                      doc="'mobilenet_v2' or 'lenet'")
    num_classes: int = param(10, unit="class", source="[I]", doc="outputs of the pretraining classifier (the source task's)")
    image_shape: tuple[int, int, int] = param((1, 28, 28), unit="(channel, pixel, pixel)", source="[I] MNIST's",
                                              doc="the images' shape, before the input adapter")
    input_size: int | None = param(None, unit="pixel", source="[issue 9] for MobileNet-V2 (the digest names only the "
                                   "architecture, §6); [I] LeNet's",
                                   doc=f"side of the network's input; images are fitted to it (fit); None: the "
                                       f"architecture's ({defaults_text(1)})")
    width: float | None = param(None, unit="1", source="[issue 9] for MobileNet-V2 (the digest names only the "
                                "architecture, §6); [I] LeNet's",
                                doc=f"width multiplier: MobileNet-V2's width_mult, LeNet's channels (16·width and "
                                    f"32·width); None: the architecture's ({defaults_text(0)})")
    bits: int = param(4, unit="bit", source="digest §6 [P] (a frozen 4-bit feature extractor)",
                      doc="LSQ bit width of every conv/linear weight (0: float)")
    channels: int | None = param(None, unit="channel", source="[I]",
                                 doc="the network's input channels (None: 3 for MobileNet-V2, the images' own for LeNet)")
    fit: str = param("pad", source="[I]", doc="how images meet input_size: 'pad' with the background or 'resize'")
    implementation: str = param("auto", source="[I]", doc="'auto', 'ferristor' or 'torchvision' MobileNet-V2 "
                                "(the same keys and computation); not part of the identity")

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError("arch", self.arch, " or ".join(map(repr, ARCHS)))
        self.width, self.input_size = arch_defaults(self.arch, self.width, self.input_size)  # recorded resolved
        if self.implementation not in IMPLEMENTATIONS:
            raise ConfigError("implementation", self.implementation, " or ".join(map(repr, IMPLEMENTATIONS)))
        if self.fit not in FITS:
            raise ConfigError("fit", self.fit, " or ".join(map(repr, FITS)))
        if not (isinstance(self.width, (int, float)) and 0 < self.width <= 4):
            raise ConfigError("width", self.width, "a width multiplier in (0, 4]")
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) or self.input_size < 8:
            raise ConfigError("input_size", self.input_size, "an integer ≥ 8")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not (self.bits == 0 or 2 <= self.bits <= 16):
            raise ConfigError("bits", self.bits, "0 (float) or an integer in [2, 16]")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ConfigError("num_classes", self.num_classes, "an integer ≥ 1")
        self.image_shape = tuple(int(v) for v in self.image_shape)

    @property
    def net_channels(self) -> int:
        if self.channels is not None:
            return self.channels
        return 3 if self.arch == "mobilenet_v2" else self.image_shape[0]

    def identity(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("implementation")
        d["image_shape"] = list(self.image_shape)
        d["channels"] = self.net_channels
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneSpec":
        d = dict(d)
        d["image_shape"] = tuple(d["image_shape"])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def check_bits(spec: BackboneSpec, net: nn.Module) -> None:
    """A ConfigError where ``net``'s LSQ layers are not what ``spec.bits`` says: a float network (a
    user's own ``nn.Module``) under bits > 0 would be recorded, checksummed and reported as 4-bit
    while it computes in float."""
    widths = sorted({m.bits for _, m in lsq_layers(net)})
    if spec.bits and widths != [spec.bits]:
        has = "no LSQ (quantised) layers" if not widths else f"LSQ layers of {'/'.join(map(str, widths))} bits"
        raise ConfigError("bits", spec.bits, reason=f"the network has {has}: call "
                          f"ferristor.nn.lsq.quantize_weights_(net, {spec.bits}) on it first (after loading any float "
                          f"weights), or give bits=0 for a float backbone")
    if not spec.bits and widths:
        raise ConfigError("bits", 0, reason=f"the network has LSQ layers of {'/'.join(map(str, widths))} bits: give "
                          f"bits={widths[0]}" + (" (one width for all)" if len(widths) > 1 else ""))


class Backbone(nn.Module):
    """``adapter`` (images → the network's input) then ``net`` (torchvision's key layout for
    MobileNet-V2, under ``net.``). ``features(x)`` gives what a classifier head sees. ``net``'s LSQ
    layers must be of ``spec.bits`` (:func:`check_bits`; ``nn.lsq.quantize_weights_`` makes them)."""

    def __init__(self, spec: BackboneSpec, net: nn.Module, *, quantized: bool = True):
        super().__init__()
        if quantized:  # False: build_backbone(quantize=False), whose net is quantised later, if at all
            check_bits(spec, net)
        self.spec = spec
        self.adapter = InputAdapter(spec.image_shape, spec.input_size, spec.net_channels, spec.fit)
        self.net = net

    @property
    def n_features(self) -> int:
        return self.net.last_channel

    def features(self, x: Tensor) -> Tensor:
        x = self.adapter(x)
        if self.spec.arch == "lenet":
            return self.net.forward_features(x)
        return pooled_features(self.net, x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.adapter(x))

    def checksum(self) -> str:
        """A hash of the spec and every tensor of the state (weights, steps, BatchNorm statistics)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(self.spec.identity(), sort_keys=True).encode())
        for k, v in sorted(self.state_dict().items()):
            t = v.detach().cpu().contiguous()
            h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        return h.hexdigest()

    def freeze(self) -> "Backbone":
        """Evaluation mode (BatchNorm statistics fixed) and no gradients: a frozen feature extractor."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


def build_backbone(spec: BackboneSpec, weights: str | os.PathLike | None = None, quantize: bool = True) -> Backbone:
    """A fresh backbone (random init, nothing downloaded); ``weights``: a float state_dict file in the
    network's key layout (torchvision's for MobileNet-V2) loaded before the weights are quantised."""
    if spec.arch == "mobilenet_v2":
        if spec.implementation == "torchvision" and not torchvision_available():
            raise ConfigError("implementation", "torchvision", reason="torchvision does not import here; use 'auto' or 'ferristor'")
        net = mobilenet_v2(spec.num_classes, spec.width, spec.net_channels,
                           prefer_torchvision=spec.implementation != "ferristor")
    else:
        net = LeNet(spec.num_classes, spec.net_channels, spec.input_size, spec.width)
    if weights is not None:
        load_weights_file(net, weights)
    if quantize and spec.bits:
        quantize_weights_(net, spec.bits)
    return Backbone(spec, net, quantized=quantize)


def _torch_load(path: Path, what: str):
    """``torch.load`` (tensors only) with a one-line DataError naming ``what`` and the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"{what} {path} cannot be read ({type(e).__name__}: {first}); is it truncated or "
                        "not a torch file?") from None


# What a weights file must be, said where one is refused (a ConfigError on ``weights``: --weights).
STATE_DICT_HINT = "save one with torch.save(model.state_dict(), path)"


def _weights_file(path: str | os.PathLike) -> Path:
    """``path`` as a weights file that exists, or a ConfigError naming ``weights``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("weights", str(path), reason="no such file" if not path.exists() else "not a file")
    return path


def weights_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a weights file's bytes: what a pretraining started from, whatever its path says
    (a file edited or replaced in place keeps its name)."""
    h = hashlib.sha256()
    with open(_weights_file(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_state_dict(path: str | os.PathLike) -> dict:
    """A weights file's state_dict; a one-line ConfigError on ``weights`` where there is none (torch's
    own text of a refused file is long, and its first line breaks off mid-advice)."""
    path = _weights_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, EOFError, RuntimeError of a cut zip file, …
        raise ConfigError("weights", str(path), reason=f"not a torch file of tensors that loads ({type(e).__name__}): "
                          f"truncated, corrupt, or a pickled model rather than a state_dict; {STATE_DICT_HINT}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError("weights", str(path), reason=f"holds no state_dict (a dict of tensors); {STATE_DICT_HINT}")
    prefix = "module."  # saved from DataParallel / DistributedDataParallel
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in obj.items()}


def check_weights_file(path: str | os.PathLike) -> None:
    """Refuse, before any work, a weights file that is missing or holds no state_dict (ConfigError on
    ``weights``); whether it fits a backbone is known once the backbone is (:func:`load_weights_file`)."""
    _read_state_dict(path)


def load_weights_file(net: nn.Module, path: str | os.PathLike) -> dict:
    """Load a float state_dict file (e.g. ``torch.save(torchvision.models.mobilenet_v2(...).state_dict(), f)``)
    into ``net``. A classifier of another size (ImageNet's 1000 classes) is left as initialised — the
    head is retrained anyway; any other missing, unexpected or mis-shaped key is refused, naming it.
    Returns {'loaded': n, 'kept_classifier': [keys]}."""
    state = _read_state_dict(path)
    own = net.state_dict()
    kept, problems = [], []
    for k, v in own.items():
        if k not in state:
            if not k.endswith("num_batches_tracked"):
                problems.append(f"{k} missing")
        elif tuple(state[k].shape) != tuple(v.shape):
            if k.startswith("classifier."):
                kept.append(k)
            else:
                problems.append(f"{k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}")
    problems += [f"{k} unexpected" for k in state if k not in own]
    if problems:
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        raise ConfigError("weights", str(path), reason="does not fit this backbone (another architecture, width or "
                          "number of input channels?): " + "; ".join(problems[:4]) + more)
    load = {k: v for k, v in state.items() if k not in kept}
    net.load_state_dict(load, strict=False)
    return {"loaded": len(load), "kept_classifier": kept}


def save_backbone(model: Backbone, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write the backbone (spec, state, checksum, ``extra``) atomically."""
    payload = {"format": FORMAT, "spec": model.spec.identity(), "state_dict": model.state_dict(),
               "checksum": model.checksum(), "extra": json.loads(json.dumps(extra or {}, default=str))}
    with atomic_write(path) as f:
        torch.save(payload, f)
    return Path(path)


def load_backbone(path: str | os.PathLike) -> Backbone:
    """A backbone saved by :func:`save_backbone`, checked against its recorded checksum."""
    path = Path(path)
    payload = _torch_load(path, "backbone file")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path} is not a ferristor backbone file (pretrain writes them; a bare state_dict "
                        f"goes to --weights)")
    spec = BackboneSpec.from_dict(payload["spec"])
    model = build_backbone(spec)
    model.load_state_dict(payload["state_dict"])
    if model.checksum() != payload["checksum"]:
        raise DataError(f"backbone file {path} does not match its checksum; it is corrupt")
    return model
