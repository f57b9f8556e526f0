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


def format_ledger(report: dict) -> str:
    """One replica's report (an entry of :func:`ledger`) as a text table: per layer and for the network,
    synapses, transfers, FeCAP ops per sign/MSB cell (mean, worst), memristor ops per device (mean,
    worst) and energy; then the initial programming, which is reported apart."""
    head = ("layer", "synapses", "transfers", "FeCAP ops/cell mean", "worst", "memristor ops mean", "worst",
            "energy µJ")
    rows = [head]
    for name, rep in [(r.get("name", f"layer {i}"), r) for i, r in enumerate(report["layers"])] + [
            ("network", report["network"])]:
        fe, me = rep["fecap_ops"], rep["memristor_ops"]
        rows.append((name, f"{rep['weights']:,}", f"{rep['transfers']:,}", f"{fe['mean_sign_msb_cell']:,.1f}",
                     f"{fe['worst']:,.0f}", f"{me['mean']:,.1f}", f"{me['worst']:,.0f}",
                     f"{rep['energy_nJ']['total'] / 1e3:.4g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    init = report["initial_programming"]
    lines.append(f"initial programming (apart): {init['fecap_ops']['per_sign_msb_cell']} ops per sign/MSB FeCAP, "
                 f"{init['memristor_ops']['per_device']} per memristor; "
                 f"{(init['energy_nJ']['fecap_total'] + init['energy_nJ']['memristor_total']) / 1e3:.4g} µJ")
    return "\n".join(lines)
