"""Forward/backward passes of a crossbar on the backend its device calls for (numba kernels on the
CPU, tensor operations elsewhere). Crossbars are (R, I, O), activations (R, B, features)."""
from __future__ import annotations

import numpy as np
import torch

from ..backend import cpu_module, numba_for

_NO_BIAS: dict[int, np.ndarray] = {}


def _numba(t: torch.Tensor) -> bool:
    return numba_for(t)


def linear_forward_np(w: np.ndarray, x: np.ndarray, bias: np.ndarray | None) -> torch.Tensor:
    """x·W (+ bias (R, O)) → (R, B, O) by the deterministic CPU kernel, on numpy crossbar views."""
    kernel = cpu_module("nn.passes_cpu").linear_forward
    out = np.empty((x.shape[0], x.shape[1], w.shape[2]), np.float32)
    if bias is None:
        bias = _NO_BIAS.get(x.shape[0])
        if bias is None:
            bias = _NO_BIAS[x.shape[0]] = np.zeros((x.shape[0], 1), np.float32)
        kernel(w, x, bias, False, out)
    else:
        kernel(w, x, bias, True, out)
    return torch.from_numpy(out)


def linear_backward_input_np(w: np.ndarray, g: np.ndarray) -> torch.Tensor:
    kernel = cpu_module("nn.passes_cpu").linear_backward_input
    gx = np.empty((g.shape[0], g.shape[1], w.shape[1]), np.float32)
    kernel(w, g, gx)
    return torch.from_numpy(gx)


def linear_forward(w: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x·W (+ bias (R, O)) → (R, B, O). On the CPU: the deterministic kernel."""
    if _numba(x):
        return linear_forward_np(w.numpy(), x.numpy(), bias.numpy() if bias is not None else None)
    return linear_eval(w, x, bias)


def linear_eval(w: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The same product by torch's batched matmul (fast on large batches; its last bits may depend
    on the CPU): used for evaluation, never for training passes on the CPU."""
    out = torch.bmm(x, w)
    return out + bias[:, None, :] if bias is not None else out


def linear_backward_input(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """∂L/∂x = g·Wᵀ → (R, B, I)."""
    if _numba(g):
        return linear_backward_input_np(w.numpy(), g.numpy())
    return torch.bmm(g, w.transpose(1, 2))
