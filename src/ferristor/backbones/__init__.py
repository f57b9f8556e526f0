"""Feature extractors for transfer learning (the paper's Fig. 6): MobileNet-V2 in torchvision's layout,
a LeNet-style CNN for quick runs, 4-bit LSQ weights, user weight files, checksums."""
from .backbone import (ARCH_DEFAULTS, ARCHS, Backbone, BackboneSpec, arch_defaults, build_backbone, check_weights_file,
                       load_backbone, load_weights_file, save_backbone, weights_sha256)
from .mobilenet_v2 import MobileNetV2, torchvision_available

__all__ = ["ARCH_DEFAULTS", "ARCHS", "Backbone", "BackboneSpec", "MobileNetV2", "arch_defaults", "build_backbone", "check_weights_file",
           "load_backbone", "load_weights_file", "save_backbone", "torchvision_available", "weights_sha256"]
