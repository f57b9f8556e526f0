"""MobileNet-V2 (Sandler et al. 2018) with torchvision's module structure and ``state_dict`` keys.

torchvision does not import beside the project's pinned CPU torch here (its compiled operators are
built for another torch), so this is the same architecture written out: the same blocks, the same
attribute names and indices (``features.0.0.weight``, ``features.1.conv.0.0.weight``, …,
``classifier.1.weight``), the same width rounding (``_make_divisible``) and the same
initialisation. A MobileNet-V2 ``state_dict`` saved by torchvision therefore loads into it
(``tests/backbones`` holds the key and shape layout torchvision 0.28 produces, and compares outputs
with torchvision where it imports). :func:`mobilenet_v2` returns torchvision's own model when
torchvision imports, this one otherwise (``prefer_torchvision=False`` forces this one).
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

# t (expansion), c (output channels), n (repeats), s (first stride): the paper's Table 2, torchvision's default
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1))
FEATURES = 1280  # last_channel at width ≤ 1 (torchvision: 1280·max(1, width))


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's rounding of channel counts: to a multiple of ``divisor``, never 10 % below ``v``."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """torchvision's ``Conv2dNormActivation`` for MobileNet-V2: conv (0), BatchNorm (1), ReLU6 (2)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))
        self.out_channels = cout


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden, kernel=1))
        layers += [ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision.models.MobileNetV2(num_classes, width_mult, round_nearest=8, dropout=0.2) with 3
    input channels; ``in_channels`` changes the first convolution only (1 for grey images [I])."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8,
                 dropout: float = 0.2, in_channels: int = 3):
        super().__init__()
        input_channel = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNReLU(in_channels, input_channel, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, out, s if i == 0 else 1, t))
                input_channel = out
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """The pooled penultimate features (N, last_channel): what a new classifier head sees."""
        return F.adaptive_avg_pool2d(self.features(x), (1, 1)).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


def torchvision_available() -> bool:
    try:
        import torchvision.models  # noqa: F401
    except Exception:  # ImportError, or torchvision's RuntimeError beside a torch it was not built for
        return False
    return True


def mobilenet_v2(num_classes: int, width_mult: float = 1.0, in_channels: int = 3, dropout: float = 0.2,
                 prefer_torchvision: bool = True) -> nn.Module:
    """MobileNet-V2 without pretrained weights (nothing is downloaded): torchvision's when it imports
    and ``in_channels`` is 3, ferristor's copy of it otherwise. Both have ``features``/``classifier``."""
    if prefer_torchvision and in_channels == 3 and torchvision_available():
        from torchvision.models import mobilenet_v2 as tv
        return tv(weights=None, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
    return MobileNetV2(num_classes, width_mult, dropout=dropout, in_channels=in_channels)


def pooled_features(net: nn.Module, x: Tensor) -> Tensor:
    """Penultimate features of ferristor's or torchvision's MobileNet-V2 (same ``features`` module)."""
    return F.adaptive_avg_pool2d(net.features(x), (1, 1)).flatten(1)
