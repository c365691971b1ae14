"""The VQ-VAE reads its images through the shared data layer, with no copy of its own.

``load_images`` returns the data layer's ``ImageDataset``; its loaders are what the
VQ-VAE training code iterates, the synthetic shapes live in ``pyro_lvm.data``, and
neither package imports Pyro.
"""

import numpy as np
import pytest
import torch

import pyro_lvm.vqvae.datasets as vq_datasets
from pyro_lvm.data import ImageDataset, TensorLoader, load_dataset, synthetic_images
from pyro_lvm.errors import DataError
from pyro_lvm.vqvae.datasets import load_images
from pyro_lvm.vqvae.evaluate import evaluate_reconstruction
from pyro_lvm.vqvae.model import VQVAE
from pyro_lvm.vqvae.train import encode_dataset, fit_vqvae


def test_one_data_layer():
    assert not hasattr(vq_datasets, "ImageTensors") and not hasattr(vq_datasets, "_Batches")
    assert vq_datasets.synthetic_images is synthetic_images


def test_synthetic_images_are_a_seeded_prefix():
    """Drawing fewer images gives the first ones of a larger draw, so subsets are consistent."""
    images = synthetic_images(40, seed=3)
    assert images.shape == (40, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(synthetic_images(10, seed=3), images[:10])
    assert not torch.equal(synthetic_images(10, seed=4), images[:10])
    assert images.min() == 0 and images.max() <= 1 and images.max() >= 0.4
    assert torch.equal(images * 255, (images * 255).round())  # 8-bit levels


def test_load_images_synthetic_is_an_image_dataset():
    data = load_images("synthetic", seed=2, train_subset=48, test_subset=16)
    assert isinstance(data, ImageDataset)
    assert (data.name, data.source, data.input_shape) == ("synthetic", "generated", (1, 28, 28))
    assert torch.equal(data.train, synthetic_images(48, seed=2))
    assert torch.equal(data.test, synthetic_images(16, seed=3))
    full = load_dataset("synthetic", seed=2)
    assert (len(full.train), len(full.test)) == (2000, 500)
    assert torch.equal(full.train[:48], data.train)


def test_load_images_subsets_images_and_labels(monkeypatch, tmp_path):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path))
    data = load_images("embedded", train_subset=100, test_subset=30)
    full = load_dataset("embedded")
    lengths = (len(data.train), len(data.train_labels), len(data.test), len(data.test_labels))
    assert lengths == (100, 100, 30, 30)
    assert torch.equal(data.train, full.train[:100]) and torch.equal(data.test_labels, full.test_labels[:30])
    assert len(load_images("embedded", train_subset=0).train) == 5000  # 0 keeps all, as before


def test_loaders_serve_the_training_code():
    data = load_images("synthetic", train_subset=70, test_subset=20)
    generator = torch.Generator().manual_seed(0)
    train = data.train_loader(32, generator=generator)
    assert isinstance(train, TensorLoader) and train.shuffle and len(train) == 3
    first, second = torch.cat(list(train)), torch.cat(list(train))
    replay = torch.Generator().manual_seed(0)  # one permutation per pass, from the generator
    assert torch.equal(first, data.train[torch.randperm(70, generator=replay)])
    assert torch.equal(second, data.train[torch.randperm(70, generator=replay)])
    assert not torch.equal(first, second)
    assert torch.equal(torch.cat(list(data.train_loader(32, shuffle=False))), data.train)
    assert torch.equal(torch.cat(list(data.test_loader(8))), data.test)
    model = VQVAE(num_codes=8, hidden_channels=8, residual_channels=4, embedding_dim=4)
    history = fit_vqvae(model, train, epochs=1, test_loader=data.test_loader(8), progress=False)
    assert history[0]["epoch"] == 1 and np.isfinite(history[0]["test_mse"])
    assert encode_dataset(model, data.test_loader(8))[0].shape[0] == 20
    assert evaluate_reconstruction(model, data.test_loader(8))[0]["test_mse"] == pytest.approx(
        history[0]["test_mse"])


def test_user_file_for_the_vqvae(tmp_path):
    np.savez(tmp_path / "mine.npz", train=np.zeros((12, 3, 8, 8), np.uint8),
             test=np.full((4, 3, 8, 8), 255, np.uint8))
    data = load_images(str(tmp_path / "mine.npz"), train_subset=10)
    assert data.input_shape == (3, 8, 8) and len(data.train) == 10 and bool((data.test == 1).all())
    with pytest.raises(DataError, match="does not exist"):
        load_images(str(tmp_path / "missing.npz"))
