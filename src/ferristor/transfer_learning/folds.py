"""Tenfold cross-validation with horizontal flips kept beside their original (the paper's protocol,
as issue 9 relays it: the data doubled with horizontal flips, ten folds, n = 10 runs).

The pool holds n original images and their n flips: row i < n is image i, row n + i its flip.
Folds are drawn on the originals — stratified by class, seeded — and a flip always lies in its
original's fold, so no test image has its mirror image in the training set. With class counts
divisible by the number of folds (``balanced_pool``) every fold has the same size, which lets the
ten runs train side by side as replicas.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataError

STREAM_FOLDS, STREAM_POOL = 11, 12


def balanced_pool(y: torch.Tensor, per_class: int | None, n_folds: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset: ``per_class`` images of each class (None: as many as the
    rarest class has), rounded down to a multiple of ``n_folds``; drawn with a seeded permutation."""
    y = y.numpy()
    classes = np.unique(y)
    counts = np.bincount(y)[classes]
    want = int(counts.min()) if per_class is None else per_class
    if want > counts.min():
        raise ConfigError("per_class", per_class, f"at most {int(counts.min())} (the rarest class's images)")
    want -= want % n_folds
    if want < 1:
        raise DataError(f"too few images per class for {n_folds} folds (the rarest class has {int(counts.min())})")
    out = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        out.append(np.sort(idx[np.random.default_rng([seed, STREAM_POOL, int(c)]).permutation(len(idx))[:want]]))
    return np.sort(np.concatenate(out))


def assign_folds(y: torch.Tensor | np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold of each original image: within each class, a seeded permutation dealt round-robin."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ConfigError("folds", n_folds, "an integer ≥ 2")
    y = np.asarray(y)
    folds = np.empty(len(y), np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        perm = np.random.default_rng([seed, STREAM_FOLDS, int(c)]).permutation(len(idx))
        folds[idx[perm]] = np.arange(len(idx)) % n_folds
    return folds


def with_flips(folds: np.ndarray) -> np.ndarray:
    """Folds of the doubled pool: the flip of image i (row n + i) is in image i's fold."""
    return np.concatenate([folds, folds])


def split(pool_folds: np.ndarray, test_folds) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows) of the doubled pool for the given test fold(s)."""
    test = np.isin(pool_folds, np.atleast_1d(test_folds))
    return np.flatnonzero(~test), np.flatnonzero(test)


def inner_validation_fold(outer: int, n_folds: int) -> int:
    """The training fold held out to choose a run's hyperparameters: the next fold (never the run's test fold)."""
    return (outer + 1) % n_folds
