"""Each architecture's width and input size where none is given: one definition
(``backbones.arch_defaults``) read by Python (``PretrainConfig``, ``Fig6Config``, ``BackboneSpec``) and
by the commands alike. From Python, ``PretrainConfig(arch="lenet")`` and ``Fig6Config()`` ("LeNet, 2
epochs") had got MobileNet-V2's width 0.5 and input 32, where ``ferristor pretrain --arch lenet``
used LeNet's 1 and 28."""
import dataclasses

import pytest
from click.testing import CliRunner

from ferristor.backbones import BackboneSpec, arch_defaults
from ferristor.cli.main import cli
from ferristor.transfer_learning import fig6 as f6
from ferristor.transfer_learning import pretrain as pt


class _Stop(Exception):
    pass


def _captured(monkeypatch, module, name, args):
    """The config a command passes to ``module.name`` (which is stopped there)."""
    seen = []

    def capture(cfg, *a, **k):
        seen.append(cfg)
        raise _Stop
    monkeypatch.setattr(module, name, capture)
    r = CliRunner().invoke(cli, args)  # the command reports the stop as a bug: it is seen here
    assert seen, r.output
    return seen[0]


def test_python_and_the_commands_give_an_architecture_the_same_defaults(monkeypatch, tmp_path):
    assert arch_defaults("lenet") == (1.0, 28) and arch_defaults("mobilenet_v2") == (0.5, 32)
    lenet = pt.PretrainConfig(arch="lenet").identity()
    assert (lenet["width"], lenet["input_size"]) == (1.0, 28)
    assert (f6.Fig6Config().pretrain.identity()["width"], f6.Fig6Config().pretrain.identity()["input_size"]) == (1.0, 28)
    cli_cfg = _captured(monkeypatch, pt, "pretrain", ["pretrain", "--arch", "lenet", "--out", str(tmp_path / "p")])
    assert cli_cfg.identity() == lenet
    cli_cfg = _captured(monkeypatch, pt, "pretrain", ["pretrain", "--out", str(tmp_path / "p")])
    assert cli_cfg.identity() == pt.PretrainConfig().identity()  # MobileNet-V2's: 0.5 and 32, as recorded before
    assert (cli_cfg.identity()["width"], cli_cfg.identity()["input_size"]) == (0.5, 32)
    fig = _captured(monkeypatch, f6, "reproduce_fig6", ["fig6", "--out", str(tmp_path / "f")])
    assert fig.pretrain.identity() == f6.Fig6Config().pretrain.identity()
    # a given value wins; another architecture takes its own defaults, not the first one's
    assert pt.PretrainConfig(arch="lenet", width=0.5).identity()["width"] == 0.5
    moved = dataclasses.replace(pt.PretrainConfig(arch="lenet"), arch="mobilenet_v2").identity()
    assert (moved["width"], moved["input_size"]) == (0.5, 32)
    spec = BackboneSpec(arch="lenet")
    assert (spec.width, spec.input_size) == (1.0, 28)


def test_a_lenet_pretrained_from_python_is_built_at_lenets_defaults(source_images):
    res = pt.pretrain(pt.PretrainConfig(arch="lenet", epochs=0.1, batch=16), data=source_images, progress=False)
    assert (res.backbone.spec.width, res.backbone.spec.input_size) == (1.0, 28)
    assert res.backbone.net.features[0].out_channels == 16 and res.backbone.net.features[3].out_channels == 32
    assert (res.results["config"]["width"], res.results["config"]["input_size"]) == (1.0, 28)  # recorded resolved


def test_params_shows_the_default_as_the_architectures():
    r = CliRunner().invoke(cli, ["params", "PretrainConfig"])
    assert r.exit_code == 0
    width = next(line for line in r.output.splitlines() if line.strip().startswith("width ="))
    assert width.strip().startswith("width = None") and "0.5 for MobileNet-V2, 1 for LeNet" in width


@pytest.mark.parametrize("bad", [dict(arch="resnet"), dict(arch="lenet", width=9.0), dict(input_size=4)])
def test_backbone_settings_are_checked_when_the_config_is_built(bad):
    with pytest.raises(Exception, match="arch|width|input_size"):
        pt.PretrainConfig(**bad)
