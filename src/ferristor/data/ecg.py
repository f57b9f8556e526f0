"""The ECG task (digest §4): normal vs abnormal heartbeats of MIT-BIH, 20 spectral features per beat.

Each annotated beat gets a 700 ms window centred on it, on both channels; the magnitudes of the 10
lowest-frequency ``numpy.fft`` components of each channel give 20 features. Training: 10,000
normal + 10,000 abnormal beats drawn (seeded) from every record except 208; test: every beat of 208.
Features are standardised with training-set statistics only (``ECGConfig.feature_scaling``: the
paper does not say how its features are scaled).

A validation split (``--validation f``, ``fit(validation=f)``) is drawn from these training beats,
beat by beat: its beats come from the same 47 records — the same patients — as the beats trained on,
and entered the standardisation statistics. It is a within-patient split, which measures how well
the model knows those patients' beats, not how it does on a new patient (the test record 208 is the
only held-out patient); expect validation accuracy above test accuracy.

Per-beat features of the whole database are cached on disk (keyed by the records' checksums and
the extraction parameters), so a rerun, or a run with another seed, skips reading the records.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..atomic import atomic_write
from ..config_base import check_choice, check_number, param
from ..errors import ConfigError, DataError, FerristorWarning
from .mitdb import FS_HZ, N_CHANNELS, RECORDS, file_digest, locate_mitdb, read_record, record_files
from .registry import Dataset
from .sources import ENV_CACHE, cache_root

# Bump when the extraction code changes what it computes, so old caches are not trusted.
FEATURE_VERSION = 1
EDGE_POLICIES = ("pad", "drop")
FEATURE_SCALINGS = ("standardise", "none")


@dataclass
class ECGConfig:
    """How beats become features and which beats train and test."""

    window_ms: float = param(700.0, unit="ms", source="digest §4 [P]", doc="window centred on each annotated beat")
    n_fft_components: int = param(10, source="digest §4 [P]; magnitudes, DC bin included [I]", doc="lowest-frequency |FFT| components kept per channel, bins 0…n−1")
    test_record: str = param("208", source="digest §4 [P]", doc="record held out for testing; all its beats are the test set")
    train_per_class: int = param(10000, unit="beats", source="digest §4 [P]", doc="normal and abnormal training beats each (20,000 in all)")
    edge: str = param("pad", source="[I]", doc="a window running past the record's edge: 'pad' repeats the edge sample (every beat kept, as the paper tests on every beat of 208) or 'drop' skips the beat")
    seed: int = param(0, source="[I]", doc="seed of the training-beat draw and its shuffle")
    feature_scaling: str = param("standardise", source="digest §4 [I]", doc="'standardise' (per feature, with the training set's mean and std, on both sets) or 'none' (raw |FFT| magnitudes, in the record's ADC units)")

    def __post_init__(self):
        check_number("ECGConfig.window_ms", self.window_ms, lo=0, hi=10_000, lo_open=True)  # a beat is ~1 s: 10 s spans several
        if self.window_samples < 2:
            raise ConfigError("ECGConfig.window_ms", self.window_ms, f"a window of at least 2 samples at {FS_HZ} Hz")
        check_number("ECGConfig.n_fft_components", self.n_fft_components, lo=1,
                     hi=self.window_samples // 2 + 1, integer=True)
        if isinstance(self.test_record, int) and not isinstance(self.test_record, bool):
            self.test_record = str(self.test_record)  # --set ecg.test_record=208 and TOML's 208 parse as numbers
        check_choice("ECGConfig.test_record", self.test_record, RECORDS)
        check_number("ECGConfig.train_per_class", self.train_per_class, lo=1, integer=True)
        check_choice("ECGConfig.edge", self.edge, EDGE_POLICIES)
        check_number("ECGConfig.seed", self.seed, lo=0, integer=True)
        check_choice("ECGConfig.feature_scaling", self.feature_scaling, FEATURE_SCALINGS)

    @property
    def window_samples(self) -> int:
        """700 ms at 360 Hz → 252 samples."""
        return int(round(self.window_ms * FS_HZ / 1000))

    @property
    def n_features(self) -> int:
        return N_CHANNELS * self.n_fft_components


def beat_features(signal: np.ndarray, beats: np.ndarray, window: int, n_fft: int, edge: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Features (kept beats, 2·n_fft) float32 and the mask of kept beats, all beats at once.

    The window of a beat at sample s spans [s − window//2, s − window//2 + window): for 252 samples
    the beat sits at index 126. Features: channel 0's |FFT| bins 0…n_fft−1, then channel 1's.
    """
    n_samples = signal.shape[0]
    start = beats - window // 2
    inside = (start >= 0) & (start + window <= n_samples)
    keep = inside if edge == "drop" else np.ones_like(inside)
    # Pad by a full window on both sides so every index is valid; 'edge' mode repeats the first/last
    # sample, which adds no step (a zero pad would put a jump, hence spurious spectrum, in the window).
    padded = np.pad(signal, ((window, window), (0, 0)), mode="edge")
    idx = (start[keep] + window)[:, None] + np.arange(window)[None, :]
    windows = padded[idx]  # (beats, window, channels)
    spectrum = np.abs(np.fft.rfft(windows, axis=1)[:, :n_fft, :])  # (beats, n_fft, channels)
    feats = spectrum.transpose(0, 2, 1).reshape(len(idx), -1)
    return feats.astype(np.float32), keep


def cache_key(folder: Path, records: Sequence[str], config: ECGConfig) -> str:
    """Hash of the record files' contents and of the extraction parameters (not of the seed or the
    split, which are applied after loading the cache)."""
    h = hashlib.sha256()
    params = {"version": FEATURE_VERSION, "records": list(records), "window_samples": config.window_samples,
              "n_fft_components": config.n_fft_components, "edge": config.edge, "fs": FS_HZ}
    h.update(json.dumps(params, sort_keys=True).encode())
    for p in record_files(folder, records):
        h.update(f"{p.name}:{file_digest(p)}\n".encode())
    return h.hexdigest()[:24]


_CACHE_FIELDS = ("features", "labels", "records", "symbols")


def _load_cache(path: Path, n_features: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the file is absent, unreadable or inconsistent (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            beats = {k: z[k] for k in _CACHE_FIELDS}
    except Exception:
        return None
    n = len(beats["labels"])
    if beats["features"].shape != (n, n_features) or any(len(beats[k]) != n for k in _CACHE_FIELDS):
        return None
    bad = int(np.size(beats["features"]) - np.count_nonzero(np.isfinite(beats["features"])))
    if bad:
        # |FFT| of verified records is finite: the file was damaged after it was written. Said, since
        # otherwise the NaN would surface later as the dataset's, with no hint that a file is to blame.
        warnings.warn(FerristorWarning(f"the ECG feature cache {path} holds {bad} non-finite value(s), so it is "
                                       f"damaged: the features are extracted again from the records to replace it"),
                      stacklevel=3)
        return None
    return beats


def extract_beats(folder: Path, records: Sequence[str], config: ECGConfig,
                  cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Per-beat features, labels (0/1), record names and symbols of ``records``, from the cache
    when it holds them, else read from the WFDB files and cached (a warning where it cannot be written)."""
    from_env = cache_dir is None
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "features"
    path = cache_dir / f"mitdb-{cache_key(folder, records, config)}.npz"
    beats = _load_cache(path, config.n_features)
    if beats is not None:
        return beats
    parts = {k: [] for k in _CACHE_FIELDS}
    for name in records:
        rec = read_record(folder, name)
        feats, keep = beat_features(rec.signal, rec.beat_samples, config.window_samples,
                                    config.n_fft_components, config.edge)
        parts["features"].append(feats)
        parts["labels"].append(rec.beat_labels[keep])
        parts["records"].append(np.full(len(feats), name, dtype="<U3"))
        parts["symbols"].append(rec.beat_symbols[keep])
    beats = {k: np.concatenate(v) for k, v in parts.items()}
    try:
        with atomic_write(path) as f:
            np.savez(f, **beats)
    except OSError as e:  # the features are computed: a cache that cannot be written only costs the next run
        where = f"set {ENV_CACHE} to a writable folder" if from_env else "pass a writable cache_dir"
        warnings.warn(FerristorWarning(f"the ECG features were not cached: {path} could not be written "
                                       f"({e.strerror or e}); {where} to skip reading the records next time"),
                      stacklevel=2)
    return beats


def split_indices(beats: dict[str, np.ndarray], config: ECGConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training indices (train_per_class of each class from the other records, seeded, shuffled so
    the classes interleave for online learning) and test indices (every beat of the test record,
    in time order)."""
    is_test = beats["records"] == config.test_record
    rng = np.random.default_rng(config.seed)
    pools = [np.flatnonzero(~is_test & (beats["labels"] == label)) for label in (0, 1)]
    most = min(len(pool) for pool in pools)
    if config.train_per_class > most:
        # checked here, not in ECGConfig: the bound is the database's class counts. Named by its config
        # path, as --set and a --config file write it (the CLI has no option for it).
        name = ("normal", "abnormal")[int(np.argmin([len(pool) for pool in pools]))]
        raise DataError(f"ecg.train_per_class={config.train_per_class} exceeds the {most} {name} beats outside "
                        f"record {config.test_record}: at most {most} with ecg.test_record={config.test_record!r}")
    chosen = [rng.choice(pool, config.train_per_class, replace=False) for pool in pools]
    return rng.permutation(np.concatenate(chosen)), np.flatnonzero(is_test)


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x − mean)/std with the training set's per-feature statistics on both sets."""
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0  # a constant feature stays 0 rather than becoming NaN
    return (((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32))


def load_ecg(data_dir: str | os.PathLike | None = None, config: ECGConfig | None = None,
             cache_dir: str | os.PathLike | None = None) -> Dataset:
    """The ECG Dataset: x float32 (N, 20), y int64 0 normal / 1 abnormal, n_classes 2."""
    config = config or ECGConfig()
    folder = locate_mitdb(data_dir)
    beats = extract_beats(folder, RECORDS, config, cache_dir)
    train, test = split_indices(beats, config)
    x_train, x_test = beats["features"][train], beats["features"][test]
    if config.feature_scaling == "standardise":
        x_train, x_test = standardise(x_train, x_test)
    x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    as_target = lambda idx: torch.from_numpy(beats["labels"][idx].astype(np.int64))  # noqa: E731
    return Dataset("ecg", torch.from_numpy(x_train), as_target(train), torch.from_numpy(x_test), as_target(test), 2)
