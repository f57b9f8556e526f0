"""``ledger(model)``: the per-device operation, energy and endurance report of any model's hybrid layers,
whatever rule they learn with; ``device_ledger(model)``: the generic per-device-kind part alone, for
every model including the fp baseline (whose float32 weights are "not a device")."""
from __future__ import annotations

import torch
from torch import nn

from ..circuit.devices import devices_report
from ..circuit.ledger import devices_initial_report, initial_programming_report, network_groups_report
from ..errors import ConfigError
from .hybrid import HybridModule


def _named(model: nn.Module, fp: bool) -> list[tuple[str, HybridModule]]:
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, HybridModule) and (fp or m.mode != "fp")]
    replicas = {m.n_replicas for _, m in named}
    if len(replicas) > 1:
        raise ValueError(f"hybrid layers hold different numbers of replicas: {sorted(replicas)}")
    return named


def _one_pricing(named: list[tuple[str, HybridModule]]):
    """The LedgerConfig every layer shares. A network's totals and margins are priced with one set of
    device costs and ratings (one chip, one technology), and its devices are pooled by role, which
    needs one synapse layout: layers that differ are refused, named, rather than priced and counted
    as the first layer is."""
    label = lambda name, m: f"module {name or '(the model itself)'}" + (f" ({m.rng_name})" if m.rng_name else "")  # noqa: E731
    first = named[0][1]
    for part, why in (("ledger", "priced with one set of device costs and ratings"),
                      ("layout", "pooled by device role, which needs one synapse layout")):
        other = [label(name, m) for name, m in named if getattr(m.config, part) != getattr(first.config, part)]
        if other:
            raise ConfigError(f"config.{part}", f"different in {', '.join(other)} than in {label(*named[0])}",
                              reason=f"a network's energy, operations and endurance are {why}: give every hybrid "
                              f"layer the same {part}, or read each layer's own layer.ledger_report()")
    return first.config.ledger


def initial_report(layers: list[HybridModule]) -> dict:
    """The one-off programming before training, in the hybrid report's keys: for the hybrid rule every
    FeCAP written once and one transfer; for a baseline rule every memristor pair programmed once."""
    first = layers[0]
    cfg, layout = first.config.ledger, first.config.layout
    n_synapses = sum(m.n_synapses() for m in layers)
    if first.scheme_runner is None:
        return initial_programming_report(n_synapses, cfg, layout)
    return devices_initial_report(devices_report([g for m in layers for g in m.scheme_runner.initial_groups(m)], cfg))


def ledger(model: nn.Module) -> list[dict] | None:
    """One report per replica (chip): per hybrid layer (in module order, named by their module path) and
    for the whole network — FeCAP and memristor operations per device (mean, worst), energy, endurance
    margins, and the generic per-kind ``devices`` — with the initial programming reported apart. None
    when no layer is stored on devices (no hybrid layer, or all in ``fp`` mode: see :func:`device_ledger`)."""
    named = _named(model, fp=False)
    if not named:
        return None
    first = named[0][1]
    cfg = _one_pricing(named)
    reports = []
    for r in range(first.n_replicas):
        rep = network_groups_report([m.device_groups(r) for _, m in named], cfg)
        for (name, _), layer_rep in zip(named, rep["layers"]):
            layer_rep["name"] = name or type(model).__name__
        rep["initial_programming"] = initial_report([m for _, m in named])
        reports.append(rep)
    return reports


def device_ledger(model: nn.Module) -> list[dict] | None:
    """Per replica: the generic per-device-kind report (``circuit.devices``) of every hybrid layer and
    of the network, for any rule and for fp — whose float32 weights are counted as digital updates,
    "not a device". None for a model without hybrid layers."""
    named = _named(model, fp=True)
    if not named:
        return None
    cfg = _one_pricing(named)
    out = []
    for r in range(named[0][1].n_replicas):
        per = [(name or type(model).__name__, *m.device_groups(r)) for name, m in named]
        layers = [{"name": n, "transfers": t, "devices": devices_report(g, cfg)} for n, g, t in per]
        net = devices_report([g for _, gs, _ in per for g in gs], cfg)
        out.append({"layers": layers, "network": {"transfers": max(t for _, _, t in per), "devices": net}})
    return out


def events_tensor(layer: HybridModule, replica: int = 0) -> torch.Tensor:
    """Hidden-weight updates per synapse of one layer and replica (flattened), for histograms."""
    return layer.counts(replica).update_events


def format_ledger(report: dict) -> str:
    """One replica's report (an entry of :func:`ledger`) as a text table: per layer and for the network,
    synapses, transfers, FeCAP ops per sign/MSB cell (mean, worst), memristor ops per device (mean,
    worst) and energy; then the initial programming, which is reported apart."""
    head = ("layer", "synapses", "transfers", "FeCAP ops/sign·MSB cell mean", "worst", "memristor ops mean", "worst",
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
