"""The data layer's environment variables: FERRISTOR_OFFLINE takes the usual true/false spellings and
refuses others, and an empty FERRISTOR_CACHE or FERRISTOR_DATA means unset (``sources.env_flag``,
``sources.env_path``). MIT-BIH paths run on the fake database (tests/data/conftest.py)."""
import re
import shutil
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferristor.data import sources
from ferristor.data.mitdb import locate_mitdb
from ferristor.data.sources import FileSet, RemoteFile, cache_root, env_flag, env_path, locate
from ferristor.errors import ConfigError, DataError

TEST = "208"
FLAG_ALLOWED = "1, true, yes or on; 0, false, no or off (any case); or empty/unset"


def _wfdb():
    with warnings.catch_warnings():  # wfdb 4.3 trips pandas deprecation warnings on import
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        import wfdb
    return wfdb


# ------------------------------------------------------------------------- boolean variables


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("OFF", False), ("", False),
])
def test_a_flag_takes_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("FERRISTOR_OFFLINE", value)
    assert env_flag("FERRISTOR_OFFLINE") is expected and sources.offline() is expected


def test_an_unset_flag_is_false(monkeypatch):
    monkeypatch.delenv("FERRISTOR_OFFLINE")
    assert env_flag("FERRISTOR_OFFLINE") is False


@pytest.mark.parametrize("value", ["maybe", "2", "ture"])
def test_any_other_flag_value_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("FERRISTOR_OFFLINE", value)
    with pytest.raises(ConfigError) as e:
        env_flag("FERRISTOR_OFFLINE")
    assert str(e.value) == f"FERRISTOR_OFFLINE={value!r} is not allowed: expected {FLAG_ALLOWED}"


@pytest.mark.parametrize("value", ["true", "yes", "on"])
def test_offline_spelled_true_forbids_the_mitdb_download(monkeypatch, value):
    wfdb = _wfdb()

    def no_download(*a, **k):
        raise AssertionError("downloaded although offline")
    monkeypatch.setattr(wfdb, "dl_database", no_download)
    monkeypatch.setenv("FERRISTOR_OFFLINE", value)
    with pytest.raises(DataError, match=f"FERRISTOR_OFFLINE={value} forbids downloading"):
        locate_mitdb(None, records=[TEST])


def test_offline_spelled_false_allows_the_mitdb_download(monkeypatch, fake_mitdb):
    wfdb = _wfdb()

    def fake_dl(db, dl_dir, records, annotators):
        for r in records:
            for ext in ("hea", "dat", "atr"):
                shutil.copy(fake_mitdb.folder / f"{r}.{ext}", dl_dir)
    monkeypatch.setattr(wfdb, "dl_database", fake_dl)
    monkeypatch.setenv("FERRISTOR_OFFLINE", "no")
    assert locate_mitdb(None, records=[TEST]) == cache_root() / "mitdb"


def test_offline_spelled_true_forbids_a_file_download(monkeypatch, tmp_path):
    def no_download(*a, **k):
        raise AssertionError("downloaded although offline")
    monkeypatch.setattr(sources, "_download", no_download)
    monkeypatch.setenv("FERRISTOR_OFFLINE", "On")
    files = FileSet("things", (RemoteFile("a.gz", "0" * 32, ("https://example.invalid/",)),))
    with pytest.raises(DataError, match="things: files not found"):
        locate(files)


def test_a_mistyped_offline_is_refused_even_where_nothing_is_fetched(monkeypatch, fake_mitdb):
    monkeypatch.setenv("FERRISTOR_OFFLINE", "maybe")
    with pytest.raises(ConfigError, match=re.escape(f"FERRISTOR_OFFLINE='maybe' is not allowed: expected {FLAG_ALLOWED}")):
        locate_mitdb(fake_mitdb.root, records=[TEST])
    with pytest.raises(ConfigError, match="FERRISTOR_OFFLINE='maybe'"):
        locate(FileSet("things", (RemoteFile("a.gz", "0" * 32),)), str(fake_mitdb.root))


def test_the_cli_refuses_a_mistyped_offline_in_one_line(monkeypatch, tmp_path):
    from ferristor.cli.main import cli
    monkeypatch.setenv("FERRISTOR_OFFLINE", "maybe")
    r = CliRunner().invoke(cli, ["train", "--dataset", "ecg", "--epochs", "0.01", "--out", str(tmp_path / "run"),
                                 "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output == f"error: FERRISTOR_OFFLINE='maybe' is not allowed: expected {FLAG_ALLOWED}\n"


# ------------------------------------------------------------------------- path variables


def test_an_empty_cache_variable_means_the_default_not_the_current_folder(monkeypatch):
    monkeypatch.setenv("FERRISTOR_CACHE", "")
    assert cache_root() == Path.home() / ".cache" / "ferristor"
    monkeypatch.setenv("FERRISTOR_CACHE", "/some/where")
    assert cache_root() == Path("/some/where")


@pytest.mark.parametrize("name", ["FERRISTOR_CACHE", "FERRISTOR_DATA"])
def test_path_variables_empty_is_unset_and_blank_is_refused(monkeypatch, name):
    monkeypatch.setenv(name, "")
    assert env_path(name) is None
    monkeypatch.setenv(name, "  ")
    with pytest.raises(ConfigError) as e:
        env_path(name)
    assert str(e.value) == f"{name}='  ' is not allowed: expected a folder path, or empty/unset for the default"


def test_an_empty_data_variable_falls_back_to_the_cache_a_blank_one_is_refused(monkeypatch, fake_mitdb):
    shutil.copytree(fake_mitdb.folder, cache_root() / "mitdb")
    monkeypatch.setenv("FERRISTOR_DATA", "")
    assert locate_mitdb(None) == cache_root() / "mitdb"
    monkeypatch.setenv("FERRISTOR_DATA", " ")
    with pytest.raises(ConfigError, match="FERRISTOR_DATA=' ' is not allowed"):
        locate_mitdb(None)
    with pytest.raises(ConfigError, match="FERRISTOR_DATA=' ' is not allowed"):
        locate(FileSet("things", (RemoteFile("a.gz", "0" * 32),)))


# ------------------------------------------------- an explicit data root that lacks the files


def test_offline_a_missing_record_under_data_dir_says_no_download_and_how_to_get_the_files(monkeypatch, tmp_path):
    """The message had offered 'the cache or a download from PhysioNet' although FERRISTOR_OFFLINE forbids it."""
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        locate_mitdb(tmp_path / "nowhere", records=[TEST])
    message = str(e.value)
    assert message.startswith(f"mitdb: {TEST}.hea, {TEST}.dat, {TEST}.atr not found in {tmp_path / 'nowhere' / 'mitdb'}. "
                              f"The data root {tmp_path / 'nowhere'} does not exist. Put the WFDB files (.hea/.dat/.atr) "
                              f"there, or point --data-dir/FERRISTOR_DATA at the root that holds mitdb/: the cache "
                              f"({cache_root() / 'mitdb'}) lacks them too, and FERRISTOR_OFFLINE=1 forbids "
                              f"downloading")
    assert "download from PhysioNet" not in message and "drop --data-dir" not in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"not found in .*empty.mitdb\. Put the WFDB files \(\.hea/\.dat/\.atr\) there, or "):
        locate_mitdb(tmp_path / "empty", records=[TEST])  # a root that exists is not said not to


def test_offline_a_copy_in_the_cache_is_offered_and_online_the_download(monkeypatch, fake_mitdb, tmp_path):
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    (cache_root() / "mitdb").mkdir(parents=True)
    for ext in ("hea", "dat", "atr"):
        shutil.copy(fake_mitdb.folder / f"{TEST}.{ext}", cache_root() / "mitdb")
    with pytest.raises(DataError, match=re.escape(f"Put the WFDB files (.hea/.dat/.atr) there, or drop --data-dir/"
                                                  f"FERRISTOR_DATA to use the copy in the cache ({cache_root() / 'mitdb'}).")):
        locate_mitdb(tmp_path, records=[TEST])
    monkeypatch.setenv("FERRISTOR_OFFLINE", "0")
    with pytest.raises(DataError, match=re.escape("drop --data-dir/FERRISTOR_DATA to use the copy in the cache")):
        locate_mitdb(tmp_path, records=[TEST])  # a complete copy is named first, online too
    with pytest.raises(DataError, match=re.escape("drop --data-dir/FERRISTOR_DATA to use the cache or a download from "
                                                  "PhysioNet.")):
        locate_mitdb(tmp_path, records=["100"])  # not in the cache: online, the download is the way


def test_a_data_dir_that_is_the_dataset_folder_itself_is_told_to_give_its_parent(monkeypatch, fake_mitdb, fake_fashion):
    """--data-dir …/mitdb had said only 'not found in …/mitdb/mitdb'."""
    with pytest.raises(DataError) as e:
        locate_mitdb(fake_mitdb.folder, records=[TEST])
    assert str(e.value).endswith(f"not found in {fake_mitdb.folder / 'mitdb'}. {fake_mitdb.folder} is the mitdb folder "
                                 f"itself: give its parent, {fake_mitdb.root}, the data root that holds mitdb/ "
                                 f"(--data-dir/FERRISTOR_DATA name that root, one folder per dataset).")
    from ferristor.data.registry import FASHION_FILES
    monkeypatch.setenv("FERRISTOR_DATA", str(fake_fashion.folder))  # the variable, as the option
    with pytest.raises(DataError, match=re.escape(f"{fake_fashion.folder} is the fashion-mnist folder itself: give its "
                                                  f"parent, {fake_fashion.root}")):
        locate(FASHION_FILES)


def test_offline_a_file_set_under_data_dir_names_the_cache_it_lacks_too(monkeypatch, tmp_path):
    monkeypatch.setenv("FERRISTOR_OFFLINE", "true")
    files = FileSet("toy", (RemoteFile("a.bin", "0" * 32, ("https://example.invalid/",)),))
    with pytest.raises(DataError) as e:
        locate(files, tmp_path)
    assert str(e.value) == (f"toy: a.bin not found in {tmp_path / 'toy'}. Put the files there, or point --data-dir/"
                            f"FERRISTOR_DATA at the root that holds toy/: the cache "
                            f"({cache_root() / 'toy'}) lacks them too, and FERRISTOR_OFFLINE=true forbids downloading "
                            f"(on a machine with a network, with FERRISTOR_OFFLINE unset, ferristor downloads them into its "
                            f"cache and checks every file against its checksums: copy that toy folder here).")
    monkeypatch.setenv("FERRISTOR_OFFLINE", "")
    with pytest.raises(DataError, match=re.escape("Put the files there, or drop --data-dir/FERRISTOR_DATA to use the "
                                                  "cache or a download.")):
        locate(files, tmp_path)
