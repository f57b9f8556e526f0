"""Writing results atomically, with the versions of everything that produced them."""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from ..atomic import atomic_write


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as strict JSON (RFC 8259), atomically. JSON has no infinity: a value that is not finite
    is written as null — in practice an endurance margin of devices never written — and
    :func:`read_json` reads a null margin back as infinity."""
    text = dumps(data, indent=2)
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """A file :func:`write_json` wrote (or an older one with ``Infinity`` in it): a null under a key
    ending in ``margin`` is an infinite margin again. json's own errors (OSError, ValueError) pass."""
    return loads(Path(path).read_text(encoding="utf-8"))


def dumps(data: Any, **kw) -> str:
    """``data`` as strict JSON text, as :func:`write_json` writes it (a sweep's store keeps its results so)."""
    return json.dumps(_strict(data), allow_nan=False, default=str, **kw)


def loads(text: str) -> Any:
    """JSON text of :func:`dumps` (or older text with ``Infinity``), infinite margins restored."""
    return _margins(json.loads(text))


def _strict(o):
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set)):
        return [_strict(v) for v in o]
    if hasattr(o, "tolist"):  # numpy and torch values
        return _strict(o.tolist())
    return o


def _margins(o):
    if isinstance(o, dict):
        return {k: (math.inf if v is None and isinstance(k, str) and k.endswith("margin") else _margins(v))
                for k, v in o.items()}
    if isinstance(o, list):
        return [_margins(v) for v in o]
    return o


def versions() -> dict[str, str]:
    import numpy
    import torch

    import ferristor
    out = {"ferristor": ferristor.__version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": numpy.__version__, "platform": platform.platform(), "processor": platform.processor() or platform.machine()}
    try:
        import numba
        from llvmlite import binding as ll

        from ..vector_width import in_effect
        out["numba"] = numba.__version__
        out["cpu"] = ll.get_host_cpu_name()  # LLVM's name of the core the kernels were built for
        out["vector_width"] = in_effect()  # moves the speed, never the results (vector_width)
    except ImportError:
        pass
    return out


_CODE_VERSION: str | None = None


def code_version() -> str:
    """The code that produced a result: the git commit of the source tree (``+dirty`` with local
    changes) when ferristor runs from a checkout, else the installed package's version."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import subprocess

        import ferristor
        here = Path(ferristor.__file__).resolve().parent
        try:
            run = lambda *a: subprocess.run(["git", *a], cwd=here, capture_output=True, text=True, timeout=5)  # noqa: E731
            head = run("rev-parse", "HEAD")
            if head.returncode:
                raise OSError(head.stderr)
            dirty = run("status", "--porcelain", "--untracked-files=no", "--", str(here.parent.parent)).stdout.strip()
            _CODE_VERSION = head.stdout.strip() + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            _CODE_VERSION = f"ferristor {ferristor.__version__}"
    return _CODE_VERSION
