"""Stateless tensor functions under the modules: normalisation without affine parameters (the torch path)."""
from __future__ import annotations

import numpy as np
import torch

from .autograd_util import is_compiling, outside_compile, refuse_create_graph

EPS = 1e-5  # LayerNorm/BatchNorm epsilon, as torch.nn.LayerNorm [I]


def normalize(a: torch.Tensor, dim: int, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(a − mean)/σ over ``dim``, without affine (γ = 1, β = 0, digest §4): returns (n, 1/σ).
    Differentiable by autograd; the CPU training path uses the deterministic kernels of ``passes_cpu``."""
    c = a - a.mean(dim, keepdim=True)
    inv = torch.rsqrt((c * c).mean(dim, keepdim=True) + eps)
    return c * inv, inv


class _Loss(torch.autograd.Function):
    """Loss and its gradient in one pass; on the CPU by ferristor's kernels (``passes_cpu.loss_grad``,
    with exp/log from ``detmath``), whose bits do not depend on the machine. ``y``: the targets as a
    flat numpy array; ``kept``: None (every row counts, the mean over ``batch`` rows per replica), or
    per replica the rows that count (``ignore_index``: the mean over those, the others' gradient 0)."""

    @staticmethod
    def forward(ctx, logits, y, sigmoid, batch, kept=None):
        from .passes_cpu import loss_grad
        z = logits.detach().reshape(-1, logits.shape[-1]).contiguous()
        if kept is None:
            grad = torch.empty_like(z)
            losses = loss_grad(z.numpy(), y, sigmoid, 1.0 / batch if batch else 0.0, grad.numpy())
            total = float(losses.sum()) / batch if batch else float("nan")  # an empty batch: torch's nan
        else:
            grad, total = torch.zeros_like(z), 0.0
            zn, gn = z.numpy(), grad.numpy()
            for rows in kept:
                if not len(rows):  # every target ignored: torch's mean over none, nan (the gradient 0)
                    total += float("nan")
                    continue
                g = np.empty((len(rows), z.shape[1]), np.float32)
                total += float(loss_grad(zn[rows], y[rows], sigmoid, 1.0 / len(rows), g).sum()) / len(rows)
                gn[rows] = g
        ctx.grad = grad.view(logits.shape)
        return torch.tensor(total, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():  # create_graph=True: this gradient is a constant, its Hessian would be 0
            refuse_create_graph("ferristor.nn.functional's loss (use torch.nn.functional's for a second order)")
        return ctx.grad * g, None, None, None, None


def _batch(y: torch.Tensor) -> int:
    return y.shape[-1] if y.dim() else 1


def _rows_per_mean(y: torch.Tensor, replicas, what: str) -> int:
    """How many rows each mean of the loss covers. One chip, targets (B,): torch's batch mean. With
    ``replicas=R``, targets (R, ...): each replica's mean over all its rows, summed over replicas (each
    chip its own gradient). Without ``replicas``, targets of 2 or more axes are read as before: the
    mean over the last axis, summed over the others — said in a warning, since a batch of sequences
    (B, T) read so would weigh its loss B times."""
    from ..errors import ConfigError
    if replicas is None:
        if y.dim() >= 2:
            import warnings

            from ..errors import FerristorWarning
            warnings.warn(FerristorWarning(
                f"{what} read targets of shape {tuple(y.shape)} as {y.shape[0]} replica(s) (chips), each its own mean "
                f"over its last axis, summed: pass replicas={y.shape[0]} to say so; for a batch of sequences, "
                f"reshape the logits to (-1, classes) and the targets to ({y.numel()},) for one mean"), stacklevel=3)
        return _batch(y)
    if isinstance(replicas, bool) or not isinstance(replicas, (int, np.integer)) or replicas < 1:
        raise ConfigError("replicas", replicas, "None (one chip) or an integer ≥ 1")
    if y.dim() < 1 or y.shape[0] != replicas:
        raise ConfigError("replicas", replicas, f"the targets' leading axis, (replicas, ...): the targets have shape "
                          f"{tuple(y.shape)}")
    return y.numel() // replicas


def _check(logits: torch.Tensor, y: torch.Tensor, what: str, classes: bool) -> None:
    from ..errors import ConfigError
    if tuple(logits.shape[:-1]) != tuple(y.shape):
        raise ConfigError(f"{what} target shape", tuple(y.shape), f"{tuple(logits.shape[:-1])} (the logits' but the last)")
    if classes and (y.dtype.is_floating_point or y.dtype == torch.bool):
        raise ConfigError(f"{what} target dtype", str(y.dtype), "integer class indices")


def _ignored(y: np.ndarray, n_classes: int, ignore_index: int) -> bool:
    """Whether a flat array of class indices holds ``ignore_index``; a ConfigError for any other
    target outside 0…n_classes − 1 (torch raises an IndexError on the CPU and fails a device assert on
    a GPU; ferristor's kernels would read past the row). One comparison at batch 1."""
    if y.shape[0] == 1:
        v = y[0]
        if 0 <= v < n_classes and v != ignore_index:
            return False
    elif not y.shape[0] or (0 <= y.min() and y.max() < n_classes and not 0 <= ignore_index < n_classes):
        return False
    y = y.astype(np.int64, copy=False)  # uint8 targets meet a negative ignore_index
    ignored = y == ignore_index
    bad = ~ignored & ((y < 0) | (y >= n_classes))
    if bad.any():
        from ..errors import ConfigError
        rest = y[~ignored]
        raise ConfigError("cross_entropy target", int(y[bad][0]), reason=(
            f"labels span {int(rest.min())}…{int(rest.max())} but the logits have {n_classes} classes (allowed "
            f"0…{n_classes - 1}, or ignore_index={ignore_index}: left out of the loss and its mean, as by "
            "F.cross_entropy)"))
    return bool(ignored.any())


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, ignore_index: int = -100, *,
                  replicas: int | None = None) -> torch.Tensor:
    """Softmax + cross-entropy: logits (B, C) with y (B,) is ``F.cross_entropy``'s batch mean; with
    ``replicas=R``, logits (R, ..., C) with y (R, ...) give each replica (chip) the mean over its rows,
    summed over replicas, so each gets its own mean gradient. Without ``replicas``, targets of two or
    more axes are read as replicas along all but the last (a FerristorWarning says so: a batch of
    sequences (B, T) belongs reshaped to (B·T,)). On the CPU the same bits on every machine.

    Targets are class indices 0…C − 1; a target equal to ``ignore_index`` (−100, as torch's) counts
    neither in the loss nor in the mean, as ``F.cross_entropy``'s: each replica's mean is over its
    other targets, and a batch of ignored targets only — or an empty batch — gives nan, as torch's.
    Any other target is refused with a ConfigError (on a GPU, where checking would wait for the
    device, torch's own kernel fails on it)."""
    if is_compiling():  # torch.compile: computed eagerly (autograd_util.outside_compile)
        return outside_compile(cross_entropy, logits, y, ignore_index, replicas=replicas)
    _check(logits, y, "cross_entropy", True)
    b = _rows_per_mean(y, replicas, "cross_entropy")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        from ..errors import ConfigError
        raise ConfigError("ignore_index", ignore_index, "an integer (a target value left out of the loss)")
    from ..backend import backend_for
    n_classes = logits.shape[-1]
    if backend_for(logits.device) == "numba" and logits.dtype == torch.float32:
        yn = y.reshape(-1).to(torch.int64).contiguous().numpy()  # one kernel build for every integer dtype
        if not _ignored(yn, n_classes, ignore_index):
            return _Loss.apply(logits, yn, False, b)
        kept = [r * b + np.flatnonzero(yn[r * b:(r + 1) * b] != ignore_index) for r in range(yn.shape[0] // b)] \
            if b else []
        return _Loss.apply(logits, yn, False, b, kept)
    if y.is_cpu:
        _ignored(y.reshape(-1).numpy(), n_classes, ignore_index)
    if y.dtype not in (torch.int64, torch.uint8):  # torch's kernel takes these; ferristor's any integer
        y = y.long()
    if y.dim() <= 1:  # one chip: torch's own batch mean
        return torch.nn.functional.cross_entropy(logits, y, ignore_index=ignore_index)
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1), reduction="none",
                                               ignore_index=ignore_index)
    groups = y.reshape(int(np.prod(y.shape[:-1])) if replicas is None else replicas, b)  # b may be 0: explicit
    return (losses.view(groups.shape).sum(-1) / (groups != ignore_index).sum(-1)).sum()


def binary_cross_entropy_with_logits(logits: torch.Tensor, y: torch.Tensor, *,
                                     replicas: int | None = None) -> torch.Tensor:
    """Sigmoid + binary cross-entropy of one logit per sample (logits (..., 1), y (...) in {0, 1}),
    reduced as :func:`cross_entropy` (``replicas`` too)."""
    if is_compiling():  # torch.compile: computed eagerly (autograd_util.outside_compile)
        return outside_compile(binary_cross_entropy_with_logits, logits, y, replicas=replicas)
    _check(logits, y, "binary_cross_entropy_with_logits", False)
    b = _rows_per_mean(y, replicas, "binary_cross_entropy_with_logits")
    from ..backend import backend_for
    if backend_for(logits.device) == "numba" and logits.dtype == torch.float32:
        return _Loss.apply(logits, y.to(torch.float32).reshape(-1).contiguous().numpy(), True, b)
    flat = torch.nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), y.reshape(-1).to(logits.dtype),
                                                                reduction="sum")
    return flat / b
