"""The PyTorch sample in README's "Use" section runs as printed (with a small loader of its own)."""
import re
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_pytorch_sample_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    sample = next(b for b in blocks if "HybridSGD" in b)
    assert len(sample.strip().splitlines()) <= 12
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(torch.rand(150, 784, generator=g) * 2 - 1, torch.randint(0, 10, (150,), generator=g)))
    scope = {"loader": loader}
    exec(compile(sample, str(README), "exec"), scope)
    model = scope["model"]
    assert int(model[0].weight_transfers[0]) == 1  # 150 inputs, k = 100
    assert scope["ledger"](model)[0]["network"]["memristor_ops"]["mean"] == 2.0
