import csv

from click.testing import CliRunner

from ferristor.cli.device import FIGURES, device_group

HEADERS = {"fecap-read": "cell", "fecap-energy": "v_prog_V", "fecap-endurance": "condition", "memristor-icc": "icc_uA",
           "memristor-levels": "level", "memristor-endurance": "cycles", "transfer-line": "area_units",
           "transfer-levels": "level"}


def test_all_writes_every_png_and_csv_atomically(tmp_path):
    res = CliRunner().invoke(device_group, ["all", "--out", str(tmp_path), "--samples", "64", "--seed", "3"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{n}.{ext}" for n in FIGURES for ext in ("png", "csv")])  # no tmp left over
    for name, first in HEADERS.items():
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = list(csv.reader((tmp_path / f"{name}.csv").open()))
        assert rows[0][0] == first and len(rows) > 2


def test_transfer_levels_csv_has_15_levels_with_the_sign(tmp_path):
    res = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path), "--samples", "50"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "transfer-levels.csv").open()))
    levels = sorted({int(r["level"]) for r in rows})
    assert levels == list(range(-7, 8))
    assert all(float(r["g_diff_uS"]) < 0 for r in rows if int(r["level"]) <= -2)


def test_out_is_required():
    res = CliRunner().invoke(device_group, ["fecap-energy"])
    assert res.exit_code != 0 and "--out" in res.output
