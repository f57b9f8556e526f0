"""Writing results atomically, with the versions of everything that produced them."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from ..atomic import atomic_write


def write_json(path: str | os.PathLike, data: Any) -> Path:
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2, default=_jsonable)
    return Path(path)


def _jsonable(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def versions() -> dict[str, str]:
    import numpy
    import torch

    import ferristor
    out = {"ferristor": ferristor.__version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": numpy.__version__, "platform": platform.platform(), "processor": platform.processor() or platform.machine()}
    try:
        import numba
        out["numba"] = numba.__version__
    except ImportError:
        pass
    return out
