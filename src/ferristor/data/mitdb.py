"""The MIT-BIH Arrhythmia Database (digest §4): where its WFDB records are and how one is read.

Places, in order: an explicit data root (``--data-dir`` or ``FERRISTOR_DATA``) holding ``mitdb/``;
the user cache ``cache_root()/mitdb``; else a fetch from PhysioNet through ``wfdb`` into that cache,
never when ``FERRISTOR_OFFLINE`` is true (1, true, yes, on: ``sources.env_flag``). An explicit root
that lacks files is an error, not a reason to download elsewhere (as in ``sources.locate``).

Wherever they come from, the files are checked against the SHA-256 table shipped with ferristor
(``mitdb_checksums``) before use, and every file that does not match is reported at once. Header
(``.hea``) text is compared with CRLF line ends and trailing blank lines normalised, as PhysioNet's
originals (CRLF) and common copies (LF) differ only there. Tests with synthetic records replace
the module-level ``CHECKSUMS`` (e.g. with ``checksum_table(folder, records)``) or pass
``checksums=`` to :func:`locate_mitdb`, and go through the same code path.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .mitdb_checksums import MITDB_SHA256
from .sources import ENV_DATA_ROOT, ENV_OFFLINE, cache_root, env_path, explicit_root_advice, offline, present

FOLDER = "mitdb"
PHYSIONET_DB = "mitdb"  # PhysioNet database slug for wfdb.dl_database
FS_HZ = 360  # sampling rate of every record (digest §4)
N_CHANNELS = 2  # two-channel records (digest §4)
EXTENSIONS = ("hea", "dat", "atr")

# The 48 records of MIT-BIH v1.0.0 (digest §4: "48 half-hour two-channel records").
RECORDS = (
    "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "111", "112", "113",
    "114", "115", "116", "117", "118", "119", "121", "122", "123", "124", "200", "201", "202",
    "203", "205", "207", "208", "209", "210", "212", "213", "214", "215", "217", "219", "220",
    "221", "222", "223", "228", "230", "231", "232", "233", "234",
)

# Beat labels (digest §4): normal "N" → 0, these abnormal beat symbols → 1; other symbols
# (rhythm changes "+", noise "~", comments, …) are not beats and are ignored.
NORMAL = "N"
ABNORMAL = frozenset({"L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q"})


# File name → SHA-256 (of the normalised text for .hea); replaceable by tests with synthetic records.
CHECKSUMS: dict[str, str] = MITDB_SHA256

_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime, normalised) → digest: each file is hashed once per process


def file_digest(path: Path, *, normalise_header: bool = False) -> str:
    """SHA-256 of a file; with ``normalise_header``, of its text with LF line ends and no trailing blank lines."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, normalise_header)
    if key not in _DIGESTS:
        if normalise_header:
            text = Path(path).read_bytes().replace(b"\r\n", b"\n")
            _DIGESTS[key] = hashlib.sha256(text.rstrip(b"\n \t") + b"\n").hexdigest()
        else:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _record_digest(path: Path) -> str:
    return file_digest(path, normalise_header=path.suffix == ".hea")


def checksum_table(folder: Path, records: Sequence[str] = RECORDS) -> dict[str, str]:
    """The checksum table of ``records`` as found in ``folder`` (for fixtures, or to regenerate ``mitdb_checksums``)."""
    return {p.name: _record_digest(p) for p in record_files(Path(folder), records)}


def verify_mitdb(folder: Path, records: Sequence[str] = RECORDS, checksums: dict[str, str] | None = None) -> None:
    """DataError listing every file of ``records`` in ``folder`` whose SHA-256 is not the expected one."""
    table = CHECKSUMS if checksums is None else checksums
    bad, unknown = [], []
    for p in record_files(Path(folder), records):
        want = table.get(p.name)
        if want is None:
            unknown.append(p.name)
        elif _record_digest(p) != want:
            bad.append(p.name)
    problems = []
    if bad:
        problems.append(f"{len(bad)} file(s) do not match the MIT-BIH checksums shipped with ferristor "
                        f"(corrupt or altered): {', '.join(bad)}")
    if unknown:
        problems.append(f"no checksum is known for {', '.join(unknown)}")
    if problems:
        raise DataError(f"{FOLDER} in {folder}: " + "; ".join(problems) + ". Replace these files with good copies "
                        f"of MIT-BIH v1.0.0 (e.g. delete them and drop --data-dir/{ENV_DATA_ROOT} to fetch them from "
                        f"PhysioNet).")


@dataclass
class Record:
    name: str
    signal: np.ndarray  # (samples, 2) float64, mV
    beat_samples: np.ndarray  # (beats,) int64 sample index of each labelled beat
    beat_symbols: np.ndarray  # (beats,) '<U1' annotation symbol
    beat_labels: np.ndarray  # (beats,) int8: 0 normal, 1 abnormal


def record_files(folder: Path, records: Sequence[str]) -> list[Path]:
    return [folder / f"{r}.{ext}" for r in records for ext in EXTENSIONS]


def _missing(folder: Path, records: Sequence[str]) -> list[str]:
    return [p.name for p in record_files(folder, records) if not present(p)]


def _describe_missing(missing: list[str]) -> str:
    shown = ", ".join(missing[:6])
    return shown + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")


def locate_mitdb(data_dir: str | os.PathLike | None = None, records: Sequence[str] = RECORDS,
                 checksums: dict[str, str] | None = None) -> Path:
    """The folder holding every file of ``records``, verified against ``checksums`` (default
    ``CHECKSUMS``). Raises DataError saying where it looked or which files are corrupt."""
    folder = _find_mitdb(data_dir, records, checksums)
    verify_mitdb(folder, records, checksums)
    return folder


def _find_mitdb(data_dir, records: Sequence[str], checksums) -> Path:
    no_download = offline()  # read first: a mistyped value is refused even where nothing is fetched
    explicit = data_dir or env_path(ENV_DATA_ROOT)
    if explicit:
        folder = Path(explicit) / FOLDER
        missing = _missing(folder, records)
        if missing:
            advice = explicit_root_advice(Path(explicit), FOLDER, [p.name for p in record_files(folder, records)],
                                          [("cache", cache_root() / FOLDER)], "a download from PhysioNet",
                                          files="the WFDB files (.hea/.dat/.atr)")
            raise DataError(f"{FOLDER}: {_describe_missing(missing)} not found in {folder}. {advice}")
        return folder
    folder = cache_root() / FOLDER
    missing = _missing(folder, records)
    if not missing:
        return folder
    if no_download:
        raise DataError(f"{FOLDER}: {_describe_missing(missing)} not found; looked in the cache {folder} and "
                        f"{ENV_OFFLINE}={os.environ[ENV_OFFLINE]} forbids downloading. Pass --data-dir DIR (a "
                        f"folder holding {FOLDER}/) or set {ENV_DATA_ROOT}.")
    _download(folder, records, checksums)
    return folder


def _download(dest: Path, records: Sequence[str], checksums: dict[str, str] | None = None) -> None:
    """Fetch from PhysioNet into a temporary folder, then move the files in, so an interrupted fetch
    never leaves a half-written record where the next run would trust it."""
    wfdb = _wfdb()
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{FOLDER}-download-"))
    try:
        wfdb.dl_database(PHYSIONET_DB, dl_dir=str(tmp), records=list(records), annotators=["atr"])
        missing = _missing(tmp, records)
        if missing:
            raise DataError(f"download from PhysioNet ({PHYSIONET_DB}) lacks {_describe_missing(missing)}")
        verify_mitdb(tmp, records, checksums)  # a corrupt download never reaches the cache
        for p in record_files(tmp, records):
            os.replace(p, dest / p.name)
    except DataError:
        raise
    except Exception as e:  # network, HTTP or wfdb errors: one clear message
        raise DataError(f"{FOLDER}: could not fetch from PhysioNet into {dest} ({e}). Pass --data-dir DIR "
                        f"(a folder holding {FOLDER}/) or set {ENV_DATA_ROOT}.") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _wfdb():
    try:
        import wfdb  # imported here: it pulls pandas, and most commands never read ECG
    except ImportError as e:
        from ..errors import FerristorError
        raise FerristorError(f"the ECG task needs the wfdb package ({e}): pip install 'ferristor[ecg]'") from e
    return wfdb


def read_record(folder: Path, name: str) -> Record:
    """Signals and labelled beats of one record; DataError if it is unreadable or not MIT-BIH shaped."""
    base = str(folder / name)
    with warnings.catch_warnings():  # wfdb 4.3 trips pandas deprecation warnings on import and read
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        wfdb = _wfdb()
        try:
            rec = wfdb.rdrecord(base)
            ann = wfdb.rdann(base, "atr")
        except Exception as e:
            raise DataError(f"{base}: not a readable WFDB record with .atr annotations ({type(e).__name__}: {e}). "
                            f"Replace its .hea/.dat/.atr files.") from e
    if rec.fs != FS_HZ or rec.n_sig != N_CHANNELS or rec.p_signal is None:
        raise DataError(f"{base}: expected {N_CHANNELS} channels at {FS_HZ} Hz, got {rec.n_sig} at {rec.fs} Hz")
    symbols = np.asarray(ann.symbol, dtype="<U1")
    samples = np.asarray(ann.sample, dtype=np.int64)
    is_normal = symbols == NORMAL
    is_beat = is_normal | np.isin(symbols, sorted(ABNORMAL))
    return Record(name, rec.p_signal, samples[is_beat], symbols[is_beat],
                  (~is_normal[is_beat]).astype(np.int8))
