"""The run summary `ferristor train` prints: per-device energy that visibly adds up, endurance margins
said for this run's length, and devices worn out within the run flagged."""
import warnings

import pytest

from ferristor.errors import FerristorWarning
from ferristor.experiments.summary import format_summary, summary_rows


def _results(fe_nj=0.052796, me_nj=0.024, fe_margin=30864.2, me_margin=0.8333, me_worst=12.0, seeds=1):
    net = {"transfers": 12,
           "fecap_ops": {"mean": 507.4, "mean_sign_msb_cell": 528.0, "worst": 648.0},
           "memristor_ops": {"mean": 24.0, "worst": 24.0},
           "energy_nJ": {"per_device": fe_nj + me_nj, "per_device_fecap": fe_nj, "per_device_memristor": me_nj,
                         "total": 134834.448, "fecap_total": 126300.048, "memristor_total": 8534.4},
           "endurance": {"fecap_margin": fe_margin, "memristor_margin": me_margin,
                         "fecap_worst_cycles": 324.0, "memristor_worst_cycles": me_worst}}
    return {"config": {"dataset": "mnist", "mode": "hm-var", "rule": {"k": 100, "p": 0.2, "lr": 0.1}},
            "seeds": list(range(seeds)), "samples_per_replica": 1200, "final_test_accuracy": [0.2963] * seeds,
            "ledger": [{"network": net}] * seeds,
            "timing": {"sample_replicas_per_second": 8575.0, "us_per_sample_replica": 116.6, "train_seconds": 3.2}}


def _row(results, key):
    return dict(summary_rows(results))[key]


def test_energy_per_device_parts_visibly_add_up_on_a_short_run():
    # was "0.08 nJ (FeCAP 0.05 + memristor 0.02)": parts that do not add up, in a unit too large
    row = _row(_results(), "energy / device")
    assert row.startswith("76.8 pJ (FeCAP 52.8 + memristor 24.0; ")
    assert "one sign/MSB FeCAP + one memristor" in row  # what "per device" counts (circuit/ledger.py)


@pytest.mark.parametrize("fe, me, shown", [
    (26.4, 12.0, "38.4 nJ (FeCAP 26.4 + memristor 12.0"),  # the paper's k = 100 figure keeps its nJ
    (1.05, 3.24, "4.29 nJ (FeCAP 1.05 + memristor 3.24"),
    (1440.0, 24.0, "1,464.0 nJ (FeCAP 1,440.0 + memristor 24.0"),  # shared decimals: the small part keeps 3 figures
    (0.0004, 0.0002, "600 fJ (FeCAP 400 + memristor 200"),  # never 0.00
])
def test_energy_per_device_has_three_significant_figures_in_a_fitting_unit(fe, me, shown):
    assert _row(_results(fe_nj=fe, me_nj=me), "energy / device").startswith(shown)


def test_margin_is_said_for_this_runs_length():
    row = _row(_results(fe_margin=74.9, me_margin=16.7), "endurance margin")
    assert row.startswith("FeCAP 74.9× · memristor 16.7× (")
    assert "this run's 1,200 samples" in row and "10 MNIST epochs" in row


def test_a_margin_below_one_is_flagged_in_the_summary_and_as_a_warning():
    # was "memristor 0.8×" and nothing else
    results = _results()
    assert "memristor 0.833×" in _row(results, "endurance margin")
    flagged = _row(results, "endurance exceeded")
    assert "memristors wear out within this run" in flagged and "12 cycles" in flagged and "10 it is rated for" in flagged
    with pytest.warns(FerristorWarning, match="memristors wear out within this run"):
        text = format_summary(results)
    assert "endurance exceeded" in text and "FeCAPs wear out" not in text


def test_no_flag_or_warning_within_endurance():
    results = _results(me_margin=16.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FerristorWarning)
        text = format_summary(results)
    assert "endurance exceeded" not in text


def test_a_test_limit_is_named_beside_the_accuracy_and_bits_in_the_run_line():
    results = _results()
    assert "first" not in _row(results, "test accuracy") and "bits" not in _row(results, "run")
    results["config"] = {**results["config"], "test_limit": 500, "layout": {"hidden_bits": 8, "analogue_magnitude_bits": 2}}
    assert _row(results, "test accuracy").endswith("· on the first 500 test samples (--test-limit)")
    assert " · 8/2 bits · " in _row(results, "run")
    results["dataset"] = {**results.get("dataset", {}), "test": 10_000}
    results["config"]["test_limit"] = 100_000  # beyond the test set: it cut nothing (it had said "the first 100,000")
    assert "first" not in _row(results, "test accuracy")
    results["config"]["test_limit"] = 9_999
    assert _row(results, "test accuracy").endswith("· on the first 9,999 test samples (--test-limit)")


def test_the_endurance_margin_is_the_worst_chips_as_compare_shows_it():
    """With several seeds the summary had shown the mean of the chips' margins, compare the worst chip's,
    both labelled 'rated ÷ worst device's cycles'."""
    import copy
    results = _results(fe_margin=18450.0, me_margin=40.0, seeds=2)
    results["ledger"] = [copy.deepcopy(results["ledger"][0]) for _ in range(2)]
    results["ledger"][1]["network"]["endurance"].update(fecap_margin=18382.0, memristor_margin=50.0)
    results["ledger"][0]["network"]["fecap_ops"]["worst"] = 648.0
    results["ledger"][1]["network"]["fecap_ops"]["worst"] = 656.0  # the chips' mean had been shown: 652
    assert _row(results, "FeCAP ops / device").endswith("· worst 656")
    row = _row(results, "endurance margin")
    assert row.startswith("FeCAP 18,382× · memristor 40× (rated ÷ the worst device's cycles, on any chip")
    from ferristor.experiments.compare import device_cells
    assert device_cells(results)[2] == "18,382× · 40×"


def test_an_hm_run_with_measured_level_means_says_so_in_the_run_line():
    """--mode hm --level-means measured trains differently from plain hm (the ideal transfer programs
    the levels' measured means) and the run line had read plain 'hm'."""
    results = _results()
    results["config"] = {**results["config"], "mode": "hm", "transfer": {"model": "ideal", "level_means": "measured",
                                                                          "sigma_levels": 0.594, "sign_guard": "clip"}}
    assert _row(results, "run").startswith("mnist · hm · level_means=measured · k=100 · ")
    results["config"]["transfer"]["level_means"] = "ideal"
    assert "level_means" not in _row(results, "run")
    # a setting the model does not read stays unsaid (the ideal transfer draws no noise)
    results["config"]["transfer"]["sigma_levels"] = 0.3
    assert "sigma" not in _row(results, "run")
    results["config"] = {**results["config"], "mode": "hm-var",
                         "transfer": {**results["config"]["transfer"], "model": "table", "sign_guard": "fold"}}
    assert "· sigma_levels=0.3 · sign_guard=fold · k=100" in _row(results, "run")


def test_batch_and_a_k_counted_in_updates_are_in_the_run_line():
    # --batch 10 --norm batch --k-unit updates --k 10 had printed "k=10", with no batch and no unit
    results = _results()
    assert "batch" not in _row(results, "run") and "updates" not in _row(results, "run")
    results["config"] = {**results["config"], "batch": 10, "rule": {**results["config"]["rule"], "k": 10, "k_unit": "updates"}}
    row = _row(results, "run")
    assert " · k=10 updates · " in row and " · batch=10 · " in row
    results["config"]["rule"]["k_unit"] = "inputs"
    assert " · k=10 · " in _row(results, "run")


def test_the_papers_margins_are_quoted_as_its_own_at_other_ratings():
    """--set ledger.memristor_endurance_cycles=1e6 had printed 'memristor 33,333× … paper: 75×, 17×',
    a margin at the user's rating beside the paper's at its own, unsaid."""
    results = _results(me_margin=33333.0)
    assert _row(results, "endurance margin").endswith("; paper: 75×, 17× over 10 MNIST epochs at k=100)")
    results["config"] = {**results["config"], "ledger": {"fecap_endurance_cycles": 1e7, "memristor_endurance_cycles": 1e6,
                                                         "ops_per_cycle": 2}}
    row = _row(results, "endurance margin")
    assert "paper: 75×" not in row
    assert "rated here 1e+07 FeCAP / 1e+06 memristor cycles" in row
    assert "the paper's 75×, 17× over 10 MNIST epochs at k=100 are at its own ratings, 1e+07 FeCAP / 1e+05 memristor" in row


def test_a_baseline_rule_is_named_in_the_run_line():
    """A Tiki-Taka or memristor-SGD run had read like the paper's hybrid rule in train's summary."""
    from ferristor.report.run_page import describe
    results = _results()
    assert "rule=" not in _row(results, "run")
    results["config"] = {**results["config"], "scheme": {"rule": "tiki-taka"}}
    assert f" · {results['config']['mode']} · rule=tiki-taka · " in _row(results, "run") + " · "
    assert "rule=tiki-taka" in describe(results["config"])


def test_an_fp_run_says_that_its_k_and_rounding_did_nothing():
    """mode fp accepts k and rounding (a sweep crosses modes at one k) and reads neither: the run line
    had shown 'k=5' as if it had acted."""
    r = _results()
    r["config"] = {**r["config"], "mode": "fp", "rule": {"k": 5, "p": 0.2, "lr": 0.1, "rounding": "nearest"}}
    r["ledger"] = []
    assert "k=5, rounding=nearest (did nothing: mode fp has no transfer and no grid)" in _row(r, "run")
    r["config"]["rule"] = {"k": 100, "p": 0.2, "lr": 0.1}
    assert " · k=100 · " in _row(r, "run")


def _baseline(rule="tiki-taka", dataset="ecg", k=1, seeds=2):
    """A baseline rule's results as read back from results.json: no FeCAP, its margin stored as null."""
    results = _results(seeds=seeds)
    net = {"transfers": 400 if rule != "memristor-sgd" else 0,
           "fecap_ops": {"mean": 0.0, "mean_sign_msb_cell": 0.0, "worst": 0.0},
           "memristor_ops": {"mean": 0.2814, "worst": 10.0},
           "energy_nJ": {"per_device": 0.0002814, "per_device_fecap": 0.0, "per_device_memristor": 0.0002814,
                         "total": 2.36, "fecap_total": 0.0, "memristor_total": 2.36},
           "endurance": {"fecap_margin": None, "memristor_margin": 20000.0, "fecap_worst_cycles": 0.0,
                         "memristor_worst_cycles": 5.0}}
    results["ledger"] = [{"network": net}] * seeds
    results["config"] = {"dataset": dataset, "mode": "hm-var", "rule": {"k": k, "p": 0.2, "lr": 0.01},
                         "scheme": {"rule": rule}}
    return results


def test_a_baseline_rules_summary_shows_only_what_its_chip_has():
    """train's summary of a Tiki-Taka run on ECG had printed 'FeCAP ops / device mean 0 · …', a
    memristor mean of 0.28 as 0, 'one sign/MSB FeCAP + one memristor' and the paper's MNIST k=100
    margins beside it."""
    rows = dict(summary_rows(_baseline()))
    assert "FeCAP ops / device" not in rows
    assert rows["memristor ops / device"] == "mean 0.281 · worst 10"
    assert rows["energy / device"] == "281 fJ (one memristor, mean writes; no FeCAP on this chip)"
    assert rows["energy, whole network"] == "2.36 nJ (memristors only)"
    assert rows["endurance margin"].startswith("memristor 20,000× (rated") and "FeCAP" not in rows["endurance margin"]
    assert "paper" not in rows["endurance margin"] and "sign/MSB" not in format_summary(_baseline())
    sgd = dict(summary_rows(_baseline("memristor-sgd", k=100)))
    assert "k=" not in sgd["run"] and sgd["transfers"].startswith("none: an update programs the pair itself")


def test_the_papers_margins_only_beside_the_papers_setting():
    assert "paper: 75×, 17×" in _row(_results(), "endurance margin")  # MNIST online, hybrid, k = 100
    for change in ({"dataset": "ecg"}, {"rule": {"k": 10, "p": 0.2, "lr": 0.1}}, {"scheme": {"rule": "tiki-taka"}},
                   {"batch": 10}):
        r = _results()
        r["config"] = {**r["config"], **change}
        assert "paper" not in _row(r, "endurance margin"), change
    # means below 10 keep three significant figures in the hybrid's lines too
    r = _results()
    r["ledger"][0]["network"]["memristor_ops"] = {"mean": 0.5, "worst": 4.0}
    assert _row(r, "memristor ops / device") == "mean 0.5 · worst 4"
