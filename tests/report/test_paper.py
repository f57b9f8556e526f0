"""Which Fig. 5f value a run is shown beside, and the caveats that keep it from passing as a reproduction."""
from __future__ import annotations

import dataclasses

from ferristor.circuit.layout import SynapseLayout
from ferristor.experiments import paper_values as pv
from ferristor.experiments.config import task_config
from ferristor.report.paper import run_accuracy_value


def _cfg(dataset, mode="hm-var", **over) -> dict:
    return dataclasses.asdict(task_config(dataset, mode, **over))


def test_a_run_of_the_papers_setting_gets_its_value_without_caveats():
    v = run_accuracy_value(_cfg("mnist"))
    assert v.paper == pv.FIG5F["mnist-online"]["hm-var"] and v.caveats == []


def test_ecg_at_the_presets_lr_is_shown_beside_the_paper_with_the_lr_named():
    v = run_accuracy_value(_cfg("ecg", "fp"))
    assert v.paper == pv.FIG5F["ecg-online"]["fp"]
    assert v.caveats == ["this run trained at lr 0.01, the paper at 0.3 (digest §4 table [P])"]


def test_ecg_at_the_papers_own_lr_is_the_papers_setting():
    v = run_accuracy_value(_cfg("ecg", "hm", lr=0.3))
    assert v.paper == pv.FIG5F["ecg-online"]["hm"] and v.caveats == []


def test_another_lr_or_k_is_not_the_papers_setting():
    assert run_accuracy_value(_cfg("ecg", lr=0.05)) is None
    assert run_accuracy_value(_cfg("mnist", k=10)) is None


def test_a_short_run_says_so():
    v = run_accuracy_value(_cfg("fashion-mnist", epochs=0.5, test_limit=500))
    assert v.caveats == ["this run trained 0.5 epochs, the paper 10",
                         "evaluated on the first 500 test samples, the paper on all"]


def _json(cfg) -> dict:
    import json
    return json.loads(json.dumps(cfg))  # as results.json holds it (tuples as lists)


def test_every_computing_field_that_differs_is_named_by_its_path():
    """A run with 2 analogue bits had been shown beside the paper's 95.2 % with only its epochs and
    test subset as caveats: the layout is listed, every field that follows from it too."""
    cfg = _json(_cfg("mnist", epochs=0.01, test_limit=200, layout=SynapseLayout(analogue_magnitude_bits=2)))
    v = run_accuracy_value(cfg)
    assert v.paper == pv.FIG5F["mnist-online"]["hm-var"]
    assert [d[0] for d in v.differences] == ["layout.analogue_magnitude_bits", "layout.msb_cells", "layout.lsb_cells"]
    said = v.caveats[-1]
    assert said.startswith("this run differs from the setting as 'ferristor reproduce --preset stochastic' trains it: ")
    assert "layout.analogue_magnitude_bits = 2 (preset: 3)" in said and "layout.msb_cells = [2, 1] (preset: [4, 2, 1])" in said


def test_measured_level_means_of_an_hm_run_are_a_difference():
    # --mode hm --level-means measured changes what hm trains; it had been labelled plain "HM w/o Var"
    v = run_accuracy_value(_json(_cfg("mnist", "hm", level_means="measured")))
    assert v.differences == [("transfer.level_means", "measured", "ideal")]
    v = run_accuracy_value(_json(_cfg("mnist", "hm-var", sigma_levels=0.3, sign_guard="fold")))
    assert [d[0] for d in v.differences] == ["transfer.sigma_levels", "transfer.sign_guard"]


def test_settings_that_compute_nothing_are_not_differences():
    """Execution fields, the ledger's costs and ratings, and what the run's own settings leave unread
    (σ of the ideal transfer, the ECG's features on MNIST) are not listed."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train warns about the settings with no effect, as it should
        cfg = _cfg("mnist", "hm", threads=1, data_dir="/elsewhere", checkpoint_every=0.5, eval_every=0.5, seeds=[3, 4],
                   eval_batch=100, sigma_levels=0.3, memristor_endurance_cycles=1e6, fecap_energy_fj=50.0)
    cfg["ecg"] = {**_json(cfg["ecg"]), "window_ms": 500.0}
    v = run_accuracy_value(_json(cfg))
    assert v.differences == [] and v.caveats == []


def test_a_run_of_the_paper_preset_is_compared_with_it():
    v = run_accuracy_value(_json(_cfg("mnist", "hm", rounding="nearest")))
    assert v.preset == "paper" and v.differences == []
    v = run_accuracy_value(_json(_cfg("mnist", "hm", rounding="truncate")))
    assert v.differences == [("rule.rounding", "truncate", v.differences[0][2])]


def test_a_learning_rule_other_than_the_hybrid_is_a_difference():
    v = run_accuracy_value(_json(_cfg("mnist", "hm-var", rule="memristor-sgd")))
    assert ("scheme.rule", "memristor-sgd", "hybrid") in v.differences


def test_the_run_header_names_layout_and_transfer_settings():
    from ferristor.report.run_page import describe
    assert describe(_json(_cfg("mnist", "hm-var", layout=SynapseLayout(analogue_magnitude_bits=2)))
                    ).startswith("mnist · hm-var · 10/2 bits · k=100 · ")
    assert describe(_json(_cfg("mnist", "hm", level_means="measured"))).startswith("mnist · hm · level_means=measured · k=100 · ")
    assert describe(_json(_cfg("mnist", "hm-var"))).startswith("mnist · hm-var · k=100 · ")


def test_the_run_header_names_ks_unit_where_it_counts_updates():
    from ferristor.report.run_page import describe
    said = describe(_json(_cfg("mnist", "hm-var", batch=10, norm="batch", k=10, k_unit="updates")))
    assert " · k=10 updates · " in said and " · batch=10 · " in said
    assert " · k=10 · " in describe(_json(_cfg("mnist", "hm-var", batch=10, norm="batch", k=10)))
