import numpy as np
import pytest

from ferristor.experiments import paper_values as pv
from ferristor.experiments.plots import plot_accuracy_vs_k, plot_energy_vs_k, plot_fig5f, plot_ops_vs_k

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KS = (1, 10, 50, 100, 300, 600)


def _points():
    rng = np.random.default_rng(0)
    pts = []
    for k in KS:
        p = pv.reference_point(k)
        p["accuracy"] = list(97.0 - 0.002 * k + rng.normal(0, 0.3, 5))
        pts.append(p)
    return pts[::-1]  # unsorted on purpose: the plots sort by k


def _is_png(path):
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_fig5f(tmp_path):
    rng = np.random.default_rng(1)
    results = {s: {v: list(acc + rng.normal(0, 0.3, pv.FIG5F_RUNS)) for v, acc in row.items()}
               for s, row in pv.FIG5F.items()}
    del results["ecg-online"]["hm-var"]  # a missing entry is left out, not an error
    assert _is_png(plot_fig5f(results, pv.FIG5F, tmp_path / "fig5f.png"))
    assert _is_png(plot_fig5f({"mnist-online": {"fp": [98.0]}}, None, tmp_path / "one.png"))


@pytest.mark.parametrize("plot", [plot_accuracy_vs_k, plot_ops_vs_k, plot_energy_vs_k])
def test_k_plots(tmp_path, plot):
    path = plot(_points(), tmp_path / "sub" / f"{plot.__name__}.png")
    assert _is_png(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_paper_values_match_the_digest():
    # digest §5: at k = 100, 12 nJ + 26.4 nJ = 38.4 nJ; 17× under memristor, 75× under FeCAP endurance.
    p = pv.reference_point(100)
    assert p["energy_memristor_nJ"] == pytest.approx(12.0) and p["energy_fecap_nJ"] == pytest.approx(26.4)
    assert pv.MEMRISTOR_ENDURANCE_OPS / p["memristor_ops_per_device"] == pytest.approx(16.7, abs=0.1)
    assert pv.FECAP_ENDURANCE_OPS / p["fecap_ops_per_device"] == pytest.approx(75.8, abs=0.1)
    assert pv.memristor_ops_per_device(1) == pytest.approx(1.2e6)  # digest §5: k = 1
    assert set(pv.FIG5F) == set(pv.FIG5F_SETTINGS)
    assert all(set(row) == set(pv.FIG5F_VARIANTS) for row in pv.FIG5F.values())
