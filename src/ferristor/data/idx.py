"""Reader of the IDX format (MNIST, Fashion-MNIST), gzip-compressed."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} is not a readable gzip file ({e}); delete it and fetch it again") from e
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes); delete it and fetch it again")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _DTYPES:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    if len(raw) < 4 + 4 * ndim:  # the dimensions, 4 bytes each, follow the magic
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, its {ndim} dimensions need "
                        f"{4 + 4 * ndim}); delete it and fetch it again")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_DTYPES[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: IDX header says {shape} but holds {data.size} values")
    return data.reshape(shape)
