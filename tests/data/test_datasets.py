"""Data sets: the embedded default, real MNIST from a read-only folder, binarization.

Tests that need the real files find them through ``PYRO_LVM_DATA`` (CI sets it to
``../shared/data``), else at ``<repo>/../shared/data``, else they are skipped.
Every test points ``PYRO_LVM_CACHE`` at a temporary folder, so nothing outside
``tmp_path`` is ever written.
"""
import gzip
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_lvm.data import (
    EmbeddedDataWarning,
    ImageDataset,
    cache_dir,
    data_root,
    load_dataset,
)
from pyro_lvm.data.binarized import read_amat
from pyro_lvm.data.embedded import ASSET_PATH
from pyro_lvm.data.make_embedded import make_subset
from pyro_lvm.errors import DataError

# From /work/shared/data/SOURCES.md.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---------------------------------------------------------------- paths


def test_data_root_precedence(no_data_env, monkeypatch, tmp_path):
    assert data_root() == cache_dir() == str(no_data_env)
    assert no_data_env.is_dir()  # cache_dir creates it
    monkeypatch.setenv("PYRO_LVM_DATA", str(tmp_path / "from_env"))
    assert data_root() == str(tmp_path / "from_env")
    assert data_root(tmp_path / "explicit") == str(tmp_path / "explicit")


def test_cache_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("PYRO_LVM_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == str(tmp_path / ".cache" / "pyro_lvm")
    assert (tmp_path / ".cache" / "pyro_lvm").is_dir()


# ---------------------------------------------------------------- embedded default


def test_embedded_default(no_data_env):
    data = load_dataset("embedded")
    assert isinstance(data, ImageDataset)
    assert (data.name, data.source, data.binarize, data.is_binary) == ("embedded", "embedded", None, False)
    assert data.input_shape == (1, 28, 28)
    assert data.train.shape == (5000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert data.train.dtype == data.test.dtype == torch.float32
    assert data.valid is None
    for images in (data.train, data.test):
        assert images.min() == 0 and images.max() == 1
        # Values are k / 255 for integers k: the uint8 pixels were scaled, not resampled.
        levels = images * 255
        assert torch.equal(levels, levels.round())
    assert torch.bincount(data.train_labels).tolist() == [500] * 10
    assert torch.bincount(data.test_labels).tolist() == [100] * 10
    assert not no_data_env.exists() or list(no_data_env.iterdir()) == []  # nothing written


def test_embedded_asset_is_small():
    assert os.path.getsize(ASSET_PATH) < 1.5e6


def test_auto_falls_back_to_embedded(no_data_env):
    with pytest.warns(EmbeddedDataWarning) as record:
        data = load_dataset("auto")
    message = str(record[0].message)
    assert "embedded default" in message and "PYRO_LVM_DATA" in message and "--data-root" in message
    assert data.name == "embedded" and data.train.shape == (5000, 1, 28, 28)


def test_unknown_name_and_mode(no_data_env):
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="binarize must be one of"):
        load_dataset("embedded", binarize="threshold")


# ---------------------------------------------------------------- binarization


def test_static_binarization_is_a_seeded_bernoulli_draw(no_data_env):
    gray = load_dataset("embedded")
    static = load_dataset("embedded", binarize="static", seed=3)
    assert static.binarize == "static" and static.is_binary
    # The documented contract: one generator seeded by `seed`, spent on test then train.
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(static.test, torch.bernoulli(gray.test, generator=generator))
    assert torch.equal(static.train, torch.bernoulli(gray.train, generator=generator))
    assert torch.equal(static.train, load_dataset("embedded", binarize="static", seed=3).train)
    assert not torch.equal(static.train, load_dataset("embedded", binarize="static", seed=4).train)
    # Its mean is that of the probabilities, within 4 standard errors: the sum of
    # independent Bernoulli(p) draws has variance sum p (1 - p).
    p = gray.train.double()
    z = (static.train.sum() - p.sum()) / (p * (1 - p)).sum().sqrt()
    assert abs(z) < 4


def test_dynamic_binarization_fixes_test_only(no_data_env):
    gray = load_dataset("embedded")
    dynamic = load_dataset("embedded", binarize="dynamic", seed=3)
    static = load_dataset("embedded", binarize="static", seed=3)
    assert dynamic.is_binary
    assert torch.equal(dynamic.train, gray.train)  # the loader draws per batch
    assert torch.equal(dynamic.test, static.test)  # evaluation data do not depend on the mode
    assert dynamic.train_loader(64).binarize and not static.train_loader(64).binarize
    assert not dynamic.test_loader(64).binarize and not dynamic.test_loader(64).shuffle


# ---------------------------------------------------------------- .amat parsing


def _write(path, text, compress=True):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


def test_read_amat_values(tmp_path):
    expected = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
    text = "0 1 1 0\n1 0 0 1\n1 1 1 1\n"
    np.testing.assert_array_equal(read_amat(_write(tmp_path / "a.amat.gz", text), 4), expected)
    np.testing.assert_array_equal(read_amat(_write(tmp_path / "a.amat", text, False), 4), expected)
    # A missing final newline is tolerated.
    np.testing.assert_array_equal(read_amat(_write(tmp_path / "b.amat.gz", text[:-1]), 4), expected)


@pytest.mark.parametrize("text, match", [
    ("0 1 1 0\n0 1 2 0\n", r"line 2, value 3 is b'2'"),
    ("0 1 1 0\n0 1 1\t0\n", r"line 2, after value 3: separator b'\\t'"),
    ("0 1 1 0\n0 1 1\n", r"line 2 does not hold 4 values"),
    ("0 1 1 0\r\n0 1 1 0\r\n", r"line 1 does not hold 4 values"),
    ("0,1,1,0\n", r"line 1, after value 1: separator b','"),
    ("", r"empty"),
])
def test_read_amat_rejects_malformed(tmp_path, text, match):
    path = _write(tmp_path / "bad.amat.gz", text)
    with pytest.raises(ValueError, match=match) as error:
        read_amat(path, 4)
    assert "bad.amat.gz" in str(error.value)


def test_binarized_mnist_errors(no_data_env, tmp_path):
    with pytest.raises(DataError, match="binarized MNIST split 'train' not found.*PYRO_LVM_DATA"):
        load_dataset("binarized-mnist", root=tmp_path)
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    _write(folder / "binarized_mnist_train.amat.gz", "0 1\n" * 3)
    with pytest.raises(ValueError, match="binarized_mnist_train.amat.gz: line 1 does not hold 784"):
        load_dataset("binarized-mnist", root=tmp_path)


def test_corrupt_mnist_archive_is_reported(no_data_env, tmp_path):
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (raw / name).write_bytes(gzip.compress(b"not mnist"))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz has md5"):
        load_dataset("mnist", root=tmp_path / "root")


# ---------------------------------------------------------------- real data


def _shared_root():
    from_env = os.environ.get("PYRO_LVM_DATA")
    if from_env:
        if not os.path.isdir(from_env):
            pytest.fail(f"PYRO_LVM_DATA={from_env} is not a folder")
        return Path(from_env).resolve()
    beside_repo = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not beside_repo.is_dir():
        pytest.skip(f"no real data: PYRO_LVM_DATA is unset and {beside_repo} does not exist")
    return beside_repo


def _snapshot(root):
    """Every file and folder under root with its size and modification time."""
    entries = {}
    for folder, _, files in os.walk(root):
        for path in [folder] + [os.path.join(folder, f) for f in files]:
            stat = os.stat(path)
            entries[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return entries


def _require(root, *relative):
    missing = [r for r in relative if not (root / r).is_dir()]
    if missing:
        pytest.skip(f"{root} lacks {', '.join(missing)}")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """MNIST, Fashion-MNIST and binarized MNIST loaded once from the shared root."""
    root = _shared_root()
    _require(root, "MNIST/raw", "FashionMNIST/raw", "binarized_mnist")
    cache = tmp_path_factory.mktemp("cache")
    before = _snapshot(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYRO_LVM_CACHE", str(cache))
        loaded = {name: load_dataset(name, root=root)
                  for name in ("mnist", "fashion-mnist", "binarized-mnist")}
    return dict(loaded, root=root, cache=cache, before=before, after=_snapshot(root))


def test_real_root_is_left_untouched(real):
    assert real["after"] == real["before"]
    for name in ("MNIST", "FashionMNIST"):
        assert (real["cache"] / name / "raw" / "train-images-idx3-ubyte").is_file()


def test_mnist_from_read_only_root(real):
    data = real["mnist"]
    assert data.train.shape == (60000, 1, 28, 28) and data.test.shape == (10000, 1, 28, 28)
    assert data.train.dtype == torch.float32
    assert str(real["root"]) in data.source
    assert torch.bincount(data.train_labels).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(data.test_labels).tolist() == MNIST_TEST_COUNTS
    # The well-known pixel statistics of the MNIST training set (mean 0.1307,
    # std 0.3081 after scaling to [0, 1]) catch a wrong scale or a wrong file.
    assert abs(data.train.mean().item() - 0.1307) < 1e-4
    assert abs(data.train.std().item() - 0.3081) < 1e-4
    assert data.train.min() == 0 and data.train.max() == 1


def test_fashion_mnist_from_read_only_root(real):
    data = real["fashion-mnist"]
    assert data.train.shape == (60000, 1, 28, 28) and data.test.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.train_labels).tolist() == [6000] * 10
    assert torch.bincount(data.test_labels).tolist() == [1000] * 10
    assert abs(data.train.mean().item() - 0.2860) < 1e-4
    assert abs(data.train.std().item() - 0.3530) < 1e-4


def test_extracted_root_is_read_in_place(real, monkeypatch, tmp_path):
    """A root that already holds extracted idx files is read there, with no copy."""
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "other_cache"))
    before = _snapshot(real["cache"])
    data = load_dataset("mnist", root=real["cache"])
    assert torch.equal(data.test, real["mnist"].test)
    assert torch.equal(data.train_labels, real["mnist"].train_labels)
    assert data.source == str(real["cache"] / "MNIST" / "raw")
    assert _snapshot(real["cache"]) == before
    assert not (tmp_path / "other_cache" / "MNIST").exists()


def test_auto_uses_real_mnist_when_present(real, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(real["cache"]))
    monkeypatch.setenv("PYRO_LVM_DATA", str(real["root"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmbeddedDataWarning)
        data = load_dataset("auto")
    assert data.name == "mnist" and len(data.train) == 60000


def test_binarized_mnist(real):
    data = real["binarized-mnist"]
    assert [len(data.train), len(data.valid), len(data.test)] == [50000, 10000, 10000]
    assert data.input_shape == (1, 28, 28) and data.train.dtype == torch.float32
    assert data.binarize == "static" and data.is_binary
    assert data.train_labels is None and data.test_labels is None
    for images in (data.train, data.valid, data.test):
        assert bool(((images == 0) | (images == 1)).all())
        assert 0.1 < images.mean() < 0.2  # both values occur, at MNIST's ink density


def test_binarized_mnist_test_is_a_draw_of_mnist_test(real):
    """SOURCES.md: the binarized test rows are one Bernoulli draw of the MNIST test images.

    Then, per pixel position j, the number of "on" draws S_j over the 10000 images has
    mean sum_i p_ij and variance v_j = sum_i p_ij (1 - p_ij), and sum_j (S_j - mean)^2 / v_j
    is close to chi-square with one degree of freedom per pixel with v_j > 0 (mean d,
    standard deviation sqrt(2 d)). A parser that transposed or shifted the images gives
    a statistic in the millions; pixels that are never inked (v_j = 0) must stay 0.
    """
    p = real["mnist"].test.double().flatten(1)
    on = real["binarized-mnist"].test.double().flatten(1).sum(0)
    variance = (p * (1 - p)).sum(0)
    inked = variance > 0
    assert torch.equal(on[~inked], p.sum(0)[~inked])
    chi2 = ((on - p.sum(0))[inked] ** 2 / variance[inked]).sum().item()
    dof = int(inked.sum())
    assert abs(chi2 - dof) < 5 * (2 * dof) ** 0.5


def test_binarized_mnist_ignores_binarize(real, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(real["cache"]))
    with pytest.warns(UserWarning, match="already binary"):
        data = load_dataset("binarized-mnist", root=real["root"], binarize="dynamic")
    assert data.binarize == "static" and not data.train_loader(100).binarize
    assert torch.equal(data.test, real["binarized-mnist"].test)


def test_embedded_asset_matches_mnist(real):
    """The asset is exactly what make_embedded.py builds from the original files."""
    with np.load(ASSET_PATH) as asset:
        shipped = {key: asset[key] for key in asset.files}
    rebuilt = make_subset(str(real["root"]))
    assert sorted(shipped) == sorted(rebuilt)
    for key in rebuilt:
        np.testing.assert_array_equal(shipped[key], rebuilt[key], err_msg=key)
    embedded = load_dataset("embedded")
    index = torch.from_numpy(shipped["test_indices"])
    assert torch.equal(embedded.test, real["mnist"].test[index])
    assert torch.equal(embedded.test_labels, real["mnist"].test_labels[index])


def _truncate(path, keep=1000):
    with open(path, "r+b") as f:
        f.truncate(keep)


def test_truncated_extraction_in_the_cache_is_redone(real, monkeypatch, tmp_path):
    """An idx file cut short in the cache (an interrupted extraction) is extracted again from the
    verified .gz, with a warning, instead of failing the same way on every run."""
    cache_raw = tmp_path / "cache" / "MNIST" / "raw"
    cache_raw.mkdir(parents=True)
    for path in (real["cache"] / "MNIST" / "raw").iterdir():
        if path.suffix == ".gz":
            os.symlink(path, cache_raw / path.name)
        else:
            (cache_raw / path.name).write_bytes(path.read_bytes())
    images = cache_raw / "train-images-idx3-ubyte"
    _truncate(images)
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    expected = (f"{images} holds 1000 bytes where its header (shape (60000, 28, 28)) promises "
                f"47040016 (an interrupted extraction?); extracting it again from "
                "train-images-idx3-ubyte.gz")
    for root in (real["root"], tmp_path / "cache"):  # from the shared root, and as its own root
        with pytest.warns(UserWarning, match=re.escape(expected)):
            data = load_dataset("mnist", root=root)
        assert images.stat().st_size == 47040016
        assert torch.equal(data.train, real["mnist"].train)
        _truncate(images)


def test_truncated_extraction_in_the_root_uses_the_archives_beside_it(real, monkeypatch, tmp_path):
    root_raw = tmp_path / "root" / "MNIST" / "raw"
    root_raw.mkdir(parents=True)
    for path in (real["root"] / "MNIST" / "raw").iterdir():
        os.symlink(path, root_raw / path.name)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (root_raw / stem).write_bytes((real["cache"] / "MNIST" / "raw" / stem).read_bytes())
    _truncate(root_raw / "t10k-labels-idx1-ubyte", keep=108)
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="t10k-labels-idx1-ubyte holds 108 bytes where its header "
                                         r"\(shape \(10000,\)\) promises 10008; extracting the .gz"):
        data = load_dataset("mnist", root=tmp_path / "root")
    assert torch.equal(data.test_labels, real["mnist"].test_labels)
    assert (root_raw / "t10k-labels-idx1-ubyte").stat().st_size == 108  # the root is never written
    assert data.source.endswith(f"(extracted into {tmp_path / 'cache' / 'MNIST' / 'raw'})")
