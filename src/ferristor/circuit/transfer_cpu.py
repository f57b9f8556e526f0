"""Fused CPU kernel of the table transfer (numba): hidden integers → programmed analogue weights.

One pass does what :meth:`TableTransfer.program` does in eight tensor passes — split the sign,
shift out the 3 MSBs, look up the level mean, add the scaled noise, keep the sign, scale to real
units — in the same float32 order, so results match it bit for bit. The Gaussian noise itself is
still drawn by each replica's ``torch.Generator`` (the draws are the table model's, unchanged).
No fastmath: a fused multiply-add would round differently from the torch path.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, boundscheck=False)
def _table_transfer(hidden, shift, means, noise, sigma, noisy, fold, level_step, out):
    zero = np.float32(0.0)
    for r in range(hidden.shape[0]):
        for i in prange(hidden.shape[1]):
            for j in range(hidden.shape[2]):
                h = np.int32(hidden[r, i, j])
                neg = h < 0
                value = means[(-h if neg else h) >> shift]
                if noisy:
                    value = np.float32(value + np.float32(noise[r, i, j] * sigma))
                    if fold:
                        value = abs(value)
                    elif value < zero:
                        value = zero
                value = -value if neg else value
                out[r, i, j] = np.float32(value * level_step)


def table_transfer_(hidden: np.ndarray, shift: int, means: np.ndarray, noise: np.ndarray | None,
                    sigma: float, fold: bool, level_step: float, out: np.ndarray) -> None:
    """Write the programmed weights of ``hidden`` (R, out, in) int16 into ``out`` float32 in place."""
    noisy = noise is not None
    _table_transfer(hidden, shift, means, noise if noisy else out, np.float32(sigma), noisy, fold,
                    np.float32(level_step), out)
