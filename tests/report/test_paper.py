"""Which Fig. 5f value a run is shown beside, and the caveats that keep it from passing as a reproduction."""
from __future__ import annotations

import dataclasses

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
