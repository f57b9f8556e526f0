"""The generic ledger: operations counted per device kind, priced by the device's own costs.

Every learning rule says which devices it writes (``rule.compose``: each piece declares its device
kinds) and, after training, how many operations each of them took, as :class:`DeviceGroup` s — a
*role* of devices within a synapse (the hybrid's sign/MSB FeCAPs, its LSB FeCAPs, a memristor
pair, Tiki-Taka's fast pair A …), how many devices of that role a synapse has, and the operations
per device of that role, one count per synapse. :func:`devices_report` turns any rule's groups into
the same figures — per kind: devices, operations per device (mean, worst, total), energy, worst-device
endurance cycles and margin — with the costs of :func:`device_costs` (``LedgerConfig``, digest §5).
So a rule is counted like every other: only its groups differ.

A ``digital`` kind (a float accumulator, the fp baseline's float32 weights) is counted in operations
too, but it is *not a device* of this chip: what an SRAM/DRAM implementation of it would cost is out
of scope, so its energy and endurance are reported as ``None`` with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

KINDS = ("fecap", "memristor", "digital")
NOT_A_DEVICE = ("digital memory, not a device of the hybrid chip: the cost of an SRAM/DRAM implementation of "
                "these updates is out of scope")


@dataclass(frozen=True)
class DeviceCost:
    """What one operation on a device kind costs, and how many it survives (None: not a device)."""

    kind: str
    energy_nJ_per_op: float | None
    endurance_cycles: float | None
    ops_per_cycle: int


def device_costs(cfg) -> dict[str, DeviceCost]:
    """Per-operation costs of each device kind from a ``LedgerConfig`` (digest §5: 100 fJ per FeCAP
    operation, 1 pJ per memristor operation, endurance 10^7 / 10^5 cycles of 2 operations)."""
    return {
        "fecap": DeviceCost("fecap", cfg.fecap_energy_fj * 1e-6, cfg.fecap_endurance_cycles, cfg.ops_per_cycle),
        "memristor": DeviceCost("memristor", cfg.memristor_energy_pj * 1e-3, cfg.memristor_endurance_cycles,
                                cfg.ops_per_cycle),
        "digital": DeviceCost("digital", None, None, 1),
    }


@dataclass
class DeviceGroup:
    """One role of devices within every synapse of a layer: ``per_synapse`` devices each, and the
    operations each of them took, one entry per synapse (``ops``, any shape; flattened)."""

    kind: str
    role: str
    per_synapse: int
    ops: torch.Tensor

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"device kind {self.kind!r}: one of {', '.join(KINDS)}")
        self.ops = self.ops.reshape(-1).to(torch.float64)


def _role_stats(groups: list[DeviceGroup]) -> dict:
    roles: dict[str, dict] = {}
    for g in groups:
        n = g.ops.numel()
        r = roles.setdefault(g.role, {"per_synapse": g.per_synapse, "devices": 0, "total": 0.0, "worst": 0.0,
                                      "synapses": 0})
        if r["per_synapse"] != g.per_synapse:
            raise ValueError(f"role {g.role!r}: {r['per_synapse']} and {g.per_synapse} devices per synapse")
        r["devices"] += n * g.per_synapse
        r["synapses"] += n
        r["total"] += float(g.ops.sum()) * g.per_synapse
        r["worst"] = max(r["worst"], float(g.ops.max()) if n else 0.0)
    for r in roles.values():
        r["mean"] = r["total"] / r["devices"] if r["devices"] else 0.0
        del r["synapses"]
    return roles


def kind_report(groups: list[DeviceGroup], cost: DeviceCost) -> dict:
    """Devices of one kind: operations per device (mean, worst, total), energy, endurance, roles."""
    roles = _role_stats([g for g in groups if g.kind == cost.kind])
    devices = sum(r["devices"] for r in roles.values())
    total = sum(r["total"] for r in roles.values())
    worst = max((r["worst"] for r in roles.values()), default=0.0)
    rep = {"devices": devices, "ops": {"mean": total / devices if devices else 0.0, "worst": worst, "total": total},
           "roles": roles}
    return _priced(rep, cost)


def _priced(rep: dict, cost: DeviceCost) -> dict:
    """A kind's report given its energy and endurance from its operations and ``cost`` (in place)."""
    if cost.energy_nJ_per_op is None:
        rep["not_a_device"] = NOT_A_DEVICE
        rep["energy_nJ"] = None
        rep["endurance"] = None
        return rep
    e, ops = cost.energy_nJ_per_op, rep["ops"]
    rep["energy_nJ"] = {"total": ops["total"] * e, "per_device_mean": ops["mean"] * e,
                        "per_device_worst": ops["worst"] * e}
    worst_cycles = ops["worst"] / cost.ops_per_cycle
    rep["endurance"] = {"rated_cycles": cost.endurance_cycles, "worst_cycles": worst_cycles,
                        "margin": cost.endurance_cycles / worst_cycles if worst_cycles else float("inf")}
    return rep


def devices_report(groups: list[DeviceGroup], cfg) -> dict:
    """Every kind present in ``groups`` (pooled over their layers), and the energy of the devices."""
    costs = device_costs(cfg)
    kinds = [k for k in KINDS if any(g.kind == k for g in groups)]
    rep = {k: kind_report(groups, costs[k]) for k in kinds}
    return _with_total({"kinds": rep, "written": [k for k in kinds if rep[k]["ops"]["total"] > 0]})


def _with_total(dev: dict) -> dict:
    energies = [r["energy_nJ"]["total"] for r in dev["kinds"].values() if r["energy_nJ"] is not None]
    return {"kinds": dev["kinds"], "energy_nJ_total": sum(energies) if energies else None, "written": dev["written"]}


def recost_devices(dev: dict, cfg) -> dict:
    """A ``devices_report`` priced with ``cfg``'s costs and ratings (its operations as counted): what
    ``devices_report`` of the same groups gives with ``cfg``. A new dict."""
    costs = device_costs(cfg)
    kinds = {k: _priced({key: v for key, v in r.items() if key not in ("energy_nJ", "endurance", "not_a_device")},
                        costs[k]) for k, r in dev["kinds"].items()}
    return _with_total({"kinds": kinds, "written": list(dev["written"])})
