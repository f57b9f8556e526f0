"""The operation ledger: programming operations per device, energy and endurance (digest §5).

Counts come from what the simulation did: the engine records, per weight, how many hidden-weight
updates its FeCAPs took and how many times its memristors were written. This module turns those
counters into per-device figures (mean and worst case), energies and endurance margins. The
device-level array (``ferristor.circuit.array``) feeds the same :class:`LedgerConfig` costs.
Every rule is counted the same way: its counters become device groups (``circuit.devices``), and
:func:`groups_report` prices them; the hybrid's are :func:`hybrid_groups`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..config_base import check_bool, check_number, param
from .devices import DeviceGroup, devices_report, recost_devices
from .layout import PAPER_LAYOUT, SynapseLayout


@dataclass
class LedgerConfig:
    fecap_ops_per_update: int = param(2, unit="op", source="digest §5 [P]", doc="read + rewrite of every FeCAP of an updated weight")
    fecap_ops_per_transfer: int = param(4, unit="op", source="digest §5 [P]", doc="save, read, reload of each sign/MSB FeCAP a transfer reads")
    memristor_ops_per_transfer: int = param(2, unit="op", source="digest §5 [P]", doc="RESET + SET, counted on each memristor of the pair")
    memristor_ops_unselected: int | None = param(None, unit="op", source="digest §5 [P] counts RESET + SET on each memristor (None); digest §3's transfer chain RESETs both and SETs only the selected one (1) [I]", doc="operations a write costs the memristor of the pair that does not take the level (the other sign's); None: memristor_ops_per_transfer, as on the selected one. Taken as always the same device of the pair, which is exact for totals and means and for a weight whose sign never flips")
    fecap_ops_initial_write: int = param(1, unit="op", source="[I]", doc="writing the initial hidden value into each FeCAP before training")
    count_zero_updates: bool = param(True, source="digest §5 [P]", doc="a masked-in update whose rounded change is 0 still reads and rewrites; False skips it")
    transfer_writes_unchanged: bool = param(True, source="digest §5 [P]", doc="a transfer that leaves a level unchanged still RESETs and SETs; False skips it")
    fecap_energy_fj: float = param(100.0, unit="fJ/op", source="digest §5 [P]")
    memristor_energy_pj: float = param(1.0, unit="pJ/op", source="digest §5 [P]")
    fecap_endurance_cycles: float = param(1e7, unit="cycle", source="digest §5 [P]")
    memristor_endurance_cycles: float = param(1e5, unit="cycle", source="digest §5 [P]")
    ops_per_cycle: int = param(2, unit="op/cycle", source="digest §5 [P]", doc="endurance cycles = operations / 2")

    # what the report multiplies the counted operations by: training is the same whatever they are, so
    # a finished or checkpointed run takes new values without training again (run_folder.check_same_run)
    REPORT_ONLY = ("fecap_energy_fj", "memristor_energy_pj", "fecap_endurance_cycles", "memristor_endurance_cycles",
                   "ops_per_cycle")
    # the operations each counted event costs: training counts the events (updates, transfers, writes) the
    # same whatever they are, and the report multiplies them at its end, from the checkpoint's counters —
    # so a run takes new values without training again too. Not REPORT_ONLY: a stored report holds the
    # products, not the events, so ``recost`` (a sweep's pricing of a twin's results) cannot redo them
    RECOUNTED = ("fecap_ops_per_update", "fecap_ops_per_transfer", "memristor_ops_per_transfer",
                 "memristor_ops_unselected", "fecap_ops_initial_write")

    def __post_init__(self):
        for name in ("fecap_ops_per_update", "fecap_ops_per_transfer", "memristor_ops_per_transfer", "fecap_ops_initial_write"):
            check_number(f"LedgerConfig.{name}", getattr(self, name), lo=0, integer=True)
        if self.memristor_ops_unselected is not None:
            check_number("LedgerConfig.memristor_ops_unselected", self.memristor_ops_unselected, lo=0,
                         hi=self.memristor_ops_per_transfer, integer=True)
        check_number("LedgerConfig.ops_per_cycle", self.ops_per_cycle, lo=1, integer=True)
        for name in ("count_zero_updates", "transfer_writes_unchanged"):
            check_bool(f"LedgerConfig.{name}", getattr(self, name))
        for name in ("fecap_energy_fj", "memristor_energy_pj"):
            check_number(f"LedgerConfig.{name}", getattr(self, name), lo=0)
        for name in ("fecap_endurance_cycles", "memristor_endurance_cycles"):
            check_number(f"LedgerConfig.{name}", getattr(self, name), lo=0, lo_open=True)


def pair_groups(role: str, writes: torch.Tensor, cfg: LedgerConfig, memristors: int = 2) -> list[DeviceGroup]:
    """The memristors of a pair written ``writes`` times (one entry per synapse): each takes
    ``memristor_ops_per_transfer`` per write — or, with ``memristor_ops_unselected`` set, the ones that
    do not take the level (all but one) take that many."""
    writes = writes.to(torch.float64).reshape(-1)
    per, unsel = cfg.memristor_ops_per_transfer, cfg.memristor_ops_unselected
    if unsel is None or unsel == per or memristors < 2:
        return [DeviceGroup("memristor", role, memristors, writes * per)]
    return [DeviceGroup("memristor", f"{role}, selected", 1, writes * per),
            DeviceGroup("memristor", f"{role}, unselected", memristors - 1, writes * unsel)]


def pair_ops_per_write(cfg: LedgerConfig, memristors: int = 2) -> int:
    """Operations of one write of a whole pair."""
    unsel = cfg.memristor_ops_per_transfer if cfg.memristor_ops_unselected is None else cfg.memristor_ops_unselected
    return cfg.memristor_ops_per_transfer + unsel * (memristors - 1)


@dataclass
class LayerCounts:
    """Counters of one layer for one replica (chip). Tensors have the layer's weight shape."""

    update_events: torch.Tensor  # hidden-weight updates per weight (each touches all its FeCAPs)
    transfers: int  # transfers during training (each reads the sign/MSB FeCAPs)
    memristor_writes: torch.Tensor  # transfers that (re)programmed each weight's memristor pair


def hybrid_groups(c: LayerCounts, cfg: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT) -> list[DeviceGroup]:
    """The hybrid rule's devices (digest §2, §5): the sign/MSB FeCAPs take every update and are read by
    every transfer, the LSB FeCAPs take the updates only, the memristor pair takes the transfers."""
    upd = c.update_events.to(torch.float64).reshape(-1) * cfg.fecap_ops_per_update
    return [DeviceGroup("fecap", "sign/MSB cells", layout.transfer_read_cells, upd + c.transfers * cfg.fecap_ops_per_transfer),
            DeviceGroup("fecap", "LSB cells", layout.fecaps - layout.transfer_read_cells, upd),
            *pair_groups("pair", c.memristor_writes, cfg, layout.memristors)]


def _most_written(groups: list[DeviceGroup], kind: str) -> DeviceGroup | None:
    mine = [g for g in groups if g.kind == kind]
    return max(mine, key=lambda g: float(g.ops.mean()) if g.ops.numel() else 0.0) if mine else None


def groups_report(groups: list[DeviceGroup], transfers: int, cfg: LedgerConfig, *, histograms: bool = True) -> dict:
    """Any rule's report, in the keys every reader knows (``fecap_ops``, ``memristor_ops``, ``energy_nJ``,
    ``endurance``; a kind the rule has no device of counts 0) plus the generic per-kind ``devices``."""
    dev = devices_report(groups, cfg)
    kinds = dev["kinds"]
    empty = {"devices": 0, "ops": {"mean": 0.0, "worst": 0.0, "total": 0.0}, "roles": {}}
    fe, me = kinds.get("fecap", empty), kinds.get("memristor", empty)
    roles = fe["roles"]
    msb = roles.get("sign/MSB cells", max(roles.values(), key=lambda r: r["mean"], default={"mean": 0.0}))
    lsb = roles.get("LSB cells", {"mean": fe["ops"]["mean"]})
    n_w = max((g.ops.numel() for g in groups), default=0)
    rep = {"weights": n_w, "transfers": transfers,
           "fecap_ops": {**fe["ops"], "mean_sign_msb_cell": msb["mean"], "mean_lsb_cell": lsb["mean"]},
           "memristor_ops": dict(me["ops"])}
    rep = _with_energy(rep, cfg)
    rep["devices"] = dev
    if histograms:
        hist = {}
        for kind, key in (("memristor", "memristor_ops"), ("fecap", "fecap_ops")):
            g = _most_written(groups, kind)
            hist[key] = histogram(g.ops if g is not None else torch.zeros(n_w, dtype=torch.float64))
        rep["histogram"] = hist
    return rep


def layer_report(c: LayerCounts, cfg: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT) -> dict:
    """Per-device operation counts, energies (nJ) and endurance margins of one layer."""
    return groups_report(hybrid_groups(c, cfg, layout), c.transfers, cfg)


def histogram(ops: torch.Tensor, max_bins: int = 32) -> dict:
    """Devices per operation count: ``counts[j]`` devices took ops in [edges[j], edges[j+1]) (the last
    bin closed); memristor ops per memristor, FeCAP ops per sign/MSB cell (the most written)."""
    lo, hi = float(ops.min()), float(ops.max())
    bins = int(min(max_bins, hi - lo + 1))
    edges = torch.linspace(lo, hi + 1, bins + 1, dtype=torch.float64)
    counts = torch.histc(ops.to(torch.float64), bins=bins, min=lo, max=hi + 1)
    return {"edges": edges.tolist(), "counts": [int(c) for c in counts.tolist()]}


def _with_energy(rep: dict, cfg: LedgerConfig) -> dict:
    fe, me = rep["fecap_ops"], rep["memristor_ops"]
    fe_nj, me_nj = cfg.fecap_energy_fj * 1e-6, cfg.memristor_energy_pj * 1e-3
    rep["energy_nJ"] = {
        "fecap_total": fe["total"] * fe_nj,
        "memristor_total": me["total"] * me_nj,
        # The paper's per-device figure (digest §5): one sign/MSB FeCAP + one memristor, mean counts.
        "per_device_fecap": fe.get("mean_sign_msb_cell", fe["mean"]) * fe_nj,
        "per_device_memristor": me["mean"] * me_nj,
    }
    rep["energy_nJ"]["per_device"] = rep["energy_nJ"]["per_device_fecap"] + rep["energy_nJ"]["per_device_memristor"]
    rep["energy_nJ"]["total"] = rep["energy_nJ"]["fecap_total"] + rep["energy_nJ"]["memristor_total"]
    worst_fe_cycles = fe["worst"] / cfg.ops_per_cycle
    worst_me_cycles = me["worst"] / cfg.ops_per_cycle
    rep["endurance"] = {
        "fecap_worst_cycles": worst_fe_cycles,
        "memristor_worst_cycles": worst_me_cycles,
        "fecap_margin": cfg.fecap_endurance_cycles / worst_fe_cycles if worst_fe_cycles else float("inf"),
        "memristor_margin": cfg.memristor_endurance_cycles / worst_me_cycles if worst_me_cycles else float("inf"),
    }
    return rep


def network_report(layers: list[LayerCounts], cfg: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT) -> dict:
    """Per-layer reports and the whole network's (devices pooled across layers)."""
    return network_groups_report([(hybrid_groups(c, cfg, layout), c.transfers) for c in layers], cfg)


def network_groups_report(layers: list[tuple[list[DeviceGroup], int]], cfg: LedgerConfig) -> dict:
    """:func:`network_report` for any rule: each layer as (its device groups, its transfers)."""
    per_layer = [groups_report(g, t, cfg) for g, t in layers]
    pooled = [g for gs, _ in layers for g in gs]
    net = groups_report(pooled, max(t for _, t in layers), cfg, histograms=False)
    net["weights"] = sum(r["weights"] for r in per_layer)
    return {"layers": per_layer, "network": net}


def recost(report: dict, cfg: LedgerConfig) -> dict:
    """One replica's ledger (an entry of ``nn.ledger.ledger``) priced with the costs and ratings of
    ``cfg`` (``LedgerConfig.REPORT_ONLY``): the operations as counted, the energies and endurance
    margins computed again — what the same run reports when made with ``cfg``. A new dict."""
    rep = copy.deepcopy(report)
    for part in [*rep["layers"], rep["network"]]:
        _with_energy(part, cfg)
        if "devices" in part:
            part["devices"] = recost_devices(part["devices"], cfg)
    init = rep.get("initial_programming")
    if init is not None:
        rep["initial_programming"] = (devices_initial_report(recost_devices(init["devices"], cfg)) if "devices" in init
                                      else {**init, "energy_nJ": _initial_energy(init["fecap_ops"]["total"],
                                                                                  init["memristor_ops"]["total"], cfg)})
    return rep


def devices_initial_report(dev: dict) -> dict:
    """A baseline rule's initial programming (every memristor pair programmed once; ``dev``, the
    ``devices_report`` of its groups) in the hybrid report's keys."""
    mem = dev["kinds"]["memristor"]
    return {"fecap_ops": {"per_sign_msb_cell": 0, "total": 0.0},
            "memristor_ops": {"per_device": mem["ops"]["worst"], "total": mem["ops"]["total"]},
            "energy_nJ": {"fecap_total": 0.0, "memristor_total": mem["energy_nJ"]["total"]}, "devices": dev}


def _initial_energy(fe_total: float, me_total: float, cfg: LedgerConfig) -> dict:
    return {"fecap_total": fe_total * cfg.fecap_energy_fj * 1e-6, "memristor_total": me_total * cfg.memristor_energy_pj * 1e-3}


def initial_programming_report(n_weights: int, cfg: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT) -> dict:
    """The one-off programming before training: write every FeCAP once, then one transfer."""
    per_msb_cell = cfg.fecap_ops_initial_write + cfg.fecap_ops_per_transfer
    fe_total = n_weights * (layout.fecaps * cfg.fecap_ops_initial_write + layout.transfer_read_cells * cfg.fecap_ops_per_transfer)
    per_pair = pair_ops_per_write(cfg, layout.memristors)
    me_total = n_weights * per_pair
    return {
        "fecap_ops": {"per_sign_msb_cell": per_msb_cell, "total": fe_total},
        "memristor_ops": {"per_device": per_pair // layout.memristors if per_pair % layout.memristors == 0
                          else per_pair / layout.memristors, "total": me_total},
        "energy_nJ": _initial_energy(fe_total, me_total, cfg),
    }
