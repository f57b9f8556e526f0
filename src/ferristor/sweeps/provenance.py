"""What produced a sweep's numbers: the code version and the datasets it trained on."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .trials import fingerprint


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """'ferristor <version>' plus the git commit of the source tree when it is a checkout ('+dirty'
    when it has uncommitted changes), so every row says which code computed it."""
    import ferristor
    version = f"ferristor {ferristor.__version__}"
    src = Path(ferristor.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "--", "."],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version} git {commit}{'+dirty' if dirty else ''}" if commit else version


def load_datasets(names, data_dir: str | None = None, given: dict | None = None) -> tuple[dict, dict]:
    """({name: Dataset}, {name: fingerprint}) for every name: ``given`` ones as they are, others
    loaded once from ``data_dir`` (else FERRISTOR_DATA, a package, the cache) by this process."""
    from ..data import load_dataset
    data, prints = {}, {}
    for name in names:
        data[name] = (given or {}).get(name) or load_dataset(name, data_dir)
        prints[name] = fingerprint(data[name])
    return data, prints
