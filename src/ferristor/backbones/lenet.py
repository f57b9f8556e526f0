"""A LeNet-style CNN: the small backbone for quick runs on the CPU.

conv 5×5 (c₁ channels, padding 2) → ReLU → max-pool 2 → conv 5×5 (c₂) → ReLU → max-pool 2 →
flatten → ``features`` fully connected units → ReLU (the features a head sees) → classifier.
c₁ = round(16·width), c₂ = round(32·width): at width 1 (the default, ``backbones.ARCH_DEFAULTS``)
16 and 32, with 128 features on 28×28 inputs: 0.12 M weights. [I]: the issue asks for a LeNet-style
option; the widths are ours.
"""
from __future__ import annotations

from torch import Tensor, nn


class LeNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 1, input_size: int = 28, width: float = 1.0,
                 features: int = 128):
        super().__init__()
        c1, c2 = max(1, round(16 * width)), max(1, round(32 * width))
        side = ((input_size // 2) - 4) // 2
        if side < 1:
            from ..errors import ConfigError
            raise ConfigError("input_size", input_size, "at least 12 for the LeNet backbone")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(c2 * side * side, features), nn.ReLU())
        self.last_channel = features
        self.classifier = nn.Sequential(nn.Linear(features, num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
