"""Regenerate the embedded MNIST subset, ``pyro_lvm/data/assets/mnist_small.npz``.

The subset is class-balanced: for each digit 0-9, ``--train-per-class`` images of
the MNIST training file and ``--test-per-class`` images of the test file, chosen
without replacement by ``numpy.random.default_rng(--seed)`` (one generator, spent
on the train digits 0..9 and then the test digits 0..9) and kept in their
original file order. The chosen indices are stored beside the images, so anyone
can check the subset against the original files. The defaults (500 and 100 per
class, seed 0) give the shipped asset: 5000 train and 1000 test images.

Usage, with a folder in torchvision's layout (``<root>/MNIST/raw/*-ubyte.gz``)::

    python -m pyro_lvm.data.make_embedded --mnist-root /work/shared/data

MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges.
"""
import argparse
import os

import numpy as np

from pyro_lvm.data.embedded import ASSET_PATH
from pyro_lvm.data.idx import read_idx

__all__ = ["read_idx", "choose_balanced", "make_subset", "main"]

_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_split(raw_folder, split):
    def find(stem):
        for name in (stem + ".gz", stem):
            if os.path.isfile(os.path.join(raw_folder, name)):
                return os.path.join(raw_folder, name)
        raise FileNotFoundError(f"{stem}(.gz) not found in {raw_folder}")

    images, labels = (read_idx(find(stem)) for stem in _FILES[split])
    return images, labels


def choose_balanced(labels, per_class, rng):
    """Indices of ``per_class`` examples of each class, in increasing order.

    :param numpy.ndarray labels: class of each example, 0..9.
    :param int per_class: how many to take of each class.
    :param numpy.random.Generator rng: spent on classes 0..9 in turn.
    """
    chosen = [rng.choice(np.flatnonzero(labels == digit), size=per_class, replace=False)
              for digit in range(10)]
    return np.sort(np.concatenate(chosen))


def make_subset(mnist_root, train_per_class=500, test_per_class=100, seed=0):
    """Build the subset's arrays from the MNIST files under ``mnist_root``.

    :returns: dict with ``train_images``, ``train_labels``, ``train_indices`` and
        the same for ``test``; images uint8 ``(N, 28, 28)``, labels uint8, indices int64.
    """
    raw_folder = os.path.join(mnist_root, "MNIST", "raw")
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        images, labels = _read_split(raw_folder, split)
        index = choose_balanced(labels, per_class, rng)
        arrays[f"{split}_images"] = images[index]
        arrays[f"{split}_labels"] = labels[index]
        arrays[f"{split}_indices"] = index.astype(np.int64)
    return arrays


def main(args):
    arrays = make_subset(args.mnist_root, args.train_per_class, args.test_per_class, args.seed)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(arrays['train_images'])} train and "
          f"{len(arrays['test_images'])} test images, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-root", required=True,
                        help="folder holding MNIST/raw/*-ubyte.gz (torchvision's layout)")
    parser.add_argument("--out", default=ASSET_PATH, help="where to write the .npz")
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    main(parser.parse_args())
