"""Forward/backward passes of a crossbar on the backend its device calls for (numba kernels on the
CPU, tensor operations elsewhere). Crossbars are (R, I, O), activations (R, B, features)."""
from __future__ import annotations

import numpy as np
import torch

from ..backend import backend_for

_NO_BIAS = np.zeros((1, 1), np.float32)


def _numba(t: torch.Tensor) -> bool:
    return backend_for(t.device) == "numba"


def linear_forward(w: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x·W (+ bias (R, O)) → (R, B, O). On the CPU: the deterministic kernel."""
    if _numba(x):
        from .passes_cpu import linear_forward as kernel
        out = torch.empty(x.shape[0], x.shape[1], w.shape[2])
        b = bias.numpy() if bias is not None else np.broadcast_to(_NO_BIAS, (x.shape[0], 1))
        kernel(w.numpy(), x.numpy(), b, bias is not None, out.numpy())
        return out
    return linear_eval(w, x, bias)


def linear_eval(w: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The same product by torch's batched matmul (fast on large batches; its last bits may depend
    on the CPU): used for evaluation, never for training passes on the CPU."""
    out = torch.bmm(x, w)
    return out + bias[:, None, :] if bias is not None else out


def linear_backward_input(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """∂L/∂x = g·Wᵀ → (R, B, I)."""
    if _numba(g):
        from .passes_cpu import linear_backward_input as kernel
        gx = torch.empty(g.shape[0], g.shape[1], w.shape[1])
        kernel(w.numpy(), g.numpy(), gx.numpy())
        return gx
    return torch.bmm(g, w.transpose(1, 2))
