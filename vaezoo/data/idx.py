"""Reader for the IDX format of MNIST and Fashion-MNIST (gzip-compressed or not)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

__all__ = ["read_idx"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_BYTES = 4 << 30  # the most an IDX file may hold: a header claiming more is refused before reading


def read_idx(path: str | Path) -> torch.Tensor:
    """The tensor of an IDX file. Decompression is bounded by the size its header declares, so a
    small ``.gz`` that inflates to gigabytes (or a header that claims them) is an error naming the
    file, not an exhausted memory."""
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as stream:
            head = stream.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise DataError(f"{path} is not an IDX file (bad magic number)")
            dims = stream.read(4 * head[3])
            shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(len(dims) // 4))
            dtype = np.dtype(_DTYPES[head[2]])
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if len(shape) != head[3] or expected > MAX_BYTES:
                raise DataError(f"{path}: its IDX header declares {shape}, more than {MAX_BYTES >> 30} GiB or cut short")
            body = stream.read(expected + 1)  # one byte more than declared tells of a longer file
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(f"cannot read {path}: {reason} (a .gz file must be gzip-compressed)") from None
    if len(body) != expected:
        what = "truncated" if len(body) < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: the header declares {shape} ({expected:,} bytes of data)")
    data = np.frombuffer(body, dtype=dtype)
    return torch.from_numpy(data.astype(data.dtype.newbyteorder("="), copy=True).reshape(shape))
