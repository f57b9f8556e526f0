"""The README's Fig. 5f plot with the paper preset, from the sweep stores of the runs in RESULTS.md
("Fig. 5f with the paper preset"): MNIST and Fashion-MNIST seeds 0–4 from runs/fig5f-new, ECG seeds
0–19 from runs/fig5f-ecg, drawn by the function ``reproduce`` uses.

    .venv/bin/python docs/figures/fig5f_paper.py runs/fig5f-new runs/fig5f-ecg docs/figures/fig5f-paper.png
"""
import json
import sys

from ferristor.experiments import paper_values as pv
from ferristor.experiments.plots import plot_fig5f
from ferristor.experiments.reproduce import point_of
from ferristor.sweeps.store import open_store


def table(folder: str, preset_rounding: str = "nearest") -> dict:
    """{setting: {mode: [final test accuracy per seed, %]}} of the finished fig5f trials whose hybrid
    modes used ``preset_rounding`` (fp trials have no rounding); the trial with most seeds wins."""
    store = open_store(f"{folder}/fig5f", readonly=True)
    try:
        done = store.trials("done")
    finally:
        store.close()
    out: dict = {}
    for t in done:
        p = t["params"]
        if p["mode"] != "fp" and p.get("options", {}).get("rounding") != preset_rounding:
            continue
        acc = point_of(t["result"], p["k"])["accuracy"]
        if len(acc) > len(out.get(p["setting"], {}).get(p["mode"], [])):
            out.setdefault(p["setting"], {})[p["mode"]] = acc
    return out


if __name__ == "__main__":
    *stores, png = sys.argv[1:]
    merged: dict = {}
    for s in stores:
        for setting, modes in table(s).items():
            merged.setdefault(setting, {}).update(modes)
    print(json.dumps({s: {m: round(sum(a) / len(a), 2) for m, a in v.items()} for s, v in merged.items()}))
    print(plot_fig5f(merged, pv.FIG5F, png))
