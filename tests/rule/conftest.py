"""Shared problems of the rule's tests."""
import torch


def rank1_problem(shape, seed=0):
    """Hidden integers (R, I, O) with saturation cases in replica 0's first row, and rank-1 factors
    δ (R, O), x (R, I) whose updates span several LSBs either way."""
    n_rep, n_in, n_out = shape
    g = torch.Generator().manual_seed(seed)
    delta = torch.randn(n_rep, n_out, generator=g) * 0.05
    x = torch.rand(n_rep, n_in, generator=g) * 2 - 1
    hidden = torch.randint(-511, 512, (n_rep, n_in, n_out), generator=g).to(torch.float32)
    hidden[0, 0, :5] = torch.tensor([511.0, -511.0, 510.0, -510.0, 0.0])  # saturation cases
    return hidden, delta, x
