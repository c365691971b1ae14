"""A user's own images from .npy, .npz and .pt files, through ``load_dataset(path)``.

What is read must equal what was saved (uint8 scaled by exactly 1/255), the held-out
split of a .npy file is its documented tail, and every malformed or unsafe file gives
one DataError naming the file and the fix; a pickle that would run code never runs.
"""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_lvm.data import EmbeddedDataWarning, load_dataset
from pyro_lvm.errors import DataError


def _pixels(*shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _error(path, **kwargs):
    """The one-line DataError of ``load_dataset(path)``, checked to name the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmbeddedDataWarning)
        with pytest.raises(DataError) as error:
            load_dataset(str(path), **kwargs)
    message = str(error.value)
    assert "\n" not in message and (str(path) in message or Path(path).stem in message)
    return message


def test_npz_with_labels(tmp_path):
    train, test = _pixels(20, 5, 6), _pixels(7, 5, 6, seed=1)
    path = tmp_path / "digits.npz"
    np.savez(path, train=train, test=test, train_labels=np.arange(20) % 3,
             test_labels=np.arange(7, dtype=np.uint8))
    data = load_dataset(str(path))
    assert (data.name, data.source, data.binarize) == ("digits", str(path), None)
    assert data.train.shape == (20, 1, 5, 6) and data.test.shape == (7, 1, 5, 6)
    assert data.train.dtype == torch.float32
    assert torch.equal(data.train[:, 0] * 255, torch.from_numpy(train).float())
    assert torch.equal(data.test[:, 0] * 255, torch.from_numpy(test).float())
    assert data.train_labels.dtype == torch.int64 and data.train_labels.tolist() == [i % 3 for i in range(20)]
    assert data.test_labels.tolist() == list(range(7))
    assert data.train_loader(8, with_labels=True) is not None


def test_npz_of_float_channels_is_kept(tmp_path):
    train = np.random.default_rng(0).random((6, 3, 4, 4))
    path = tmp_path / "colour.npz"
    np.savez(path, train=train, test=train[:2])
    data = load_dataset(path)  # an os.PathLike works too
    assert data.input_shape == (3, 4, 4) and data.train_labels is None
    assert torch.equal(data.train, torch.from_numpy(train).float())


@pytest.mark.parametrize("n, n_test", [(25, 2), (9, 1), (100, 10)])
def test_npy_holds_out_its_last_tenth(tmp_path, n, n_test):
    images = _pixels(n, 4, 4)
    path = tmp_path / "mine.npy"
    np.save(path, images)
    data = load_dataset(str(path))
    assert data.name == "mine" and len(data.train) == n - n_test and len(data.test) == n_test
    assert torch.equal(data.test[:, 0] * 255, torch.from_numpy(images[n - n_test:]).float())
    assert data.source == (f"{path} (the last {n_test} of {n} images held out as the test split)")


@pytest.mark.parametrize("n", [0, 1])
def test_npy_too_small_to_split(tmp_path, n):
    np.save(tmp_path / "few.npy", _pixels(n, 4, 4))
    assert f"few.npy holds {n} images, too few to hold out a test split" in _error(tmp_path / "few.npy")


def test_pt_dict_of_tensors(tmp_path):
    train = torch.rand(10, 2, 3, 3, dtype=torch.float64)
    path = tmp_path / "t.pt"
    torch.save({"train": train, "test": train[:3], "test_labels": torch.tensor([1, 2, 3])}, path)
    data = load_dataset(str(path))
    assert torch.equal(data.train, train.float()) and data.test_labels.tolist() == [1, 2, 3]


class _RunsCode:
    """Pickles as a call to ``os.mkdir(marker)``: loading it unsafely would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_pt_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"train": _RunsCode(str(marker)), "test": torch.rand(2, 1, 2, 2)}, path)
    message = _error(path)
    assert "refusing to load" in message and "could run code" in message and "weights_only=False" not in message
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    (torch.rand(4, 1, 2, 2), "holds a Tensor, not a dict of tensors"),
    ({"train": [[0.5]], "test": torch.rand(2, 1, 2, 2)}, "train in .* is a list, not an array or tensor"),
])
def test_pt_of_the_wrong_kind(tmp_path, content, match):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(DataError, match=match):
        load_dataset(str(tmp_path / "x.pt"))


def test_object_arrays_are_refused(tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    assert "allow_pickle=False" in _error(tmp_path / "objects.npy")
    np.savez(tmp_path / "objects.npz", train=objects, test=objects)
    assert "allow_pickle=False" in _error(tmp_path / "objects.npz")


@pytest.mark.parametrize("arrays, match", [
    ({"train": _pixels(5, 784), "test": _pixels(2, 784)},
     r"shape \(5, 784\); expected images \(N, H, W\) or \(N, C, H, W\)"),
    ({"train": _pixels(5, 6, 6, 1), "test": _pixels(2, 6, 6, 1)}, r"looks like channels last .* transpose"),
    ({"train": _pixels(5, 6, 6).astype(np.int64), "test": _pixels(2, 6, 6)},
     "has dtype torch.int64; expected uint8"),
    ({"train": np.full((5, 6, 6), np.nan), "test": _pixels(2, 6, 6)}, "has 180 NaN and 0 infinite values"),
    ({"train": _pixels(5, 6, 6), "test": _pixels(2, 7, 6)},
     r"differ in shape between splits: train \(1, 6, 6\), test \(1, 7, 6\)"),
    ({"train": _pixels(5, 6, 6), "test": _pixels(0, 6, 6)}, "the test split of x .* is empty"),
    ({"train": _pixels(5, 6, 6)}, r"holds the keys \['train'\]; expected train and test"),
    ({"train": _pixels(5, 6, 6), "test": _pixels(2, 6, 6), "valid": _pixels(2, 6, 6)},
     r"holds the keys \['test', 'train', 'valid'\]"),
    ({"train": _pixels(5, 6, 6), "test": _pixels(2, 6, 6), "train_labels": np.arange(4)},
     "has 4 train labels for 5 train images"),
    ({"train": _pixels(5, 6, 6), "test": _pixels(2, 6, 6), "test_labels": np.ones(2)},
     "test_labels in .* must be one integer class per image, got dtype torch.float64"),
])
def test_malformed_npz(tmp_path, arrays, match):
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load_dataset(str(tmp_path / "x.npz"))


def test_missing_and_corrupt_files(tmp_path):
    assert f"data file {tmp_path / 'nowhere.npz'} does not exist" in _error(tmp_path / "nowhere.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    assert "cannot load" in _error(tmp_path / "junk.npz")
    (tmp_path / "junk.pt").write_bytes(b"")
    assert "cannot load" in _error(tmp_path / "junk.pt")
    (tmp_path / "folder.npy").mkdir()
    assert "is a folder, where a data file is expected" in _error(tmp_path / "folder.npy")


def test_user_files_are_binarized_like_built_in_sets(tmp_path):
    np.savez(tmp_path / "x.npz", train=_pixels(50, 4, 4), test=_pixels(10, 4, 4, seed=1))
    static = load_dataset(str(tmp_path / "x.npz"), binarize="static", seed=2)
    assert static.binarize == "static" and bool(((static.train == 0) | (static.train == 1)).all())
    np.savez(tmp_path / "raw255.npz", train=_pixels(5, 4, 4).astype(np.float32), test=np.zeros((1, 4, 4)))
    message = _error(tmp_path / "raw255.npz", binarize="dynamic")
    assert "binarization needs the train images of raw255 in [0, 1]" in message and "divide by 255" in message
