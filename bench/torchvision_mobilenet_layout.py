"""Check ferristor's MobileNet-V2 against torchvision's, where torchvision imports, and (with
--write) record torchvision's state_dict layout for the tests.

    python bench/torchvision_mobilenet_layout.py            # compare keys, shapes and outputs
    python bench/torchvision_mobilenet_layout.py --write tests/backbones/torchvision_mobilenet_v2_layout.json

--stub-fake-ops: torchvision wheels built for another torch fail at import on registering their
compiled operators ('operator torchvision::nms does not exist'); this flag makes that registration a
no-op *in this process only*, so the pure-Python model code can be compared. Never used by ferristor.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", default=None)
    ap.add_argument("--stub-fake-ops", action="store_true")
    args = ap.parse_args()
    if args.stub_fake_ops:
        import torch.library
        torch.library.register_fake = lambda *a, **k: (lambda f: f)
    import torchvision
    from torchvision.models import mobilenet_v2 as tv

    from ferristor.backbones.mobilenet_v2 import MobileNetV2

    layout, ok = {"torchvision": torchvision.__version__, "models": {}}, True
    for width, classes in ((0.5, 1000), (1.0, 1000), (0.5, 10)):
        ref = tv(weights=None, width_mult=width, num_classes=classes)
        ours = MobileNetV2(classes, width)
        ref_sd, our_sd = ref.state_dict(), ours.state_dict()
        same_layout = [(k, tuple(v.shape)) for k, v in ref_sd.items()] == [(k, tuple(v.shape)) for k, v in our_sd.items()]
        ours.load_state_dict(ref_sd)
        ref.eval(), ours.eval()
        x = torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            diff = (ref(x) - ours(x)).abs().max().item()
        print(f"width {width}, {classes} classes: {len(ref_sd)} keys, layout identical: {same_layout}, "
              f"max |output difference| with torchvision's weights: {diff:.2e}")
        ok &= same_layout and diff < 1e-5
        layout["models"][f"{width}-{classes}"] = [[k, list(v.shape)] for k, v in ref_sd.items()]
    if args.write:
        with open(args.write, "w", encoding="utf-8") as f:
            json.dump(layout, f, separators=(",", ":"))
        print("wrote", args.write)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
