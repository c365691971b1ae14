"""A small real MNIST subset shipped inside the package, for use with no data folder.

Examples, tests and first runs need data that is always there: no download, no
environment variable. ``assets/mnist_small.npz`` holds 5000 training and 1000 test
MNIST digits (uint8 images and labels, about 1 MB), enough to see a VAE learn
digits in minutes, far too few to compare log-likelihoods with published numbers.

Attribution: MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges. The subset is
class-balanced: 500 images of each digit from the MNIST training file and 100 of
each digit from the test file, drawn without replacement by
``numpy.random.default_rng(0)`` and kept in file order. Their indices in the
original files are stored in the asset as ``train_indices`` and ``test_indices``;
:mod:`pyro_lvm.data.make_embedded` regenerates the file from the originals.
"""
import os

import numpy as np
import torch

from .dataset import ImageDataset, from_uint8

__all__ = ["ASSET_PATH", "load_embedded"]

ASSET_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "mnist_small.npz")


def load_embedded():
    """Load the embedded MNIST subset as grayscale float32 tensors in [0, 1].

    :returns: 5000 train and 1000 test images of shape ``(1, 28, 28)``, with labels.
    :rtype: ImageDataset
    """
    with np.load(ASSET_PATH, allow_pickle=False) as asset:
        arrays = {key: torch.from_numpy(asset[key]) for key in asset.files}
    return ImageDataset(
        name="embedded",
        train=from_uint8(arrays["train_images"]), test=from_uint8(arrays["test_images"]),
        train_labels=arrays["train_labels"].long(), test_labels=arrays["test_labels"].long(),
        source="embedded",
    )
