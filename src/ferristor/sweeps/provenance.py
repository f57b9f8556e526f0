"""What produced a sweep's numbers: the code version and the datasets it trained on."""
from __future__ import annotations

import json

from .trials import fingerprint


def code_version() -> str:
    """The code that computed a trial's numbers: the engine's own record (the git commit of the
    source tree, ``+dirty`` with local changes, else the package version)."""
    from ..experiments.results import code_version as engine_code_version
    return engine_code_version()


def data_key(config: dict) -> str:
    """The data a trial's config (a dict) trains on, as a key of the driver's datasets: the dataset's
    name, and for the ECG the feature settings that differ from the defaults (JSON), so trials on
    differently built features get their own data, loaded once each."""
    import dataclasses

    from ..data.ecg import ECGConfig
    name = config["dataset"]
    if name != "ecg":
        return name
    default = dataclasses.asdict(ECGConfig())
    changed = {k: v for k, v in (config.get("ecg") or {}).items() if default.get(k) != v}
    return name + (json.dumps(changed, sort_keys=True) if changed else "")


def load_datasets(keys, data_dir: str | None = None, given: dict | None = None) -> tuple[dict, dict]:
    """({key: Dataset}, {key: fingerprint}) for every ``data_key``: ``given`` ones as they are, others
    loaded once from ``data_dir`` (else FERRISTOR_DATA, a package, the cache) by this process."""
    import dataclasses

    from ..data import load_dataset
    from ..data.ecg import ECGConfig
    data, prints = {}, {}
    for key in keys:
        name, brace, extra = key.partition("{")
        ecg = dataclasses.replace(ECGConfig(), **json.loads(brace + extra)) if brace else None
        data[key] = (given or {}).get(key) or load_dataset(name, data_dir, ecg=ecg)
        prints[key] = fingerprint(data[key])
    return data, prints
