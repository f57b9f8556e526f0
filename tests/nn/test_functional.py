"""ferristor's losses against torch's: targets outside the classes are refused, ``ignore_index`` and an
empty batch are F.cross_entropy's, on ferristor's kernels and on the torch path alike."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from ferristor.backend import use_backend
from ferristor.errors import ConfigError, FerristorWarning
from ferristor.nn.functional import binary_cross_entropy_with_logits, cross_entropy

BACKENDS = ["numba", "torch"]


def _loss_and_grad(fn, logits, *args, **kw):
    z = logits.detach().clone().requires_grad_(True)
    loss = fn(z, *args, **kw)
    loss.backward()
    return loss.detach(), z.grad


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("targets,bad", [([0, 3], 3), ([0, 1000000], 1000000), ([0, -1], -1), ([2, -7, 1], -7),
                                         ([3], 3)])
def test_targets_outside_the_classes_are_refused(backend, targets, bad):
    """They gave a loss and a gradient that disagreed (the kernel read past the row; -1 another class)
    where torch raises: refused, naming the label, the span and what is allowed, as fit does."""
    with use_backend(backend), pytest.raises(
            ConfigError, match=rf"cross_entropy target={bad}: labels span .* but the logits have 3 classes "
                               r"\(allowed 0…2, or ignore_index=-100"):
        cross_entropy(torch.randn(len(targets), 3), torch.tensor(targets))
    with use_backend(backend), pytest.raises(ConfigError, match="target=3"):  # unsigned targets too
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 3], dtype=torch.uint8))
    with use_backend(backend), pytest.raises(ConfigError, match="target=-100"):  # no longer ignored
        cross_entropy(torch.randn(2, 3), torch.tensor([0, -100]), ignore_index=-1)
    with pytest.raises(ConfigError, match="ignore_index"):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), ignore_index=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("targets,ignore", [([0, -100], -100), ([-100, 2, 1, -100], -100), ([2, 1, 0], 2),
                                            ([1, 5, 5], 5), ([0, 2, 1], -100)])
def test_ignored_targets_are_left_out_as_by_torch(backend, targets, ignore):
    """ignore_index (−100 by default) as F.cross_entropy's: the mean is over the other targets, and
    the ignored rows' gradient is 0 (the default −100 gave a loss from a row it read past)."""
    logits = torch.randn(len(targets), 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor(targets)
    with use_backend(backend):
        loss, grad = _loss_and_grad(cross_entropy, logits, y, ignore_index=ignore)
    ref, ref_grad = _loss_and_grad(F.cross_entropy, logits, y, ignore_index=ignore)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-7)
    assert torch.all(grad[y == ignore] == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_replica_means_over_its_own_kept_targets(backend):
    logits = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([[0, -100, 4, 1], [-100, 3, 3, 3], [1, 2, 3, 4]])
    with use_backend(backend):
        loss, grad = _loss_and_grad(cross_entropy, logits, y)
    ref, ref_grad = _loss_and_grad(lambda z, t: sum(F.cross_entropy(z[r], t[r]) for r in range(3)), logits, y)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0,), (2, 0)])
def test_an_empty_or_wholly_ignored_batch_is_nan_as_torchs(backend, shape):
    """An empty batch raised ZeroDivisionError on ferristor's kernels; torch's mean over nothing is nan,
    its gradient empty (or 0 where every target is ignored)."""
    with use_backend(backend):
        loss, grad = _loss_and_grad(cross_entropy, torch.randn(*shape, 3), torch.zeros(shape, dtype=torch.long))
        assert math.isnan(loss) and grad.shape == (*shape, 3)
        loss, grad = _loss_and_grad(binary_cross_entropy_with_logits, torch.randn(*shape, 1), torch.zeros(shape))
        assert math.isnan(loss) and grad.shape == (*shape, 1)
        loss, grad = _loss_and_grad(cross_entropy, torch.randn(2, 3), torch.tensor([-100, -100]))
        assert math.isnan(loss) and torch.all(grad == 0)
    assert math.isnan(F.cross_entropy(torch.randn(0, 3), torch.zeros(0, dtype=torch.long)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_integer_target_dtype_on_both_paths(backend):
    """int32 targets worked on ferristor's kernels and failed in torch's (which takes int64 and uint8)."""
    logits = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
    ref = F.cross_entropy(logits, torch.tensor([0, 3, 1]))
    with use_backend(backend):
        for dtype in (torch.int32, torch.int16, torch.uint8, torch.int64):
            torch.testing.assert_close(cross_entropy(logits, torch.tensor([0, 3, 1], dtype=dtype)), ref)
        torch.testing.assert_close(cross_entropy(logits[0], torch.tensor(0)), F.cross_entropy(logits[0], torch.tensor(0)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, n_classes", [(cross_entropy, 4), (binary_cross_entropy_with_logits, 1)])
def test_replicas_says_what_the_leading_axis_is(backend, fn, n_classes):
    """(B, T, C) logits of a sequence model were read as B replicas: the loss came out B times torch's
    mean over the tokens, silently. Now the reading is said (a warning) unless replicas= names it, and
    with replicas=R each replica's mean is over all its rows."""
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 2, 5, n_classes, generator=g)
    y = torch.randint(0, 2, (3, 2, 5), generator=g)
    y = y if n_classes > 1 else y.float()
    with use_backend(backend):
        with pytest.warns(FerristorWarning, match=r"targets of shape \(3, 2, 5\) as 3 replica.*replicas=3.*\(30,\)"):
            fn(logits, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # replicas given, or one chip's (B,) targets: nothing to say
            each, grad = _loss_and_grad(fn, logits, y, replicas=3)
            alone = [_loss_and_grad(fn, logits[r].reshape(-1, n_classes), y[r].reshape(-1)) for r in range(3)]
        assert math.isclose(float(each), sum(float(a) for a, _ in alone), rel_tol=1e-6)
        for r, (_, g_r) in enumerate(alone):  # each chip's own mean gradient
            torch.testing.assert_close(grad[r], g_r.reshape(2, 5, n_classes))
        with pytest.raises(ConfigError, match=r"replicas=2.*\(3, 2, 5\)"):
            fn(logits, y, replicas=2)
        with pytest.raises(ConfigError, match="replicas=0"):
            fn(logits, y, replicas=0)
