"""Bad data inputs: each gives one DataError whose one-line message names the problem and the fix.

Never a traceback from deep inside a reader, and never a silent fall-back to other data.
Unreadable paths are simulated with the ``deny_access`` fixture (tests run as root);
one test checks real permissions where the tests do not run as root.
"""
import gzip
import os
import warnings

import pytest
import torch

from pyro_lvm.data import (EmbeddedDataWarning, ImageDataset, TensorLoader, binarize_dataset,
                           cache_dir, load_dataset)
from pyro_lvm.errors import DataError

ROOT_NAMES = ("mnist", "fashion-mnist", "binarized-mnist", "auto")
MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _error(name, **kwargs):
    """The DataError of ``load_dataset(name, **kwargs)``, checked to be one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmbeddedDataWarning)  # no silent fall-back
        with pytest.raises(DataError) as error:
            load_dataset(name, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- 1. a data root that does not exist


@pytest.mark.parametrize("name", ROOT_NAMES)
def test_missing_explicit_root(no_data_env, tmp_path, name):
    missing = tmp_path / "no_such_folder"
    message = _error(name, root=missing)
    assert f"data root {missing} (given as --data-root / root=) does not exist" in message
    assert "--data-root / PYRO_LVM_DATA" in message and "MNIST/raw/*.gz" in message
    assert not missing.exists()


@pytest.mark.parametrize("name", ROOT_NAMES)
def test_missing_root_from_environment(no_data_env, monkeypatch, tmp_path, name):
    monkeypatch.setenv("PYRO_LVM_DATA", str(tmp_path / "typo"))
    assert f"data root {tmp_path / 'typo'} (from PYRO_LVM_DATA) does not exist" in _error(name)


def test_root_that_is_a_file(no_data_env, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    assert f"data root {tmp_path / 'file'} (given as --data-root / root=) is a file" in _error(
        "mnist", root=tmp_path / "file")


# ---------------------------------------------------------------- 2. unreadable folders and files


def test_unreadable_root(no_data_env, tmp_path, deny_access, fake_mnist):
    root = tmp_path / "root"
    fake_mnist(root)
    deny_access(root)
    for name in ("mnist", "auto", "binarized-mnist"):
        assert f"cannot read the folder {root} (permission denied)" in _error(name, root=root)


@pytest.mark.parametrize("compressed", [False, True])
def test_unreadable_mnist_file_is_named_not_replaced_by_embedded(no_data_env, tmp_path, deny_access,
                                                                compressed, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root", compressed=compressed)
    unreadable = raw / ("t10k-labels-idx1-ubyte" + (".gz" if compressed else ""))
    deny_access(unreadable)
    for name in ("auto", "mnist"):
        message = _error(name, root=tmp_path / "root")
        assert f"cannot read {unreadable} (permission denied)" in message and "chmod" in message


def test_unreadable_mnist_folder(no_data_env, tmp_path, deny_access, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root")
    deny_access(raw)
    assert f"cannot read the folder {raw}" in _error("auto", root=tmp_path / "root")


def test_folder_where_an_archive_belongs(no_data_env, tmp_path, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root", compressed=True)
    (raw / "train-images-idx3-ubyte.gz").unlink()
    (raw / "train-images-idx3-ubyte.gz").mkdir()
    message = _error("auto", root=tmp_path / "root")
    assert f"{raw / 'train-images-idx3-ubyte.gz'} is a folder, where a data file is expected" in message


def test_incomplete_mnist_is_reported_not_replaced_by_embedded(no_data_env, tmp_path, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root", compressed=True)
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    for name in ("auto", "mnist"):
        message = _error(name, root=tmp_path / "root")
        assert f"{raw} holds only some of the MNIST files" in message
        assert "it lacks t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in message


def test_auto_warning_names_every_path_looked_at(no_data_env, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.warns(EmbeddedDataWarning) as record:
        data = load_dataset("auto", root=root)
    assert data.name == "embedded"
    message = str(record[0].message)
    assert f"looked in {root / 'MNIST' / 'raw'} and {no_data_env / 'MNIST' / 'raw'} for " in message
    assert ", ".join(stem + "[.gz]" for stem in MNIST_STEMS) in message


def test_unreadable_amat_is_named(no_data_env, tmp_path, deny_access):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    train = folder / "binarized_mnist_train.amat.gz"
    train.write_bytes(gzip.compress(b"0 1\n"))
    deny_access(train)
    assert f"cannot read {train} (permission denied)" in _error("binarized-mnist", root=tmp_path)
    train.unlink()
    train.mkdir()
    assert f"{train} is a folder, where a data file is expected" in _error("binarized-mnist", root=tmp_path)


def test_real_permissions(no_data_env, tmp_path, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root", compressed=True)
    (raw / "train-images-idx3-ubyte.gz").chmod(0)
    if os.access(raw / "train-images-idx3-ubyte.gz", os.R_OK):
        pytest.skip("this process reads files whatever their permissions (root)")
    try:
        assert "train-images-idx3-ubyte.gz (permission denied)" in _error("auto", root=tmp_path / "root")
    finally:
        (raw / "train-images-idx3-ubyte.gz").chmod(0o644)


# ---------------------------------------------------------------- 3. truncated files


def test_truncated_amat_gz(no_data_env, tmp_path):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    whole = gzip.compress(("0 " * 783 + "1\n").encode() * 50)
    train = folder / "binarized_mnist_train.amat.gz"
    train.write_bytes(whole[: len(whole) // 2])
    message = _error("binarized-mnist", root=tmp_path)
    assert message.startswith(f"{train} is truncated or corrupt")
    assert "replace it with a complete copy" in message


def test_truncated_extracted_idx_in_the_root_without_archives(no_data_env, tmp_path, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    message = _error("mnist", root=tmp_path / "root")
    assert f"{images} holds 1000 bytes where its header (shape (6, 28, 28)) promises 4720" in message
    assert "truncated" in message


def test_corrupt_idx_header(no_data_env, tmp_path, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root")
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")
    assert "does not start with the header of an idx file" in _error("mnist", root=tmp_path / "root")


# ---------------------------------------------------------------- 4. the cache


def test_cache_that_is_a_file(monkeypatch, tmp_path, fake_mnist):
    (tmp_path / "cache").write_text("a file")
    monkeypatch.delenv("PYRO_LVM_DATA", raising=False)
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    expected = f"the cache {tmp_path / 'cache'} is a file, not a folder; point PYRO_LVM_CACHE at"
    with pytest.raises(DataError, match="^" + expected):
        cache_dir()
    assert expected in _error("auto")
    fake_mnist(tmp_path / "root", compressed=True)
    assert expected in _error("mnist", root=tmp_path / "root")


# ---------------------------------------------------------------- 5. empty splits


def test_empty_split_of_a_dataset():
    images = torch.rand(3, 1, 4, 4)
    for train, test, split in ((images[:0], images, "train"), (images, images[:0], "test")):
        with pytest.raises(DataError, match=f"the {split} split of toy \\(from here\\) is empty"):
            ImageDataset("toy", train=train, test=test, source="here")


def test_malformed_splits_of_a_dataset():
    images = torch.rand(3, 1, 4, 4)
    with pytest.raises(DataError, match=r"differ in shape between splits: "
                                        r"train \(1, 4, 4\), test \(1, 5, 4\)"):
        ImageDataset("toy", train=images, test=torch.rand(2, 1, 5, 4))
    with pytest.raises(DataError, match=r"must be a tensor of images \(N, C, H, W\), got \(3, 16\)"):
        ImageDataset("toy", train=images.flatten(1), test=images)
    with pytest.raises(DataError, match="has 2 train labels for 3 train images"):
        ImageDataset("toy", train=images, test=images, train_labels=torch.zeros(2))


@pytest.mark.parametrize("n_train, n_test, stem", [(0, 4, "train-images-idx3-ubyte"),
                                                   (6, 0, "t10k-images-idx3-ubyte")])
def test_empty_mnist_split(no_data_env, tmp_path, n_train, n_test, stem, fake_mnist):
    raw, _ = fake_mnist(tmp_path / "root", n_train=n_train, n_test=n_test)
    message = _error("mnist", root=tmp_path / "root")
    assert f"{raw / stem} holds no items (its header promises shape (0, 28, 28))" in message


def test_empty_binarized_mnist(no_data_env, tmp_path):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    (folder / "binarized_mnist_train.amat.gz").write_bytes(gzip.compress(b""))
    assert "binarized_mnist_train.amat.gz: line 1 does not hold 784 values" in _error(
        "binarized-mnist", root=tmp_path)


# ---------------------------------------------------------------- 6. binarizing data outside [0, 1]


def _dataset(train, test=None):
    return ImageDataset("toy", train=train, test=torch.rand(2, 1, 2, 2) if test is None else test)


@pytest.mark.parametrize("mode", ["static", "dynamic"])
@pytest.mark.parametrize("values, expected", [
    ([0.0, 0.5, 255.0], "values in [0, 255] and 0 NaN"),
    ([-0.5, 0.5, 1.0], "values in [-0.5, 1] and 0 NaN"),
    ([0.2, float("nan"), float("nan")], "values in [0.2, 0.2] and 8 NaN"),  # 2 images of 4 pixels
])
def test_binarizing_bad_pixels(mode, values, expected):
    train = torch.tensor(values).reshape(3, 1, 1, 1).expand(3, 1, 2, 2) * 1
    with pytest.raises(DataError) as error:
        binarize_dataset(_dataset(train), mode)
    message = str(error.value)
    assert "binarization needs the train images of toy in [0, 1], but" in message
    assert expected in message and "divide by 255" in message and "binarize=None" in message


def test_bad_test_split_is_caught_too():
    with pytest.raises(DataError, match=r"the test images of toy in \[0, 1\].*values in \[2, 2\]"):
        binarize_dataset(_dataset(torch.rand(3, 1, 2, 2), 2 * torch.ones(2, 1, 2, 2)), "dynamic")


def test_loader_that_binarizes_bad_pixels():
    with pytest.raises(DataError, match=r"data to binarize per batch.*values in \[0, 1.5\] and 0 NaN"):
        TensorLoader(torch.tensor([[0.0], [1.5]]), 2, binarize=True)
    with pytest.raises(DataError, match="and 1 NaN"):
        TensorLoader(torch.tensor([[0.0], [float("nan")]]), 2, binarize=True)
    TensorLoader(torch.tensor([[0.0], [1.5]]), 2)  # grayscale batches need no [0, 1]


def test_unknown_name_is_a_data_error(no_data_env):
    message = _error("cifar")
    assert "unknown data set 'cifar'" in message and ".npy, .npz, .pt" in message


def test_idx_bytes_helper_round_trips(tmp_path, idx_bytes):
    from pyro_lvm.data.idx import read_idx

    (tmp_path / "x").write_bytes(idx_bytes([[1, 2], [3, 4]]))
    assert read_idx(str(tmp_path / "x")).tolist() == [[1, 2], [3, 4]]


def test_cache_that_cannot_be_written(no_data_env, tmp_path, monkeypatch, fake_mnist):
    """A read-only or full cache is named, instead of an OSError from deep inside a copy."""
    import shutil

    from pyro_lvm.data import mnist

    raw, _ = fake_mnist(tmp_path / "root", compressed=True)
    monkeypatch.setattr(mnist, "_torchvision_class", lambda name: type(
        "Published", (), {"resources": [(f.name, mnist._md5(str(f))) for f in sorted(raw.iterdir())]}))

    def read_only(source, target):
        raise PermissionError(13, "Permission denied", target)

    monkeypatch.setattr(shutil, "copyfile", read_only)
    message = _error("mnist", root=tmp_path / "root")
    assert f"cannot write the cache {no_data_env / 'MNIST' / 'raw'} (Permission denied)" in message
    assert "PYRO_LVM_CACHE" in message
