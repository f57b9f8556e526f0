"""The fast step (one compiled call per sample, no autograd engine) is the plain loop, bit for bit."""
import pytest
import torch

import ferristor.nn.functional as nnF
from ferristor.experiments import fast_step
from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec
from ferristor.optim import HybridSGD


def _data(n, features, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, 3, features, generator=g) * 2 - 1  # (steps, R, B, features)
    y = torch.randint(0, classes, (n, 2, 3), generator=g)
    return x, y


@pytest.mark.parametrize("output,sizes,norm", [("softmax", (12, 9, 7, 4), "layer"), ("sigmoid", (6, 11, 1), "none")])
@pytest.mark.parametrize("mode", ["fp", "hm-var"])
def test_fast_step_equals_the_plain_loop(output, sizes, norm, mode):
    spec = NetworkSpec(sizes=sizes, norm=norm, output=output)
    loss_fn = nnF.cross_entropy if output == "softmax" else nnF.binary_cross_entropy_with_logits
    xs, ys = _data(25, sizes[0], sizes[-1] if output == "softmax" else 2)
    models = []
    for fast in (True, False):
        m = HybridMLP(spec, config=HybridConfig(mode=mode), replicas=2, seeds=[5, 6])
        opt = HybridSGD(m.parameters(), lr=0.3, p=0.6, k=4)
        losses = []
        for x, y in zip(xs, ys):
            if fast:
                assert fast_step.applies(m, opt, True, x)
                losses.append(float(fast_step.step(m, opt, x, y)))
            else:
                loss = loss_fn(m(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss))
        models.append((m, losses))
    (a, la), (b, lb) = models
    assert la == lb
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_loss_matches_torch_to_rounding():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 10, generator=g, requires_grad=True)
    y = torch.randint(0, 10, (2, 5), generator=g)
    ours = nnF.cross_entropy(z, y)
    ours.backward()
    zt = z.detach().clone().requires_grad_(True)
    theirs = torch.nn.functional.cross_entropy(zt.reshape(-1, 10), y.reshape(-1), reduction="sum") / 5
    theirs.backward()
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(z.grad, zt.grad)
    # one chip, a batch: F.cross_entropy's mean
    torch.testing.assert_close(nnF.cross_entropy(z[0], y[0]), torch.nn.functional.cross_entropy(z[0], y[0]))
    s = torch.randn(7, 1, generator=g)
    t = torch.randint(0, 2, (7,))
    torch.testing.assert_close(nnF.binary_cross_entropy_with_logits(s, t),
                               torch.nn.functional.binary_cross_entropy_with_logits(s[:, 0], t.float()))
