"""MNIST's idx format: read a file, or check an extracted one against its own header.

An idx file of unsigned bytes starts with two zero bytes, the type code ``0x08``,
the number of dimensions ``d`` and then ``d`` big-endian int32 sizes; the body holds
their product in bytes. A file cut short (an interrupted extraction, a full disk)
is found by comparing its size with what the header promises, without reading the
body: :func:`idx_problem` does that in microseconds, so every load can afford it.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from ..errors import DataError
from .paths import read_bytes

__all__ = ["idx_problem", "read_idx", "unzip"]


def unzip(raw, path):
    """Decompress the bytes of a gzip'd data file.

    :raises DataError: naming ``path``, if the archive is truncated or corrupt.
    """
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path} is truncated or corrupt ({error}); replace it with a "
                        "complete copy of the original file") from None


def _shape(head):
    """The shape a header promises, or ``None`` if ``head`` is no idx header of unsigned bytes."""
    if len(head) < 4:
        return None
    zeros, type_code, ndim = struct.unpack(">HBB", head[:4])
    if zeros != 0 or type_code != 0x08 or not 1 <= ndim <= 3 or len(head) < 4 + 4 * ndim:
        return None
    return struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])


def _size_problem(shape, size):
    if shape[0] == 0:
        return f"holds no items (its header promises shape {tuple(shape)})"
    expected = 4 + 4 * len(shape) + int(np.prod(shape))
    if size != expected:
        return f"holds {size} bytes where its header (shape {tuple(shape)}) promises {expected}"
    return None


def idx_problem(path):
    """What is wrong with an uncompressed idx file, judged by its header and size alone.

    :param str path: an extracted idx file, e.g. ``.../MNIST/raw/train-images-idx3-ubyte``.
    :returns: ``None`` if the file is whole and not empty, else a phrase such as
        ``"holds 1000 bytes where its header (shape (60000, 28, 28)) promises 47040016"``.
    :rtype: str or None
    """
    with open(path, "rb") as f:
        head = f.read(16)
    shape = _shape(head)
    if shape is None:
        return "does not start with the header of an idx file of unsigned bytes"
    return _size_problem(shape, os.path.getsize(path))


def read_idx(path):
    """Read an idx file of unsigned bytes (MNIST's format), gzip'd if its name ends in ``.gz``.

    :rtype: numpy.ndarray of uint8
    :raises DataError: naming the file, if it is unreadable, truncated or not an idx file.
    """
    raw = read_bytes(path)
    if path.endswith(".gz"):
        raw = unzip(raw, path)
    shape = _shape(raw[:16])
    if shape is None:
        raise DataError(f"{path} is not an idx file of unsigned bytes")
    problem = _size_problem(shape, len(raw))
    if problem:
        raise DataError(f"{path} {problem}; the file is truncated, empty or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(shape)).reshape(shape)
