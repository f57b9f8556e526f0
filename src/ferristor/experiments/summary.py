"""Human-readable summary of a results dict: accuracy over seeds, ledger, energy, endurance, speed."""
from __future__ import annotations

import numpy as np


def _mean(reports: list[dict], *path) -> float:
    vals = []
    for r in reports:
        v = r
        for p in path:
            v = v[p]
        vals.append(v)
    return float(np.mean(vals))


def _transfer(cfg: dict) -> str:
    """' · transfer circuit (quantiles)' where the transfer is not the mode's own (hm: ideal, hm-var: table)."""
    t = cfg.get("transfer") or {}
    model = t.get("model")
    if cfg["mode"] == "fp" or model in (None, {"hm": "ideal", "hm-var": "table"}.get(cfg["mode"])):
        return ""
    return f" · transfer {model}" + (f" ({t.get('circuit_sampler', 'chain')})" if model == "circuit" else "")


def summary_rows(results: dict) -> list[tuple[str, str]]:
    cfg = results["config"]
    acc = np.array(results["final_test_accuracy"]) * 100
    std = f" ± {acc.std(ddof=1):.2f}" if len(acc) > 1 else ""
    n_seeds = len(results["seeds"])
    rows = [
        ("run", f"{cfg['dataset']} · {cfg['mode']}{_transfer(cfg)} · k={cfg['rule']['k']} · p={cfg['rule']['p']} · "
                f"lr={cfg['rule']['lr']} · {results['samples_per_replica']:,} samples × {n_seeds} seed{'s' * (n_seeds != 1)}"),
        ("test accuracy", f"{acc.mean():.2f}{std} %  (seeds: {', '.join(f'{a:.2f}' for a in acc)})"),
    ]
    if results.get("final_val_accuracy"):
        val = np.array(results["final_val_accuracy"]) * 100
        vstd = f" ± {val.std(ddof=1):.2f}" if len(val) > 1 else ""
        rows.append(("validation accuracy", f"{val.mean():.2f}{vstd} %  (held out: {cfg.get('validation', 0):g} of the training set)"))
    ledger = results.get("ledger") or []
    if ledger:
        net = [r["network"] for r in ledger]
        rows += [
            ("transfers", f"{_mean(net, 'transfers'):,.0f} (+1 initial programming, reported apart)"),
            ("FeCAP ops / device", f"mean {_mean(net, 'fecap_ops', 'mean'):,.0f} · sign/MSB cell mean "
                                   f"{_mean(net, 'fecap_ops', 'mean_sign_msb_cell'):,.0f} · worst {_mean(net, 'fecap_ops', 'worst'):,.0f}"),
            ("memristor ops / device", f"mean {_mean(net, 'memristor_ops', 'mean'):,.0f} · worst {_mean(net, 'memristor_ops', 'worst'):,.0f}"),
            ("energy / device", f"{_mean(net, 'energy_nJ', 'per_device'):.2f} nJ (FeCAP {_mean(net, 'energy_nJ', 'per_device_fecap'):.2f} + "
                                f"memristor {_mean(net, 'energy_nJ', 'per_device_memristor'):.2f})"),
            ("energy, whole network", f"{_mean(net, 'energy_nJ', 'total') / 1e3:,.2f} µJ (FeCAP {_mean(net, 'energy_nJ', 'fecap_total') / 1e3:,.2f} + "
                                      f"memristor {_mean(net, 'energy_nJ', 'memristor_total') / 1e3:,.2f})"),
            ("endurance margin", f"FeCAP {_mean(net, 'endurance', 'fecap_margin'):,.1f}× · memristor "
                                 f"{_mean(net, 'endurance', 'memristor_margin'):,.1f}× (worst device vs rated cycles)"),
        ]
    t = results["timing"]
    compiling = t.get("compile_seconds", 0.0)
    rows.append(("speed", f"{t['sample_replicas_per_second']:,.0f} sample-replicas/s ({t['us_per_sample_replica']:.1f} µs each), "
                          f"{t['train_seconds']:.1f} s training"
                          + (f", {compiling:.1f} s of it compiling kernels (once per machine)" if compiling >= 0.05 else "")))
    return rows


def format_summary(results: dict) -> str:
    rows = summary_rows(results)
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(w)}  {v}" for k, v in rows)
