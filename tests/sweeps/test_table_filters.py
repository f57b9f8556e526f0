"""``ferristor results --where``: a value is read as its column's cells are, one that cannot be is
refused (not left to match no row), and a filter that keeps no row still writes the CSV's header."""
import csv
import io

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.sweeps import table
from ferristor.sweeps.run import plan, run_plan
from ferristor.sweeps.table import TableError, where

from .conftest import small_spec


def _row(trial, k, seed, final, acc):
    return {"trial": trial, "mode": "hm", "rule.k": k, "network.bias": False, "ecg.test_record": "208",
            "seeds": "[0, 1]", "seed": seed, "test_accuracy": acc, "val_accuracy": None, "final": final}


ROWS = [_row("a", 10, 0, False, 0.25), _row("a", 10, 0, True, 0.5), _row("b", 100, 1, False, float("nan")),
        _row("b", 100, 1, True, 0.75)]


def _kept(*conditions):
    return [(r["trial"], r["seed"], r["final"]) for r in where(ROWS, conditions)]


def test_booleans_match_as_printed_in_any_case():
    """The table and the CSV print True/False: final=True had matched no row, only final=true did."""
    finals = [("a", 0, True), ("b", 1, True)]
    assert _kept("final=True") == _kept("final=true") == _kept("final=TRUE") == _kept("final!=False") == finals
    assert _kept("final=False") == [("a", 0, False), ("b", 1, False)]
    assert len(_kept("network.bias=False")) == 4 and _kept("network.bias=true") == []


def test_values_are_read_as_their_columns_cells():
    assert _kept("rule.k=1e1") == _kept("rule.k=10") == _kept("rule.k<=10.0") == [("a", 0, False), ("a", 0, True)]
    assert _kept("rule.k>10", "final=true") == [("b", 1, True)]
    assert len(_kept("ecg.test_record=208")) == 4  # a text column: 208 is the text '208', not the number
    assert len(_kept("seeds=[0,1]")) == len(_kept('mode="hm"')) == 4  # a list as its cell is written; JSON text
    assert _kept("test_accuracy=nan") == [("b", 1, False)]  # printed nan; nan == nan is False
    assert len(_kept("test_accuracy!=nan")) == 3
    assert _kept("val_accuracy>0.5") == []  # no cell: nothing to compare


def test_a_column_with_a_space_in_its_name_can_be_named():
    """The ledger's per-role columns ('…roles.LSB cells.devices') had been refused as not COLUMN=VALUE."""
    rows = [{"ledger.roles.LSB cells.devices": 6}, {"ledger.roles.LSB cells.devices": 8}]
    assert where(rows, [" ledger.roles.LSB cells.devices > 6 "]) == rows[1:]


def test_mixed_columns_compare_each_cell_as_its_own_kind():
    rows = [{"label": 1}, {"label": "x"}, {"label": True}]
    assert where(rows, ["label=1"]) == [{"label": 1}]  # True is not the number 1 here
    assert where(rows, ["label=x"]) == [{"label": "x"}] and where(rows, ["label=TRUE"]) == [{"label": True}]
    assert where(rows, ["label!=x"]) == [{"label": 1}, {"label": True}]


@pytest.mark.parametrize("condition, message", [
    ("rule.k=abc", "--where 'rule.k=abc': column 'rule.k' holds numbers: expected a number, got 'abc'"),
    ("rule.k>ten", "--where 'rule.k>ten': column 'rule.k' holds numbers: expected a number, got 'ten'"),
    ("rule.k=true", "--where 'rule.k=true': column 'rule.k' holds numbers: expected a number, got 'true'"),
    ("rule.k==10", "--where 'rule.k==10': the value '=10' begins with '=': write one operator (= != < <= > >=) "
                   "between the column and the value"),
    ("mode=<hm", "--where 'mode=<hm': the value '<hm' begins with '<': write one operator"),
    ("final=yes", "--where 'final=yes': column 'final' holds booleans: expected true or false (any case), got 'yes'"),
    ("final=1", "--where 'final=1': column 'final' holds booleans: expected true or false (any case), got '1'"),
    ("final>False", "--where 'final>False': column 'final' holds booleans: compare it with = or !="),
    ("test_accuracy<nan", "--where 'test_accuracy<nan': nan is not ordered: compare it with = or !="),
    ("rule.k=", "--where 'rule.k=': expected COLUMN=VALUE"),
])
def test_a_value_its_column_cannot_hold_is_refused(condition, message):
    with pytest.raises(TableError) as e:
        where(ROWS, [condition])
    assert str(e.value).startswith(message)


def test_an_unknown_column_is_refused_after_a_condition_that_kept_no_row():
    with pytest.raises(TableError, match="--where 'rule.kk=1': no column 'rule.kk': expected one of trial, mode"):
        where(ROWS, ["rule.k=7", "rule.kk=1"])


def test_no_row_kept_still_writes_the_header():
    """A filter that kept no row wrote a 0-byte CSV (and a Parquet file without columns)."""
    header = table.to_csv(where(ROWS, [])).splitlines()[0]
    assert header == ",".join(ROWS[0]) and table.to_csv(where(ROWS, ["rule.k=7"])) == header + "\n"
    pq = pytest.importorskip("pyarrow.parquet")
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        table.to_parquet(where(ROWS, ["rule.k=7"]), Path(d) / "r.parquet")
        t = pq.read_table(Path(d) / "r.parquet")
        assert (t.num_rows, t.column_names) == (0, list(ROWS[0]))


def test_a_store_without_a_finished_trial_writes_the_columns_every_row_has(tmp_path):
    from ferristor.sweeps.configs import config_paths
    from ferristor.sweeps.store import open_store
    open_store(tmp_path).close()
    store = open_store(tmp_path, readonly=True)
    try:
        rows = table.tidy_rows(store)
    finally:
        store.close()
    assert rows == [] and table.to_csv(rows) == ",".join(
        ["trial", *config_paths(), "seed", "replica", "step", "epoch", "test_accuracy", "val_accuracy", "final",
         "train_seconds", "compile_seconds", "sample_replicas_per_second", "code_version"]) + "\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_mnist):
    folder = tmp_path_factory.mktemp("sweep")
    assert run_plan(plan(small_spec("rule.k=10,100"), folder, given={"mnist": tiny_mnist}), in_process=True,
                    progress=False).count("done") == 2
    return folder


def test_results_filters_as_printed_and_refuses_what_cannot_match(sweep, tmp_path):
    r = CliRunner().invoke(cli, ["results", str(sweep), "--format", "csv", "--where", "final=True"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 4 and {row["final"] for row in rows} == {"True"}  # 2 trials × 2 seeds, printed True
    assert len(list(csv.DictReader(io.StringIO(CliRunner().invoke(
        cli, ["results", str(sweep), "--format", "csv", "--where", "network.bias=False", "--final"]).stdout)))) == 4
    for condition, message in [("rule.k==10", "error: --where 'rule.k==10': the value '=10' begins with '='"),
                               ("rule.k=abc", "error: --where 'rule.k=abc': column 'rule.k' holds numbers: expected "
                                              "a number, got 'abc'")]:
        bad = CliRunner().invoke(cli, ["results", str(sweep), "--where", condition])
        assert bad.exit_code == 2 and bad.output.startswith(message) and len(bad.output.splitlines()) == 1, bad.output
    # no row kept: the header all the same, the one the full table has
    out = tmp_path / "fin.csv"
    r = CliRunner().invoke(cli, ["results", str(sweep), "--where", "final=True", "--where", "rule.k=7", "--format",
                                 "csv", "-o", str(out)])
    assert r.exit_code == 0 and "0 rows" in r.output, r.output
    full = CliRunner().invoke(cli, ["results", str(sweep), "--format", "csv"]).stdout
    assert out.read_text() == full.splitlines()[0] + "\n"


def test_the_text_table_shows_a_ledger_setting_that_varies():
    """A grid over ledger.memristor_energy_pj printed rows differing in nothing shown: every 'ledger.'
    column was taken for a ledger figure and left out."""
    from ferristor.sweeps.table import to_text
    rows = [{"trial": t, "ledger.memristor_energy_pj": pj, "seed": 0, "test_accuracy": 0.9,
             "ledger.energy_nJ.total": e} for t, pj, e in (("a", 1.0, 10.0), ("b", 0.3, 3.0))]
    header = to_text(rows).splitlines()[0].split()
    assert "ledger.memristor_energy_pj" in header and "ledger.energy_nJ.total" not in header
