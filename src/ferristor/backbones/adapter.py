"""Fit images to a backbone's input: size (zero-pad with the background value, or resize) and channels.

MNIST and Fashion-MNIST are 28×28 grey images in [−1, 1] with a background of −1; MobileNet-V2 is
built for 3-channel images. ``InputAdapter`` takes images (N, C, H, W) — or ferristor's flattened
(N, C·H·W) rows, given ``image_shape`` — and returns (N, channels, size, size). [I]: the paper
adapts nothing (its images are CIFAR/ImageNet colour images); these are our choices, named here.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ConfigError

FITS = ("pad", "resize")


class InputAdapter(nn.Module):
    """Args:
        image_shape: (C, H, W) of the images given.
        size: the side of the square input the network takes (e.g. 32).
        channels: the network's input channels; a grey image is repeated on each (the paper's
            MobileNet-V2 takes RGB: repeating keeps torchvision's first convolution, and its
            pretrained weights, usable).
        fit: 'pad' puts the image in the centre of a ``size``×``size`` canvas filled with
            ``pad_value`` (default −1, the background of the [−1, 1] pixels; images larger than
            ``size`` are refused), 'resize' resizes bilinearly.
    """

    def __init__(self, image_shape: tuple[int, int, int], size: int, channels: int, fit: str = "pad",
                 pad_value: float = -1.0):
        super().__init__()
        if fit not in FITS:
            raise ConfigError("fit", fit, " or ".join(map(repr, FITS)))
        c, h, w = image_shape
        if channels != c and c != 1:
            raise ConfigError("channels", channels, f"{c} (the images' channels), or any number for grey images")
        if fit == "pad" and (h > size or w > size):
            raise ConfigError("input_size", size, f"at least the image side ({h}×{w}) with fit='pad' (or fit='resize')")
        self.image_shape, self.size, self.channels, self.fit, self.pad_value = tuple(image_shape), size, channels, fit, pad_value

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.reshape(len(x), *self.image_shape)
        _, c, h, w = x.shape
        if (h, w) != (self.size, self.size):
            if self.fit == "pad":
                top, left = (self.size - h) // 2, (self.size - w) // 2
                x = F.pad(x, (left, self.size - w - left, top, self.size - h - top), value=self.pad_value)
            else:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if c != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return x.contiguous()

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, size={self.size}, channels={self.channels}, fit={self.fit!r}"


def hflip(x: Tensor, image_shape: tuple[int, int, int]) -> Tensor:
    """Horizontal flip of images (N, C, H, W) or flattened rows (N, C·H·W)."""
    if x.dim() == 2:
        return torch.flip(x.reshape(len(x), *image_shape), dims=(-1,)).reshape(len(x), -1)
    return torch.flip(x, dims=(-1,))
