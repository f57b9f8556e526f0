"""What produced a sweep's numbers: the code version and the datasets it trained on."""
from __future__ import annotations

from .trials import fingerprint


def code_version() -> str:
    """The code that computed a trial's numbers: the engine's own record (the git commit of the
    source tree, ``+dirty`` with local changes, else the package version)."""
    from ..experiments.results import code_version as engine_code_version
    return engine_code_version()


def load_datasets(names, data_dir: str | None = None, given: dict | None = None) -> tuple[dict, dict]:
    """({name: Dataset}, {name: fingerprint}) for every name: ``given`` ones as they are, others
    loaded once from ``data_dir`` (else FERRISTOR_DATA, a package, the cache) by this process."""
    from ..data import load_dataset
    data, prints = {}, {}
    for name in names:
        data[name] = (given or {}).get(name) or load_dataset(name, data_dir)
        prints[name] = fingerprint(data[name])
    return data, prints
