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
