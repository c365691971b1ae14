"""Fixtures for the data tests: an empty environment, small fake MNIST folders, denied access.

Tests run as root in CI, where ``chmod 000`` does not stop a read; unreadable paths
are therefore simulated by making ``os.access`` deny them (:func:`deny_access`),
which is what the data layer consults before it reads.
"""
import gzip
import os
import struct

import numpy as np
import pytest

MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    """No data root configured; the cache is an empty temporary folder."""
    monkeypatch.delenv("PYRO_LVM_DATA", raising=False)
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _idx_bytes(array):
    """An idx file of unsigned bytes holding ``array``."""
    array = np.asarray(array, dtype=np.uint8)
    return (struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def _write_fake_mnist(root, n_train=6, n_test=4, compressed=False, folder="MNIST", seed=0):
    """Write four small idx files in torchvision's layout under ``root``.

    :returns: ``(raw folder, {stem: array})``.
    """
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = dict(zip(MNIST_STEMS, (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
                                    rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))))
    for stem, array in arrays.items():
        data = _idx_bytes(array)
        if compressed:
            (raw / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (raw / stem).write_bytes(data)
    return raw, arrays


@pytest.fixture
def fake_mnist():
    """``fake_mnist(root, n_train=6, n_test=4, compressed=False)`` writes four small idx files
    of random pixels and labels under ``root/MNIST/raw`` and returns ``(raw, {stem: array})``."""
    return _write_fake_mnist


@pytest.fixture
def idx_bytes():
    """``idx_bytes(array)``: the bytes of an idx file of unsigned bytes holding ``array``."""
    return _idx_bytes


@pytest.fixture
def deny_access(monkeypatch):
    """Call with paths to make ``os.access`` report them unreadable, as ``chmod 000`` would."""
    denied = set()
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if os.path.abspath(os.fspath(path)) in denied:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    return lambda *paths: denied.update(os.path.abspath(os.fspath(p)) for p in paths)
