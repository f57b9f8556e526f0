"""The head's ledger over the runs: transfers, operations per device, energy, endurance margins
(digest §5's counting: 2 FeCAP operations per hidden-weight update, 4 more per transfer, 2 memristor
operations per transfer; 100 fJ per FeCAP and 1 pJ per memristor operation; endurance 10^7 FeCAP
and 10^5 memristor cycles)."""
from __future__ import annotations

import numpy as np

from ..experiments.summary import worst_margins

PAPER_TRANSFERS = (2740, 4550)  # digest §6, Fig. 6


def summarise(reports: list[dict]) -> dict:
    """Mean (and worst where it matters) over the runs of each run's network report."""
    nets = [r["network"] for r in reports]

    def mean(f):
        return float(np.mean([f(n) for n in nets]))
    return {
        "runs": len(nets),
        "synapses": nets[0]["weights"],
        "transfers_mean": mean(lambda n: n["transfers"]),
        "transfers_min": int(min(n["transfers"] for n in nets)),
        "transfers_max": int(max(n["transfers"] for n in nets)),
        "memristor_ops_per_device_mean": mean(lambda n: n["memristor_ops"]["mean"]),
        "memristor_ops_per_device_worst": float(max(n["memristor_ops"]["worst"] for n in nets)),
        "fecap_ops_per_sign_msb_cell_mean": mean(lambda n: n["fecap_ops"]["mean_sign_msb_cell"]),
        "fecap_ops_per_device_worst": float(max(n["fecap_ops"]["worst"] for n in nets)),
        "energy_per_device_nJ": mean(lambda n: n["energy_nJ"]["per_device"]),
        "energy_fecap_per_device_nJ": mean(lambda n: n["energy_nJ"]["per_device_fecap"]),
        "energy_memristor_per_device_nJ": mean(lambda n: n["energy_nJ"]["per_device_memristor"]),
        "energy_total_uJ": mean(lambda n: n["energy_nJ"]["total"]) / 1e3,
        "fecap_endurance_margin": float(worst_margins(nets)[0]),
        "memristor_endurance_margin": float(worst_margins(nets)[1]),
    }


def format_summary(s: dict) -> str:
    return (f"{s['synapses']:,} synapses; transfers {s['transfers_mean']:,.0f} per run "
            f"(paper: {PAPER_TRANSFERS[0]:,}–{PAPER_TRANSFERS[1]:,}, digest §6); per device: "
            f"{s['memristor_ops_per_device_mean']:,.0f} memristor ops (worst {s['memristor_ops_per_device_worst']:,.0f}), "
            f"{s['fecap_ops_per_sign_msb_cell_mean']:,.0f} FeCAP ops per sign/MSB cell (worst device "
            f"{s['fecap_ops_per_device_worst']:,.0f}); {s['energy_per_device_nJ']:.3g} nJ per device, "
            f"{s['energy_total_uJ']:.3g} µJ in all; endurance margins ×{s['memristor_endurance_margin']:,.0f} "
            f"(memristor), ×{s['fecap_endurance_margin']:,.0f} (FeCAP)")
