"""The weights file a pretraining starts from (``--weights``): its contents, not only its path, are
part of the pretraining's identity, so a file replaced in place is refused instead of reused."""
import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from ferristor.backbones.lenet import LeNet
from ferristor.cli.main import cli
from ferristor.errors import ConfigMismatchError, FerristorWarning
from ferristor.transfer_learning import pretrain as pt
from ferristor.transfer_learning.fig6 import slug


def _weights(path, seed: int):
    torch.manual_seed(seed)
    torch.save(LeNet(4, 1, 12).state_dict(), path)  # the synthetic source: 4 classes, 12×12
    return path


def _forget_fingerprint(results_file):
    """pretrain.json as versions before the fingerprint wrote it."""
    saved = json.loads(results_file.read_text())
    del saved["identity"][pt.WEIGHTS_SHA256]
    results_file.write_text(json.dumps(saved))


def test_a_weights_file_changed_in_place_is_refused_not_reused(tmp_path, source_images):
    w = _weights(tmp_path / "w.pth", 0)
    cfg = pt.PretrainConfig(arch="lenet", width=1.0, input_size=12, epochs=0.2, batch=16, weights=str(w))
    first = pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    assert len(first.results["identity"][pt.WEIGHTS_SHA256]) == 64
    assert pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False).backbone.checksum() == \
        first.backbone.checksum()  # the same file: read back
    _weights(w, 1)  # the same path, other contents
    with pytest.raises(ConfigMismatchError) as e:
        pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    ((name, there, now),) = e.value.differences
    assert name == "weights" and repr(there).startswith("contents sha256 ") and repr(there) != repr(now)
    named = dataclasses.replace(cfg, dataset=source_images.name)  # as fig6 names its data
    assert pt.saved_differences(named, tmp_path / "pre") == e.value.differences  # fig6's check before any work


def test_a_folder_recorded_before_the_fingerprint_is_read_back_with_a_warning(tmp_path, source_images):
    w = _weights(tmp_path / "w.pth", 0)
    cfg = pt.PretrainConfig(arch="lenet", width=1.0, input_size=12, epochs=0.2, batch=16, weights=str(w))
    first = pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    _forget_fingerprint(tmp_path / "pre" / "pretrain.json")
    with pytest.warns(FerristorWarning, match="before ferristor recorded a weights file's contents"):
        again = pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    assert again.backbone.checksum() == first.backbone.checksum()
    assert pt.saved_differences(dataclasses.replace(cfg, dataset=source_images.name), tmp_path / "pre") == []
    # without a weights file, the identity is what it was before the entry existed
    assert pt.WEIGHTS_SHA256 not in pt.PretrainConfig(arch="lenet", width=1.0, input_size=28).identity()


def test_pretrain_and_fig6_name_weights_changed_in_place(fig6_args, tmp_path):
    args, out, pair = fig6_args
    w = _weights(tmp_path / "w.pth", 0)
    source = pair.split("->")[0]
    pre = ["pretrain", "--dataset", source, "--arch", "lenet", "--input-size", "12", "--epochs", "0.2", "--batch",
           "16", "--weights", str(w), "--out", str(tmp_path / "pre"), "--no-progress"]
    assert CliRunner().invoke(cli, pre).exit_code == 0
    r = CliRunner().invoke(cli, args + ["--weights", str(w)])
    assert r.exit_code == 0, r.output
    _weights(w, 1)
    r = CliRunner().invoke(cli, pre)
    assert r.exit_code == 2
    assert "differing in --weights (contents sha256 " in r.stderr and "rerun with --fresh" in r.stderr
    r = CliRunner().invoke(cli, args + ["--weights", str(w)])
    assert r.exit_code == 2
    backbone = out / "backbones" / slug(f"{source}-lenet")
    assert "differing in --weights (contents sha256 " in r.stderr and f"delete {backbone}" in r.stderr
    # a pair and a backbone recorded before the fingerprint: read back as before, with a warning
    _weights(w, 0)
    _forget_fingerprint(backbone / "pretrain.json")
    path = out / "pairs" / f"{slug(pair)}.json"
    saved = json.loads(path.read_text())
    del saved["identity"]["pretrain"][pt.WEIGHTS_SHA256]
    path.write_text(json.dumps(saved))
    r = CliRunner().invoke(cli, args + ["--weights", str(w)])
    assert r.exit_code == 0 and "done before" in r.output, r.output
    assert "before ferristor recorded a weights file's contents" in r.stderr
