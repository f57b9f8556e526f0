"""MIT-BIH records are checked against the SHA-256 table shipped with the package, every file at once.
The checks run on the fake database (tests/data/conftest.py) under its own table, through the same
code path, and on the real database under the shipped table where the full data is present."""
import re
import shutil

import pytest

from ferristor.data import mitdb
from ferristor.data.mitdb import RECORDS, checksum_table, locate_mitdb, verify_mitdb
from ferristor.data.mitdb_checksums import MITDB_SHA256
from ferristor.errors import DataError


def test_the_table_covers_every_file_of_every_record():
    assert sorted(MITDB_SHA256) == sorted(f"{r}.{e}" for r in RECORDS for e in ("hea", "dat", "atr"))
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in MITDB_SHA256.values())
    assert mitdb.CHECKSUMS is MITDB_SHA256  # what the loader checks unless a test installs its own


@pytest.mark.full_data("mitdb")
def test_the_shipped_copy_verifies(full_mitdb):
    verify_mitdb(full_mitdb / "mitdb")  # all 144 files, under the default table
    assert checksum_table(full_mitdb / "mitdb") == MITDB_SHA256


def test_the_shipped_table_refuses_the_fake_database(fake_mitdb):
    with pytest.raises(DataError, match=r"144 file\(s\) do not match the MIT-BIH checksums shipped with ferristor"):
        locate_mitdb(fake_mitdb.root, checksums=MITDB_SHA256)


def test_the_fake_table_is_what_the_check_computes(fake_mitdb):
    assert mitdb.CHECKSUMS is fake_mitdb.sha256  # installed by the fixture for this test
    assert checksum_table(fake_mitdb.folder) == fake_mitdb.sha256
    assert locate_mitdb(fake_mitdb.root) == fake_mitdb.folder


@pytest.fixture(params=["fake", pytest.param("full", marks=pytest.mark.full_data("mitdb"))])
def database(request):
    """(folder holding the 48 records, the table they verify against): the fake database under its own
    table, and the real one under the table shipped with ferristor."""
    if request.param == "fake":
        fake = request.getfixturevalue("_fake_mitdb_files")
        return fake.folder, fake.sha256
    return request.getfixturevalue("full_mitdb") / "mitdb", MITDB_SHA256


def _copy(source, tmp_path, records):
    (tmp_path / "mitdb").mkdir()
    for r in records:
        for ext in ("hea", "dat", "atr"):  # copyfile: the originals may be read-only, the copies are altered
            shutil.copyfile(source / f"{r}.{ext}", tmp_path / "mitdb" / f"{r}.{ext}")
    return tmp_path / "mitdb"


def test_a_flipped_byte_is_refused_and_every_bad_file_is_named(database, tmp_path):
    source, table = database
    folder = _copy(source, tmp_path, ["208", "100"])
    for name in ("208.dat", "100.atr"):
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / name).write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"2 file\(s\) do not match the MIT-BIH checksums shipped with ferristor "
                                        r"\(corrupt or altered\): 208\.dat, 100\.atr\. .*PhysioNet"):
        locate_mitdb(tmp_path, records=["208", "100"], checksums=table)


def test_physionet_crlf_headers_verify_like_lf_ones(database, tmp_path):
    source, table = database
    folder = _copy(source, tmp_path, ["208"])
    text = (folder / "208.hea").read_bytes()
    assert b"\r" not in text
    (folder / "208.hea").write_bytes(text.rstrip(b"\n").replace(b"\n", b"\r\n") + b"\r\n")  # as PhysioNet serves it
    assert locate_mitdb(tmp_path, records=["208"], checksums=table) == folder
    (folder / "208.hea").write_bytes(text.replace(b"360", b"361", 1))  # a changed header value is not
    with pytest.raises(DataError, match=r"1 file\(s\) do not match .*: 208\.hea\. "):
        locate_mitdb(tmp_path, records=["208"], checksums=table)


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
