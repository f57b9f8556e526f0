"""A run's output folder: prepared before any work, held by one run at a time, resumed with care.

* :func:`prepare` creates the folder and writes a probe file into it, so a folder that cannot be
  created or written (a file in the way, no permission, a read-only or full file system) is
  refused at once, naming ``--out``, not after an epoch of training.
* :class:`FolderLock` holds ``OUT/.lock`` with ``fcntl.flock`` for the whole run and writes who
  holds it (pid, host, start, command) into it; a second run on the folder is refused and told who
  holds it. A sweep driver holds the same ``OUT/.lock`` (``ferristor.locking``), so a run and a
  sweep are refused on each other's folder too. The kernel drops the lock when the holder exits,
  however it exits, so a stale ``.lock`` left by a killed run never blocks.
* :func:`claim` does both, removes the ``*.part`` files a killed atomic write left behind, and
  refuses a folder whose checkpoint or results belong to another configuration, listing the
  differences (``fresh=True``, ``--fresh``, discards them instead).
* :func:`load_checkpoint` / :func:`resume` read a checkpoint with errors that say which file,
  what is wrong with it, and that ``--fresh`` starts over.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..config_base import flatten
from ..errors import ABSENT, ConfigError, ConfigMismatchError, DataError, FerristorWarning
from .results import read_json

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.json"
LOCK = ".lock"
_PROBE = ".ferristor-probe-"
# What ``atomic.atomic_write`` names its temporary files: ".{name}.{8 random chars}.part".
_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
FIELD = "out_dir"  # the field errors about the folder name (the CLI says --out)
DATA_FINGERPRINT = "dataset_fingerprint"  # the run identity's entry for the data it trains on
FRESH_HINT = "rerun with --fresh (in Python: fresh=True) to discard it and start over, or choose another --out"
# the same, for a ConfigMismatchError, which names the options as the caller wrote them
MISMATCH_HINT = "rerun with {fresh} to discard it and start over, or choose another {out_dir}"

_OS_REASONS = {
    errno.EACCES: "permission denied", errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only", errno.ENOSPC: "the file system is full",
    errno.EDQUOT: "the disk quota is used up", errno.ENAMETOOLONG: "a name in the path is too long",
    errno.ENOTDIR: "a part of the path is a file, not a folder", errno.ELOOP: "the path loops through links",
}


def _why(e: OSError) -> str:
    return _OS_REASONS.get(e.errno, e.strerror or type(e).__name__)


def _folder_error(out, reason: str) -> ConfigError:
    return ConfigError(FIELD, os.fspath(out), reason=reason)


def prepare(out: str | os.PathLike, *, need_bytes: int = 0) -> Path:
    """Create ``out`` and prove it writable (and, with ``need_bytes``, roomy enough); ConfigError otherwise."""
    text = os.fspath(out)
    if not str(text).strip():
        raise _folder_error(out, "an empty path; give a folder")
    folder = Path(text)
    try:
        is_file = folder.exists() and not folder.is_dir()
        if not is_file:
            folder.mkdir(parents=True, exist_ok=True)
    except ValueError as e:  # e.g. an embedded NUL
        raise _folder_error(out, f"not a valid path ({e})") from None
    except FileExistsError:
        raise _folder_error(out, "cannot be created: a file of that name is in the way") from None
    except OSError as e:
        raise _folder_error(out, f"cannot be created ({_why(e)})") from None
    if is_file:  # outside the try: its error is a ConfigError, a ValueError, which that would have re-worded
        raise _folder_error(out, "is a file, not a folder")
    probe = folder / f"{_PROBE}{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"ferristor\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _folder_error(out, f"cannot be written ({_why(e)})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    if need_bytes:
        try:
            st = os.statvfs(folder)
            free = st.f_bavail * st.f_frsize
        except (OSError, AttributeError):
            free = None
        if free is not None and free < need_bytes:
            from .resources import gib
            raise _folder_error(out, f"has {gib(free)} free, but the run needs about {gib(need_bytes)} for its "
                                     f"checkpoint (written beside the previous one) and results")
    return folder


# --- the lock ----------------------------------------------------------------------------------

class FolderLock:
    """An advisory, exclusive lock on ``folder/.lock`` (flock: released by the kernel when the holder dies)."""

    def __init__(self, folder: Path):
        self.folder, self.path, self._fd = Path(folder), Path(folder) / LOCK, None

    def acquire(self, command: str | None = None) -> "FolderLock":
        try:
            import fcntl
        except ImportError:  # no flock (Windows): runs are not protected from each other
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _folder_error(self.folder, f"cannot create its lock file {LOCK} ({_why(e)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise _folder_error(self.folder, f"is in use by another ferristor run ({holder}); wait for it to "
                                             f"finish, or choose another --out") from None
        except OSError as e:  # a file system without locks (some network mounts): warn, do not refuse
            os.close(fd)
            warnings.warn(FerristorWarning(f"cannot be locked ({_why(e)}): a second run on this folder would not "
                                           f"be stopped", field=FIELD, value=str(self.folder)), stacklevel=3)
            return self
        # the record ferristor.locking writes too: a sweep driver holds this same lock (one writer per folder)
        from ..locking import holder_record
        info = holder_record(command)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # the file stays (removing it would race with a waiting run)
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _describe_holder(fd: int) -> str:
    from ..locking import UNREADABLE_RECORD, describe_holder
    try:
        return describe_holder(json.loads(os.pread(fd, 65536, 0).decode()), "started")
    except UNREADABLE_RECORD:
        return "it has not said who it is yet"


# --- cleaning ----------------------------------------------------------------------------------

def clean_parts(folder: Path, subfolders: Iterable[str] = ("",)) -> list[Path]:
    """Remove what killed writes left in ``folder`` (and the given subfolders, not deeper): temporary
    files of ``atomic_write`` and write probes. Call it only while holding the folder's lock."""
    removed = []
    for sub in subfolders:
        d = folder / sub
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if (_PART.match(p.name) or p.name.startswith(_PROBE)) and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed


def discard(folder: Path, names: Iterable[str]) -> None:
    """Delete the named files or folders under ``folder`` (what ``--fresh`` starts over without)."""
    for name in names:
        p = folder / name
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        except OSError as e:
            raise _folder_error(folder, f"cannot remove {p.name} to start fresh ({_why(e)})") from None


# --- checkpoints -------------------------------------------------------------------------------

_CHECKPOINT_FIELDS = {"config": dict, "model": dict, "optimizer": dict, "step": int,
                      "history": list, "train_time": (int, float)}
_OPTIONAL_FIELDS = {"compile_time": (int, float)}  # absent from checkpoints written before it was timed


def _unusable(path: Path, what: str) -> DataError:
    return DataError(f"{path} is not a usable checkpoint: {what}. Delete it, or {FRESH_HINT}.")


def damaged_member(f) -> str | None:
    """The first member of a zip (a ``torch.save`` file, an open binary file object) whose bytes fail
    their CRC-32, or None. torch.load checks none: a flipped bit in a tensor would load as a value."""
    import zipfile
    try:
        z = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # not a whole zip: torch.load says what is wrong
        return None
    with z:
        for info in z.infolist():
            if info.CRC == 0 and info.file_size:  # torch.save with its CRC-32 option off writes 0: nothing to check
                continue
            try:
                with z.open(info) as member:
                    while member.read(1 << 22):  # the CRC is compared at the member's end
                        pass
            except (zipfile.BadZipFile, OSError, EOFError, ValueError):
                return info.filename
    return None


_VERIFIED: set[tuple] = set()  # checkpoints whose CRCs passed, by _stamp: a file changed since has another


def _stamp(path: Path, f) -> tuple:
    st = os.fstat(f.fileno())
    return str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def load_checkpoint(path: str | os.PathLike, *, mmap: bool = False) -> dict:
    """A checkpoint dict with the fields ``train`` needs, or a DataError saying what is wrong with the file.
    Every member's CRC-32 is checked first (``damaged_member``): a corrupted checkpoint is refused, never
    resumed, nor its config read as another configuration. ``mmap``: tensors mapped, not read."""
    import zipfile

    import torch

    path = Path(path)
    damaged = None
    try:
        with open(path, "rb") as f:  # torch.save writes a zip: its first local header, then its directory
            zipped = f.read(4) == b"PK\x03\x04" and zipfile.is_zipfile(f)
            stamp = _stamp(path, f)
            if zipped and stamp not in _VERIFIED:  # check_same_run, then resume: the bytes are read once
                damaged = damaged_member(f)
                if damaged is None:
                    _VERIFIED.add(stamp)
    except OSError:
        zipped = None  # unreadable: torch.load below says why
    if zipped is False:  # torch's own message for it (with mmap=True) is about mmap
        raise _unusable(path, "it is not a torch checkpoint (empty or not a zip file: a write cut short, or "
                              "another kind of file)")
    if damaged is not None:
        raise _unusable(path, f"its bytes are corrupt ({damaged} fails its checksum: damaged on disk or in a copy)")
    try:
        # weights_only: a checkpoint holds tensors, numbers, strings and containers; anything else
        # (arbitrary pickled objects) is refused rather than executed.
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise _unusable(path, f"it cannot be read ({type(e).__name__}: {first}); it is truncated, "
                              f"corrupt or not a torch file") from None
    if not isinstance(ckpt, dict):
        raise _unusable(path, f"it holds a {type(ckpt).__name__}, not a checkpoint dict")
    missing = [k for k in _CHECKPOINT_FIELDS if k not in ckpt]
    if missing:
        raise _unusable(path, "it lacks " + ", ".join(repr(k) for k in missing))
    wrong = [f"{k!r} is a {type(ckpt[k]).__name__}" for k, t in {**_CHECKPOINT_FIELDS, **_OPTIONAL_FIELDS}.items()
             if k in ckpt and (not isinstance(ckpt[k], t) or isinstance(ckpt[k], bool))]
    if wrong:
        raise _unusable(path, "; ".join(wrong))
    if ckpt["step"] < 0:
        raise _unusable(path, f"its step is {ckpt['step']}")
    return ckpt


def config_differences(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(field path, saved value, current value) of every field in which two run identities differ,
    but the paths in ``ignore``."""
    from .config import run_identity, with_legacy_defaults

    def norm(c):  # fields added since a run was saved compare at the value it computed with
        return flatten(with_legacy_defaults(run_identity(c)))
    a, b = norm(saved), norm(current)
    return [(k, a.get(k, ABSENT), b.get(k, ABSENT)) for k in sorted(a.keys() | b.keys())
            if a.get(k, ABSENT) != b.get(k, ABSENT) and k not in ignore]


def report_only() -> tuple[str, ...]:
    """The ledger's costs and ratings and its operations per counted event: a run continued or re-reported
    with other values computes the same training, and its results (written at the end) carry the new ones."""
    from ..circuit.ledger import LedgerConfig
    return tuple(f"ledger.{name}" for name in LedgerConfig.REPORT_ONLY + LedgerConfig.RECOUNTED)


def check_same_run(folder: Path, cfg_dict: dict) -> None:
    """Refuse a folder whose checkpoint (or, without one, results) belong to another configuration."""
    ckpt_path, results_path = folder / CHECKPOINT, folder / RESULTS
    if ckpt_path.exists():
        saved, what = load_checkpoint(ckpt_path, mmap=True)["config"], "a checkpoint"
    elif results_path.exists():
        saved, what = read_results(results_path)["config"], "the results"
    else:
        return
    refuse_other_config(folder, saved, cfg_dict, what, MISMATCH_HINT, ignore=report_only())


def read_results(path: Path) -> dict:
    """A results.json (a dict holding its run's 'config' dict), or a DataError saying what is wrong."""
    try:
        results = read_json(path)
        if not isinstance(results, dict) or not isinstance(results.get("config"), dict):
            raise TypeError("no config dict in it")
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{path} is unreadable ({type(e).__name__}: {e}); {FRESH_HINT}.") from None
    return results


def refuse_other_config(folder: Path, saved: dict, cfg_dict: dict, what: str, remedy: str,
                        ignore: tuple[str, ...] = ()) -> None:
    """A ConfigMismatchError naming every setting (but ``ignore``) in which ``what`` (saved in ``folder``)
    differs from ``cfg_dict``; the data's fingerprint is compared once the data are loaded (resume)."""
    diffs = [d for d in config_differences(saved, cfg_dict, ignore) if d[0] != DATA_FINGERPRINT]
    if diffs:
        raise ConfigMismatchError(FIELD, str(folder), what, diffs, remedy)


def resume(path: Path | None, cfg_dict: dict, model, optimizer) -> tuple[int, list, float, float]:
    """(step, history, train time, compile time) to continue from: the model's and the optimizer's
    states loaded from the checkpoint at ``path`` when there is one, else (0, [], 0.0, 0.0)."""
    if path is None or not Path(path).exists():
        return 0, [], 0.0, 0.0
    ckpt = load_checkpoint(path)
    diffs = config_differences(ckpt["config"], cfg_dict, report_only())
    if diffs:
        raise ConfigMismatchError(FIELD, str(Path(path).parent), "a checkpoint", diffs, MISMATCH_HINT)
    warn_other_device(Path(path).parent, ckpt["config"].get("device"), cfg_dict.get("device"))
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise _unusable(Path(path), f"its state does not fit this run's network ({first})") from None
    restore_torch_rng(ckpt)
    return ckpt["step"], ckpt["history"], float(ckpt["train_time"]), float(ckpt.get("compile_time", 0.0))


def _device_kind(device) -> str | None:
    return None if device is None else str(device).split(":")[0]


def warn_other_device(folder: Path, saved, now) -> None:
    """A run continued on another kind of device than it was checkpointed on (cpu → cuda): allowed (where
    a run executes is not its identity), but a GPU and a CPU agree statistically, not bit for bit, so
    the result is neither's alone; say so."""
    if _device_kind(saved) and _device_kind(now) and _device_kind(saved) != _device_kind(now):
        warnings.warn(FerristorWarning(
            f"{folder}: continuing on {now} a run checkpointed on {saved}; a GPU and a CPU run agree in "
            f"distribution, not bit for bit, so its results will equal neither device's run from the start "
            f"(start over on one device with --fresh for a reproducible run)"), stacklevel=3)


def torch_rng_state() -> dict:
    """torch's global generators, for a checkpoint: a model that draws from them (``nn.Dropout``)
    resumes with the draws it would have made (the chip's own streams are counter-based and need
    nothing saved)."""
    import torch
    state = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_torch_rng(state: dict) -> None:
    """Set torch's generators as a checkpoint saved them (checkpoints from before they were saved: left as they are)."""
    import torch
    if isinstance(state.get("torch_rng"), torch.Tensor):
        torch.set_rng_state(state["torch_rng"])
    cuda = state.get("torch_cuda_rng")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --- another command's folder ---------------------------------------------------------------------

# What ``ferristor sweep`` and ``reproduce`` keep in a folder: a results store (``sweep.sqlite``, or the
# ``trials/`` folder of the layout before it) and Fig. 6's table. ``reproduce`` keeps each figure's in
# a subfolder of its --out (OUT/fig5cde/sweep.sqlite, OUT/fig6/fig6.json).
_OTHER_COMMANDS = (("sweep.sqlite", False, "a sweep's results store"),
                   ("trials", True, "a sweep's trials (the results store of older versions)"),
                   ("fig6.json", False, "a ferristor fig6 / reproduce fig6 result"))


def _other_command_holding(folder: Path) -> str | None:
    """What of a sweep or a reproduce figure ``folder`` (or a folder right inside it) holds, or None."""
    def held(d: Path, where: str = "") -> str | None:
        for name, is_dir, what in _OTHER_COMMANDS:
            p = d / name
            with contextlib.suppress(OSError, ValueError):
                if p.is_dir() if is_dir else p.is_file():
                    return f"{what} ({p.relative_to(folder)}{where})"
        return None
    try:
        if not folder.is_dir():
            return None
        return held(folder) or next((found for sub in sorted(folder.iterdir()) if sub.is_dir() and not sub.is_symlink()
                                     for found in [held(sub, ": a ferristor reproduce folder")] if found), None)
    except (OSError, ValueError):  # a folder that cannot be listed: prepare says what is wrong with it
        return None


def refuse_other_command(out: str | os.PathLike) -> None:
    """A ConfigError naming ``--out`` when ``out`` holds a sweep's or a ``reproduce`` figure's results:
    a run's results.json and checkpoint written beside them would mix two commands' results in one
    folder (and the sweep would refuse its own folder afterwards)."""
    found = _other_command_holding(Path(os.fspath(out)))
    if found:
        raise _folder_error(out, f"holds {found}, not a train run: give another --out (a run's results.json "
                                 f"and checkpoint.pt beside it would mix the two)")


# --- the whole claim -----------------------------------------------------------------------------

@contextlib.contextmanager
def claim(out: str | os.PathLike, *, config: dict | None = None, fresh: bool = False,
          discard_names: Iterable[str] = (CHECKPOINT, RESULTS), subfolders: Iterable[str] = ("",),
          need_bytes: int = 0, command: str | None = None) -> Iterator[Path]:
    """Prepare and lock ``out`` for one run; clean what killed writes left; with ``fresh``, discard
    ``discard_names``; with ``config``, refuse a folder holding another configuration's run. The
    lock is released when the block ends, however it ends."""
    folder = prepare(out, need_bytes=need_bytes)
    lock = FolderLock(folder).acquire(command)
    try:
        clean_parts(folder, subfolders)
        if fresh:
            discard(folder, discard_names)
        if config is not None:
            check_same_run(folder, config)
        yield folder
    finally:
        lock.release()


def claimed(train_fn):
    """Wraps ``train(cfg, out_dir=None, ..., fresh=False)``: before the body runs, the memory the
    replicas need is checked and ``out_dir`` is claimed (see :func:`claim`) until it returns."""
    @functools.wraps(train_fn)
    def wrapper(cfg, out_dir=None, *args, fresh: bool = False, **kwargs):
        from ..config_base import to_dict
        from .resources import check_memory, state_bytes

        check_memory(cfg)
        if out_dir is None:
            return train_fn(cfg, out_dir, *args, **kwargs)
        refuse_other_command(out_dir)
        with claim(out_dir, config=to_dict(cfg), fresh=fresh, need_bytes=2 * state_bytes(cfg) + (1 << 20)):
            return train_fn(cfg, out_dir, *args, **kwargs)
    return wrapper
