"""Backbones: torchvision's MobileNet-V2 layout, loading a user's weight file, the input adapter,
LSQ weights, checksums and backbone files."""
import json
from pathlib import Path

import pytest
import torch

from ferristor.backbones import BackboneSpec, build_backbone, load_backbone, save_backbone, torchvision_available
from ferristor.backbones.adapter import InputAdapter, hflip
from ferristor.backbones.mobilenet_v2 import MobileNetV2
from ferristor.errors import ConfigError, DataError
from ferristor.nn.lsq import LSQConv2d, lsq_layers

LAYOUT = json.loads((Path(__file__).parent / "torchvision_mobilenet_v2_layout.json").read_text())


def _torchvision_state_dict(width: float, classes: int, seed: int = 0) -> dict:
    """A state_dict in torchvision 0.28's MobileNet-V2 key layout (recorded in the JSON file by
    bench/torchvision_mobilenet_layout.py), filled with random values."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in LAYOUT["models"][f"{width}-{classes}"]:
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        else:
            out[key] = torch.randn(shape, generator=g) * 0.1
    return out


@pytest.mark.parametrize("width,classes", [(0.5, 1000), (1.0, 1000), (0.5, 10)])
def test_mobilenet_v2_has_torchvisions_keys_and_shapes(width, classes):
    ours = [[k, list(v.shape)] for k, v in MobileNetV2(classes, width).state_dict().items()]
    assert ours == LAYOUT["models"][f"{width}-{classes}"]


def test_factory_uses_torchvision_where_it_imports_else_the_same_architecture_here():
    from ferristor.backbones.mobilenet_v2 import mobilenet_v2
    net = mobilenet_v2(10, 0.5)
    if not torchvision_available():  # as with the pinned CPU torch: ferristor's copy
        assert type(net) is MobileNetV2
        return
    ours = MobileNetV2(10, 0.5).eval()  # pragma: no cover - where torchvision imports
    ours.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(net.eval()(x), ours(x))


def test_a_users_torchvision_state_dict_file_loads(tmp_path):
    sd = _torchvision_state_dict(0.5, 1000)
    path = tmp_path / "mobilenet_v2_imagenet.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)  # as saved from DataParallel
    spec = BackboneSpec(arch="mobilenet_v2", width=0.5, num_classes=10, bits=0, implementation="ferristor")
    model = build_backbone(spec, weights=path)
    own = model.net.state_dict()
    for k, v in sd.items():
        if k.startswith("classifier."):
            assert own[k].shape[0] == 10  # ImageNet's 1000-class classifier is left out
        else:
            assert torch.equal(own[k], v), k
    # with 4-bit LSQ, the float weights are loaded first and the steps initialised from them
    q = build_backbone(BackboneSpec(width=0.5, bits=4, implementation="ferristor"), weights=path)
    conv = q.net.features[0][0]
    assert isinstance(conv, LSQConv2d) and torch.equal(conv.weight.detach(), sd["features.0.0.weight"])
    assert conv.weight_step.item() == pytest.approx((2 * sd["features.0.0.weight"].abs().mean() / 7 ** 0.5).item())


def test_a_weight_file_of_another_width_or_no_state_dict_is_refused(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(_torchvision_state_dict(1.0, 1000), path)
    with pytest.raises(ConfigError, match="does not fit this backbone.*features.0.0.weight has shape"):
        build_backbone(BackboneSpec(width=0.5, implementation="ferristor"), weights=path)
    torch.save([1, 2], path)
    with pytest.raises(ConfigError, match="holds no state_dict"):
        build_backbone(BackboneSpec(width=0.5, implementation="ferristor"), weights=path)
    with pytest.raises(ConfigError, match="no such file"):
        build_backbone(BackboneSpec(), weights=tmp_path / "absent.pth")


@pytest.mark.parametrize("content", [b"", b"\x80\x02 not", b"PK\x03\x04 a zip cut short"])
def test_an_unreadable_weights_file_is_one_clean_line_naming_weights(tmp_path, content):
    """torch's own text had been cut mid-advice ('Re-running `torch.') inside the message."""
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        build_backbone(BackboneSpec(arch="lenet"), weights=path)
    text = e.value.render(lambda f: "--weights" if f == "weights" else None)
    assert text.startswith(f"--weights {path}: not a torch file of tensors that loads (")
    assert text.endswith("save one with torch.save(model.state_dict(), path)") and "\n" not in text
    assert "torch.load" not in text and "weights_only" not in text


def test_adapter_pads_with_the_background_repeats_grey_and_resizes():
    x = torch.rand(2, 784) * 2 - 1
    out = InputAdapter((1, 28, 28), 32, 3, "pad")(x)
    assert out.shape == (2, 3, 32, 32)
    assert torch.equal(out[:, 0, 2:30, 2:30], x.reshape(2, 28, 28)) and torch.equal(out[:, 1], out[:, 2])
    assert (out[:, :, :2] == -1).all() and (out[:, :, :, 30:] == -1).all()
    assert InputAdapter((1, 28, 28), 40, 1, "resize")(x).shape == (2, 1, 40, 40)
    with pytest.raises(ConfigError, match="input_size"):
        InputAdapter((1, 28, 28), 16, 1, "pad")
    img = torch.arange(6.0).reshape(1, 1, 2, 3)
    assert hflip(img, (1, 2, 3)).flatten().tolist() == [2, 1, 0, 5, 4, 3]
    assert torch.equal(hflip(img.reshape(1, 6), (1, 2, 3)), hflip(img, (1, 2, 3)).reshape(1, 6))


@pytest.mark.parametrize("arch", ["mobilenet_v2", "lenet"])
def test_backbone_features_lsq_checksum_and_file_roundtrip(tmp_path, arch):
    torch.manual_seed(0)
    spec = BackboneSpec(arch=arch, width=0.25, bits=4, implementation="ferristor")
    model = build_backbone(spec).freeze()
    assert all(isinstance(m, LSQConv2d) or not isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert len(lsq_layers(model)) > 0
    x = torch.rand(3, 784) * 2 - 1
    f = model.features(x)
    assert f.shape == (3, model.n_features)
    path = save_backbone(model, tmp_path / "b.pt")
    again = load_backbone(path)
    assert again.checksum() == model.checksum()
    assert torch.equal(again.eval().features(x), f)
    with torch.no_grad():
        model.net.classifier[-1].weight[0, 0] += 1
    assert model.checksum() != again.checksum()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot be read"):
        load_backbone(path)


class _Own(torch.nn.Module):
    """A user's own network, in the shape Backbone takes (forward_features, last_channel)."""
    last_channel = 16

    def __init__(self):
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(1, 4, 3), torch.nn.Linear(4 * 26 * 26, 16)

    def forward_features(self, x):
        return torch.relu(self.fc(torch.relu(self.conv(x)).flatten(1)))

    def forward(self, x):
        return self.forward_features(x)


def test_a_network_without_lsq_layers_is_refused_as_a_quantised_backbone():
    """A float nn.Module had been accepted under bits=4: recorded and checksummed as 4-bit, computing in float."""
    from ferristor.backbones import Backbone
    from ferristor.nn.lsq import quantize_weights_
    spec = BackboneSpec(arch="lenet", input_size=28, bits=4)
    with pytest.raises(ConfigError, match=r"^bits=4: the network has no LSQ \(quantised\) layers: call "
                                          r"ferristor.nn.lsq.quantize_weights_\(net, 4\) on it first"):
        Backbone(spec, _Own())
    net = _Own()
    quantize_weights_(net, 8)
    with pytest.raises(ConfigError, match="the network has LSQ layers of 8 bits"):
        Backbone(spec, net)
    with pytest.raises(ConfigError, match="give bits=8"):
        Backbone(BackboneSpec(arch="lenet", input_size=28, bits=0), net)
    quantize_weights_(net := _Own(), 4)  # as the message says
    assert Backbone(spec, net).features(torch.rand(2, 1, 28, 28)).shape == (2, 16)
    assert Backbone(BackboneSpec(arch="lenet", input_size=28, bits=0), _Own())  # a float backbone, said so
