"""``ledger(model)``: the per-device operation, energy and endurance report of any model's hybrid layers."""
from __future__ import annotations

import torch
from torch import nn

from ..circuit.ledger import initial_programming_report, network_report
from .hybrid import HybridModule


def ledger(model: nn.Module) -> list[dict] | None:
    """One report per replica (chip): per hybrid layer (in module order, named by their module path) and
    for the whole network — FeCAP and memristor operations per device (mean, worst), energy, endurance
    margins — with the initial programming reported apart. None when no layer is stored on devices
    (no hybrid layer, or all in ``fp`` mode: a float baseline has no device ledger)."""
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, HybridModule) and m.mode != "fp"]
    if not named:
        return None
    first = named[0][1]
    cfg, layout = first.config.ledger, first.config.layout
    replicas = {m.n_replicas for _, m in named}
    if len(replicas) > 1:
        raise ValueError(f"hybrid layers hold different numbers of replicas: {sorted(replicas)}")
    n_synapses = sum(m.n_synapses() for _, m in named)
    reports = []
    for r in range(first.n_replicas):
        rep = network_report([m.counts(r) for _, m in named], cfg, layout)
        for (name, _), layer_rep in zip(named, rep["layers"]):
            layer_rep["name"] = name or type(model).__name__
        rep["initial_programming"] = initial_programming_report(n_synapses, cfg, layout)
        reports.append(rep)
    return reports


def events_tensor(layer: HybridModule, replica: int = 0) -> torch.Tensor:
    """Hidden-weight updates per synapse of one layer and replica (flattened), for histograms."""
    return layer.counts(replica).update_events
