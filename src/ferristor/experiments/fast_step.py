"""One training step of a ``HybridMLP`` on the CPU in one compiled call, without the autograd engine —
the same kernels in the same order as the plain loop with ferristor's loss::

    loss = ferristor.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

At batch 1 the autograd engine, the optimizer's step wrapper and the custom Functions cost more
than the whole forward and backward pass. ``HybridMLP.train_pass`` runs the fused forward, the loss
gradient and the fused backward in one call and hands each layer the factors the loop would have;
``HybridSGD.hybrid_step`` then applies the rule. Tested bit for bit against the loop
(``tests/experiments/test_fast_step.py``).
"""
from __future__ import annotations

import numpy as np
import torch

from ..nn.mlp import HybridMLP
from ..optim import HybridSGD


def applies(model, optimizer, default_loss: bool, x: torch.Tensor) -> bool:
    """A HybridMLP on its fused CPU pass, trained with the default loss and a HybridSGD owning every parameter."""
    return (default_loss and isinstance(model, HybridMLP) and model.training and isinstance(optimizer, HybridSGD)
            and optimizer.is_pure() and model.fused_ok(x))


def step(model: HybridMLP, optimizer: HybridSGD, x, y) -> float:
    """The loop's step above (x, y: tensors or numpy arrays) → the loss. ``zero_grad`` has nothing to
    clear here (each step consumes its factors; captured hybrid parameters never hold .grad) but
    for factors a caller left behind."""
    for layer in model.layers:
        if layer._tapes:
            optimizer.zero_grad()
            break
    loss = model.train_pass(_array(x), _array(y))
    optimizer.hybrid_step()
    return loss


def _array(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().numpy()
