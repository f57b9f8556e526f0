"""MIT-BIH records are checked against the SHA-256 table shipped with the package, every file at once."""
import re
import shutil

import pytest

from ferristor.data import mitdb
from ferristor.data.mitdb import CHECKSUMS, RECORDS, checksum_table, locate_mitdb, verify_mitdb
from ferristor.errors import DataError


def test_the_table_covers_every_file_of_every_record():
    assert sorted(CHECKSUMS) == sorted(f"{r}.{e}" for r in RECORDS for e in ("hea", "dat", "atr"))
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in CHECKSUMS.values())


def test_the_shipped_copy_verifies(mitdb_root):
    verify_mitdb(mitdb_root / "mitdb")  # all 144 files
    assert checksum_table(mitdb_root / "mitdb", ["208"]) == {k: CHECKSUMS[k] for k in ("208.hea", "208.dat", "208.atr")}


def _copy(mitdb_root, tmp_path, records):
    (tmp_path / "mitdb").mkdir()
    for r in records:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(mitdb_root / "mitdb" / f"{r}.{ext}", tmp_path / "mitdb")
    return tmp_path / "mitdb"


def test_a_flipped_byte_is_refused_and_every_bad_file_is_named(mitdb_root, tmp_path):
    folder = _copy(mitdb_root, tmp_path, ["208", "100"])
    for name, at in (("208.dat", 123_456), ("100.atr", 10)):
        data = bytearray((folder / name).read_bytes())
        data[at] ^= 0x01
        (folder / name).write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"2 file\(s\) do not match the MIT-BIH checksums") as e:
        locate_mitdb(tmp_path, records=["208", "100"])
    assert "208.dat" in str(e.value) and "100.atr" in str(e.value) and "PhysioNet" in str(e.value)


def test_physionet_crlf_headers_verify_like_lf_ones(mitdb_root, tmp_path):
    folder = _copy(mitdb_root, tmp_path, ["208"])
    text = (folder / "208.hea").read_bytes()
    (folder / "208.hea").write_bytes(text.rstrip(b"\n").replace(b"\n", b"\r\n") + b"\r\n")  # as PhysioNet serves it
    assert locate_mitdb(tmp_path, records=["208"]) == folder
    (folder / "208.hea").write_bytes(text.replace(b"360", b"361", 1))  # a changed header value is not
    with pytest.raises(DataError, match="208.hea"):
        locate_mitdb(tmp_path, records=["208"])


def test_fixtures_pass_through_the_same_check_with_their_own_table(tmp_path, monkeypatch):
    folder = tmp_path / "mitdb"
    folder.mkdir()
    for ext in ("hea", "dat", "atr"):
        (folder / f"100.{ext}").write_bytes(b"synthetic " + ext.encode())
    with pytest.raises(DataError, match="do not match"):
        locate_mitdb(tmp_path, records=["100"])
    table = checksum_table(folder, ["100"])
    assert locate_mitdb(tmp_path, records=["100"], checksums=table) == folder  # a parameter …
    monkeypatch.setattr(mitdb, "CHECKSUMS", table)  # … or the module's table
    assert locate_mitdb(tmp_path, records=["100"]) == folder
    with pytest.raises(DataError, match="no checksum is known for 101.hea, 101.dat, 101.atr"):
        verify_mitdb(folder, ["101"], table)
