"""Images from Python: ``from_torch_dataset`` and ``pretrain(cfg, out, data=…)``. Float images in [0, 1]
(torchvision's ToTensor) had been taken silently where [−1, 1] is expected, and a pretraining on
``data=`` had recorded the config's default dataset ('fashion-mnist') as its identity's."""
import json
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ferristor.errors import FerristorWarning
from ferristor.transfer_learning import pretrain as pt
from ferristor.transfer_learning.images import from_torch_dataset


def _sets(lo: float, hi: float, n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(n, 1, 12, 12, generator=g)
    y = (x.mean((1, 2, 3)) > (lo + hi) / 2).long()
    return TensorDataset(x[: n * 3 // 4], y[: n * 3 // 4]), TensorDataset(x[n * 3 // 4:], y[n * 3 // 4:])


def test_float_images_in_zero_one_warn_once_naming_the_range_and_the_fix():
    with pytest.warns(FerristorWarning) as caught:
        from_torch_dataset(*_sets(0.0, 1.0))
    said = [str(w.message) for w in caught if issubclass(w.category, FerristorWarning)]
    assert len(said) == 1
    assert "custom: every float pixel lies in [0, 1] (seen 7.97e-05…1)" in said[0] and "x * 2 - 1" in said[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_torch_dataset(*_sets(-1.0, 1.0))  # already scaled
        uint8 = TensorDataset(torch.randint(0, 2, (8, 1, 12, 12), dtype=torch.uint8), torch.arange(8) % 2)
        assert float(from_torch_dataset(uint8).x_train.min()) == -1.0  # scaled here: nothing to say


def test_a_pretraining_on_given_data_names_that_data(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ims = from_torch_dataset(*_sets(-1.0, 1.0, n=128))
    cfg = pt.PretrainConfig(arch="lenet", input_size=12, epochs=0.5, batch=16)
    res = pt.pretrain(cfg, tmp_path / "pre", data=ims, progress=False)
    saved = json.loads((tmp_path / "pre" / "pretrain.json").read_text())
    assert saved["identity"]["dataset"] == "custom" == saved["dataset"] == res.results["config"]["dataset"]
    # a name given is kept (fig6 names each source as typed); the same folder is read back
    named = pt.pretrain(pt.PretrainConfig(arch="lenet", input_size=12, epochs=0.5, batch=16, dataset="mine"),
                        tmp_path / "named", data=ims, progress=False)
    assert named.results["identity"]["dataset"] == "mine"
    assert pt.pretrain(cfg, tmp_path / "pre", data=ims, progress=False).backbone.checksum() == res.backbone.checksum()
    # a folder recorded before (the default's name, the same data) is read back as before
    saved["identity"]["dataset"] = "fashion-mnist"
    (tmp_path / "pre" / "pretrain.json").write_text(json.dumps(saved))
    assert pt.pretrain(cfg, tmp_path / "pre", data=ims, progress=False).backbone.checksum() == res.backbone.checksum()
    other = from_torch_dataset(*(TensorDataset(t.tensors[0].flip(-1), t.tensors[1]) for t in _sets(-1.0, 1.0, n=128)))
    with pytest.raises(Exception, match="another configuration"):  # other data under that name: still refused
        pt.pretrain(cfg, tmp_path / "pre", data=other, progress=False)
    assert np.isfinite(res.results["final_test_accuracy"])
