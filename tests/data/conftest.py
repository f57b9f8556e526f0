"""Data fixtures. Fake datasets are small files generated here in the real formats, so every loader,
error and cache path runs in a clone without data; the ``full_*`` fixtures give the real datasets
to the few tests marked ``@pytest.mark.full_data`` (tests/conftest.py skips those without them).
"""
from __future__ import annotations

import gzip
import hashlib
import itertools
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ferristor.data.mitdb import ABNORMAL, FS_HZ, NORMAL, RECORDS

# ---------------------------------------------------------------------------------------------- IDX


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (magic 0x00000803 for images, 0x00000801 for labels), gzipped,
    as MNIST and Fashion-MNIST ship. The gzip header's time is 0, so the file and its md5 are the same every run."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@dataclass
class FakeIdx:
    """A small Fashion-MNIST look-alike: folder ``root/fashion-mnist`` with the four gz files."""

    root: Path
    arrays: dict[str, np.ndarray]  # file name → what it holds
    md5: dict[str, str]  # file name → md5 of the gz file

    @property
    def folder(self) -> Path:
        return self.root / "fashion-mnist"


@pytest.fixture(scope="session")
def fake_fashion(tmp_path_factory) -> FakeIdx:
    """40 training and 20 test images of 28 × 28, labels 0…9 (md5s of the files as written)."""
    from ferristor.data.registry import _IDX_NAMES

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("fake-data")
    (root / "fashion-mnist").mkdir()
    arrays = {}
    for name, n in zip(_IDX_NAMES, (40, 40, 20, 20)):
        if "images" in name:
            arrays[name] = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
            arrays[name][0, 0, :2] = (0, 255)  # the full pixel range
        else:
            arrays[name] = (np.arange(n) % 10).astype(np.uint8)
        write_idx_gz(root / "fashion-mnist" / name, arrays[name])
    return FakeIdx(root, arrays, {n: md5_of(root / "fashion-mnist" / n) for n in _IDX_NAMES})


# ------------------------------------------------------------------------------------------ MIT-BIH

FAKE_CLASS_BEATS = 215  # normal and abnormal beats in each other record: 47 × 215 = 10,105 ≥ ECGConfig's 10,000
FAKE_SPACING = 90  # samples between beats (windows overlap; the extraction does not care)
FAKE_MARGIN = 150  # samples before the first and after the last beat of an ordinary record
# The test record: a small mix with one beat near each edge, whose 252-sample window runs past it.
FAKE_TEST_BEATS = {"N": 40, "V": 20, "F": 6, "S": 2, "Q": 2}
FAKE_EDGE_GAP = 30  # samples between an edge and its edge beat (< half a window)
FAKE_TEST_RECORD = "208"


@dataclass
class FakeMitdb:
    """48 small WFDB records named as MIT-BIH's (format 212, 2 channels at 360 Hz, .atr annotations)."""

    root: Path  # data root: root/mitdb holds the records
    signals: dict[str, np.ndarray]  # record → digital samples (n, 2) as written
    samples: dict[str, np.ndarray]  # record → sample index of every annotation, beats and others
    symbols: dict[str, np.ndarray]  # record → symbol of every annotation
    gain: float = 200.0  # ADC units per mV
    baseline: int = 1024
    sha256: dict[str, str] = field(default_factory=dict)  # its checksum table, taken once the files are written

    @property
    def folder(self) -> Path:
        return self.root / "mitdb"

    def beats(self, record: str) -> tuple[np.ndarray, np.ndarray]:
        """(samples, symbols) of the annotations that are beats."""
        s = self.symbols[record]
        is_beat = (s == NORMAL) | np.isin(s, sorted(ABNORMAL))
        return self.samples[record][is_beat], s[is_beat]

    def digests(self, algorithm: str = "md5") -> dict[str, str]:
        """File name → hex digest of every file written, for a checksum table of the fake database."""
        return {p.name: hashlib.new(algorithm, p.read_bytes()).hexdigest() for p in sorted(self.folder.iterdir())}


def _annotations(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(samples, symbols, record length) of one fake record: beats plus rhythm '+' and noise '~' marks."""
    if name == FAKE_TEST_RECORD:
        beats = list(itertools.chain.from_iterable([s] * n for s, n in FAKE_TEST_BEATS.items()))
        beats.remove("F")
        beats.remove("N")
        beats = ["F", *rng.permutation(beats), "N"]  # an F beat at the start, an N beat at the end
        inner = FAKE_MARGIN + FAKE_SPACING * np.arange(len(beats) - 2)
        n = int(inner[-1]) + FAKE_MARGIN
        beat_samples = np.concatenate([[FAKE_EDGE_GAP], inner, [n - 1 - FAKE_EDGE_GAP]])
    else:
        abnormal = itertools.islice(itertools.cycle(sorted(ABNORMAL)), FAKE_CLASS_BEATS)
        beats = rng.permutation([NORMAL] * FAKE_CLASS_BEATS + list(abnormal))
        beat_samples = FAKE_MARGIN + FAKE_SPACING * np.arange(len(beats))
        n = int(beat_samples[-1]) + FAKE_MARGIN
    others = rng.choice(len(beats) - 1, 4, replace=False)  # marks between beats, never a beat
    samples = np.concatenate([beat_samples, beat_samples[others] + FAKE_SPACING // 2])
    symbols = np.concatenate([np.asarray(beats, dtype="<U1"), np.array(["+", "+", "~", "~"])])
    order = np.argsort(samples, kind="stable")
    return samples[order].astype(np.int64), symbols[order], n


def _signal(n: int, samples: np.ndarray, symbols: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digital samples (n, 2): noise around the baseline, a narrow spike per normal beat and a wide,
    larger one per abnormal beat, so the two classes differ in spectrum."""
    t = np.arange(-20, 21)
    shapes = {True: np.exp(-0.5 * (t / 3.0) ** 2) * 150, False: np.exp(-0.5 * (t / 8.0) ** 2) * 250}
    sig = rng.normal(0, 8, (n, 2))
    is_normal = symbols == NORMAL
    is_beat = is_normal | np.isin(symbols, sorted(ABNORMAL))
    for normal, kernel in shapes.items():
        train = np.zeros(n)
        train[samples[is_beat & (is_normal == normal)]] = 1.0
        spikes = np.convolve(train, kernel, mode="same")
        sig[:, 0] += spikes
        sig[:, 1] -= 0.5 * spikes
    return np.clip(np.round(sig) + 1024, 0, 2047).astype(np.int16)


def write_wfdb(folder: Path, name: str, digital: np.ndarray, samples: np.ndarray, symbols: np.ndarray,
               fs: int = FS_HZ) -> None:
    """One record as MIT-BIH stores it: header, format-212 signal file, 'atr' annotations."""
    with warnings.catch_warnings():  # wfdb 4.3 trips pandas deprecation warnings
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        import wfdb

        n_sig = digital.shape[1]
        wfdb.wrsamp(name, fs=fs, units=["mV"] * n_sig, sig_name=["MLII", "V1"][:n_sig],
                    d_signal=digital.astype(np.int64), fmt=["212"] * n_sig, adc_gain=[200.0] * n_sig,
                    baseline=[1024] * n_sig, write_dir=str(folder))
        wfdb.wrann(name, "atr", samples, symbol=list(symbols), write_dir=str(folder))


@pytest.fixture(scope="session")
def write_record():
    """``write_wfdb``, for tests that need a record of their own (this module is not importable)."""
    return write_wfdb


@pytest.fixture(scope="session")
def _fake_mitdb_files(tmp_path_factory) -> FakeMitdb:
    root = tmp_path_factory.mktemp("fake-data")
    (root / "mitdb").mkdir()
    db = FakeMitdb(root, {}, {}, {})
    for name in RECORDS:
        rng = np.random.default_rng(int(name))
        samples, symbols, n = _annotations(name, rng)
        digital = _signal(n, samples, symbols, rng)
        write_wfdb(root / "mitdb", name, digital, samples, symbols)
        db.signals[name], db.samples[name], db.symbols[name] = digital, samples, symbols
    # wfdb writes headers with LF line ends and no trailing blank line, so the digests of the bytes are
    # what ferristor.data.mitdb computes (it normalises header text); test_mitdb_checksums checks that.
    db.sha256 = db.digests("sha256")
    return db


@pytest.fixture
def fake_mitdb(_fake_mitdb_files, monkeypatch) -> FakeMitdb:
    """The fake MIT-BIH database (generated once per session, ~2 s), its own SHA-256 table in place
    of MIT-BIH's (``mitdb.CHECKSUMS``) for the test: the loader verifies the fake files through the
    same code path as the real ones. Tests that hand it to the loader take it through this fixture."""
    from ferristor.data import mitdb

    monkeypatch.setattr(mitdb, "CHECKSUMS", _fake_mitdb_files.sha256)
    return _fake_mitdb_files


@pytest.fixture(scope="session")
def fake_beats(_fake_mitdb_files, tmp_path_factory):
    """Per-beat features of the 48 fake records under the default config (extracted once)."""
    from ferristor.data.ecg import ECGConfig, extract_beats

    return extract_beats(_fake_mitdb_files.folder, RECORDS, ECGConfig(), tmp_path_factory.mktemp("fake-features"))


# ---------------------------------------------------------------------------------------- full data


@pytest.fixture(scope="session")
def full_mitdb(test_data) -> Path:
    """The data root holding the real mitdb/ (only for tests marked full_data("mitdb"))."""
    assert test_data is not None and (test_data / "mitdb").is_dir(), "a full_data('mitdb') test ran without it"
    return test_data


@pytest.fixture(scope="session")
def full_ecg_cache(tmp_path_factory) -> Path:
    """Where load_ecg caches when FERRISTOR_CACHE is this folder's parent (cache_root()/features)."""
    return tmp_path_factory.mktemp("ecg-home") / "features"


@pytest.fixture(scope="session")
def full_beats(full_mitdb, full_ecg_cache):
    """Per-beat features of all 48 real records under the default config (extracted once, a few seconds)."""
    from ferristor.data.ecg import ECGConfig, extract_beats

    return extract_beats(full_mitdb / "mitdb", RECORDS, ECGConfig(), full_ecg_cache)


@pytest.fixture(scope="session")
def full_ecg(full_mitdb, full_ecg_cache, full_beats):
    """The real ECG Dataset through the registry; it reuses the cache ``full_beats`` filled."""
    from ferristor.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERRISTOR_CACHE", str(full_ecg_cache.parent))
        mp.setenv("FERRISTOR_OFFLINE", "1")
        return load_dataset("ecg", str(full_mitdb))


@pytest.fixture(scope="session")
def full_fashion(test_data) -> Path:
    """The data root holding the real fashion-mnist/ (only for tests marked full_data("fashion-mnist"))."""
    assert test_data is not None and (test_data / "fashion-mnist").is_dir(), \
        "a full_data('fashion-mnist') test ran without it"
    return test_data
