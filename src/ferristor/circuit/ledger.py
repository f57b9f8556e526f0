"""The operation ledger: programming operations per device, energy and endurance (digest §5).

Counts come from what the simulation did: the engine records, per weight, how many hidden-weight
updates its FeCAPs took and how many times its memristors were written. This module turns those
counters into per-device figures (mean and worst case), energies and endurance margins. The
device-level array (``ferristor.circuit.array``) feeds the same :class:`LedgerConfig` costs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config_base import check_number, param
from .layout import PAPER_LAYOUT, SynapseLayout


@dataclass
class LedgerConfig:
    fecap_ops_per_update: int = param(2, unit="op", source="digest §5 [P]", doc="read + rewrite of every FeCAP of an updated weight")
    fecap_ops_per_transfer: int = param(4, unit="op", source="digest §5 [P]", doc="save, read, reload of each sign/MSB FeCAP a transfer reads")
    memristor_ops_per_transfer: int = param(2, unit="op", source="digest §5 [P]", doc="RESET + SET, counted on each memristor of the pair")
    fecap_ops_initial_write: int = param(1, unit="op", source="[I]", doc="writing the initial hidden value into each FeCAP before training")
    count_zero_updates: bool = param(True, source="digest §5 [P]", doc="a masked-in update whose rounded change is 0 still reads and rewrites; False skips it")
    transfer_writes_unchanged: bool = param(True, source="digest §5 [P]", doc="a transfer that leaves a level unchanged still RESETs and SETs; False skips it")
    fecap_energy_fj: float = param(100.0, unit="fJ/op", source="digest §5 [P]")
    memristor_energy_pj: float = param(1.0, unit="pJ/op", source="digest §5 [P]")
    fecap_endurance_cycles: float = param(1e7, unit="cycle", source="digest §5 [P]")
    memristor_endurance_cycles: float = param(1e5, unit="cycle", source="digest §5 [P]")
    ops_per_cycle: int = param(2, unit="op/cycle", source="digest §5 [P]", doc="endurance cycles = operations / 2")

    def __post_init__(self):
        for name in ("fecap_ops_per_update", "fecap_ops_per_transfer", "memristor_ops_per_transfer", "fecap_ops_initial_write"):
            check_number(f"LedgerConfig.{name}", getattr(self, name), lo=0, integer=True)
        check_number("LedgerConfig.ops_per_cycle", self.ops_per_cycle, lo=1, integer=True)
        for name in ("fecap_energy_fj", "memristor_energy_pj"):
            check_number(f"LedgerConfig.{name}", getattr(self, name), lo=0)
        for name in ("fecap_endurance_cycles", "memristor_endurance_cycles"):
            check_number(f"LedgerConfig.{name}", getattr(self, name), lo=0, lo_open=True)


@dataclass
class LayerCounts:
    """Counters of one layer for one replica (chip). Tensors have the layer's weight shape."""

    update_events: torch.Tensor  # hidden-weight updates per weight (each touches all its FeCAPs)
    transfers: int  # transfers during training (each reads the sign/MSB FeCAPs)
    memristor_writes: torch.Tensor  # transfers that (re)programmed each weight's memristor pair


def _stats(ops: torch.Tensor) -> dict[str, float]:
    ops = ops.to(torch.float64)
    return {"mean": float(ops.mean()), "worst": float(ops.max()), "total": float(ops.sum())}


def layer_report(c: LayerCounts, cfg: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT) -> dict:
    """Per-device operation counts, energies (nJ) and endurance margins of one layer."""
    upd = c.update_events.to(torch.float64) * cfg.fecap_ops_per_update
    msb_ops = upd + c.transfers * cfg.fecap_ops_per_transfer  # sign and MSB cells
    mem_ops = c.memristor_writes.to(torch.float64) * cfg.memristor_ops_per_transfer
    n_w = c.update_events.numel()
    fecap_total = float(upd.sum()) * layout.fecaps + c.transfers * cfg.fecap_ops_per_transfer * layout.transfer_read_cells * n_w
    mem_total = float(mem_ops.sum()) * layout.memristors
    fecap = {"mean": fecap_total / (n_w * layout.fecaps), "worst": float(msb_ops.max()), "total": fecap_total,
             "mean_sign_msb_cell": float(msb_ops.mean()), "mean_lsb_cell": float(upd.mean())}
    mem = _stats(mem_ops)
    mem["total"] = mem_total
    rep = _with_energy({"weights": n_w, "transfers": c.transfers, "fecap_ops": fecap, "memristor_ops": mem}, cfg)
    rep["histogram"] = {"memristor_ops": histogram(mem_ops), "fecap_ops": histogram(msb_ops)}
    return rep


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
    per_layer = [layer_report(c, cfg, layout) for c in layers]
    n_w = sum(r["weights"] for r in per_layer)
    n_fe = n_w * layout.fecaps
    fe_total = sum(r["fecap_ops"]["total"] for r in per_layer)
    me_total = sum(r["memristor_ops"]["total"] for r in per_layer)
    msb_mean = sum(r["fecap_ops"]["mean_sign_msb_cell"] * r["weights"] for r in per_layer) / n_w
    lsb_mean = sum(r["fecap_ops"]["mean_lsb_cell"] * r["weights"] for r in per_layer) / n_w
    net = {
        "weights": n_w,
        "transfers": max(r["transfers"] for r in per_layer),
        "fecap_ops": {"mean": fe_total / n_fe, "worst": max(r["fecap_ops"]["worst"] for r in per_layer), "total": fe_total,
                      "mean_sign_msb_cell": msb_mean, "mean_lsb_cell": lsb_mean},
        "memristor_ops": {"mean": me_total / (n_w * layout.memristors),
                          "worst": max(r["memristor_ops"]["worst"] for r in per_layer), "total": me_total},
    }
    return {"layers": per_layer, "network": _with_energy(net, cfg)}


def initial_programming_report(n_weights: int, cfg: LedgerConfig, layout: SynapseLayout = PAPER_LAYOUT) -> dict:
    """The one-off programming before training: write every FeCAP once, then one transfer."""
    per_msb_cell = cfg.fecap_ops_initial_write + cfg.fecap_ops_per_transfer
    fe_total = n_weights * (layout.fecaps * cfg.fecap_ops_initial_write + layout.transfer_read_cells * cfg.fecap_ops_per_transfer)
    me_total = n_weights * layout.memristors * cfg.memristor_ops_per_transfer
    return {
        "fecap_ops": {"per_sign_msb_cell": per_msb_cell, "total": fe_total},
        "memristor_ops": {"per_device": cfg.memristor_ops_per_transfer, "total": me_total},
        "energy_nJ": {"fecap_total": fe_total * cfg.fecap_energy_fj * 1e-6,
                      "memristor_total": me_total * cfg.memristor_energy_pj * 1e-3},
    }
