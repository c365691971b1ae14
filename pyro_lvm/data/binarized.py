"""The fixed binarized MNIST of Larochelle and Murray [1].

One stochastic binarization of MNIST, drawn once and shared, split into 50000
train, 10000 valid and 10000 test images without labels. Log-likelihoods in the
VAE literature are often reported on it, so models compared on it see exactly the
same bits.

The files are ``binarized_mnist_{train,valid,test}.amat`` (optionally gzip'd)
under ``<data root>/binarized_mnist/``: one image per line, 784 values each ``0``
or ``1``, separated by single spaces. Because every value is one character
followed by one separator, a file is parsed by viewing its bytes as an array and
taking every other byte, after checking that the separators sit where they must.
This reads the 78 MB train file in well under a second, where a text parser
takes tens of seconds.

**References**

[1] H. Larochelle, I. Murray, "The Neural Autoregressive Distribution
    Estimator", AISTATS 2011.
"""
import os

import numpy as np
import torch

from ..errors import DataError
from .dataset import ImageDataset
from .idx import unzip
from .paths import existing_data_root, read_bytes

__all__ = ["SPLIT_SIZES", "read_amat", "load_binarized_mnist"]

SPLIT_SIZES = {"train": 50000, "valid": 10000, "test": 10000}
_FOLDER = "binarized_mnist"
_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_ZERO, _ONE, _SPACE, _NEWLINE = (ord(c) for c in "01 \n")


def _read_bytes(path):
    raw = read_bytes(path)
    return unzip(raw, path) if path.endswith(".gz") else raw


def _first_bad(mask):
    return int(np.flatnonzero(mask)[0])


def read_amat(path, row_length=784):
    """Parse a binary ``.amat`` file (``0``/``1`` values, single-space separated).

    :param str path: the file, gzip'd if its name ends in ``.gz``.
    :param int row_length: values per line (784 for 28x28 images).
    :returns: an array of shape ``(rows, row_length)`` with values 0 and 1.
    :rtype: numpy.ndarray of uint8
    :raises DataError: naming the file, if it cannot be read or its gzip stream is
        truncated or corrupt; and naming the line and column of the first malformed
        value, if any line has the wrong length, a value other than ``0``/``1``, or a
        separator other than one space (one newline at the end of a line).
    """
    buffer = np.frombuffer(_read_bytes(path), dtype=np.uint8)
    if buffer.size and buffer[-1] != _NEWLINE:
        buffer = np.append(buffer, np.uint8(_NEWLINE))
    line_bytes = 2 * row_length
    newlines = np.flatnonzero(buffer == _NEWLINE)
    bad_line = np.flatnonzero(newlines != np.arange(1, newlines.size + 1) * line_bytes - 1)
    if buffer.size == 0 or bad_line.size:
        line = int(bad_line[0]) if buffer.size else 0
        raise DataError(f"{path}: line {line + 1} does not hold {row_length} values separated "
                        "by single spaces (or the file is empty); expected a binary .amat file")
    table = buffer.reshape(-1, line_bytes)
    values, separators = table[:, 0::2], table[:, 1::2]
    expected = np.full(row_length, _SPACE, dtype=np.uint8)
    expected[-1] = _NEWLINE
    wrong_separator = separators != expected
    if wrong_separator.any():
        row, col = divmod(_first_bad(wrong_separator), row_length)
        raise DataError(f"{path}: line {row + 1}, after value {col + 1}: separator "
                        f"{bytes([separators[row, col]])!r} where one space was expected")
    not_binary = (values != _ZERO) & (values != _ONE)
    if not_binary.any():
        row, col = divmod(_first_bad(not_binary), row_length)
        raise DataError(f"{path}: line {row + 1}, value {col + 1} is "
                        f"{bytes([values[row, col]])!r}; a binary .amat file holds only 0 and 1")
    return values - _ZERO


def _split_path(folder, split):
    stem = os.path.join(folder, f"binarized_mnist_{split}.amat")
    for candidate in (stem + ".gz", stem):
        if os.path.lexists(candidate):
            return candidate
    raise DataError(
        f"binarized MNIST split {split!r} not found: expected {stem}.gz (or {stem}). Point "
        f"PYRO_LVM_DATA (or --data-root) at a folder holding {_FOLDER}/binarized_mnist_"
        f"{{train,valid,test}}.amat[.gz]; the original files are at {_URL}"
    )


def _load_split(folder, split):
    values = read_amat(_split_path(folder, split))
    if len(values) != SPLIT_SIZES[split]:
        raise DataError(f"binarized MNIST {split} split has {len(values)} images, expected "
                        f"{SPLIT_SIZES[split]}; replace the file with the original from {_URL}")
    return torch.from_numpy(values).to(torch.float32).reshape(-1, 1, 28, 28)


def load_binarized_mnist(root=None):
    """Load the fixed binarized MNIST as float32 {0, 1} tensors of shape ``(N, 1, 28, 28)``.

    :param str root: the data root; see :func:`~pyro_lvm.data.paths.data_root`.
    :rtype: ImageDataset
    :raises DataError: if the data root does not exist, a split is missing,
        unreadable, truncated or malformed.
    """
    folder = os.path.join(existing_data_root(root), _FOLDER)
    splits = {split: _load_split(folder, split) for split in SPLIT_SIZES}
    return ImageDataset(name="binarized-mnist", binarize="static", source=folder, **splits)
