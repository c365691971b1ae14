"""CIFAR-10 through torchvision, from a root that already holds ``cifar-10-batches-py``.

``load_dataset("cifar10", root=...)`` reads the Python version of CIFAR-10 (Krizhevsky 2009),
50000 train and 10000 test colour images ``(3, 32, 32)`` with labels, as torchvision's
``CIFAR10(root, download=False)`` finds it: the folder ``<root>/cifar-10-batches-py`` with
``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (the unpacked
``cifar-10-python.tar.gz``; torchvision checks each file's MD5). It never downloads: fetch and
unpack the archive into the data root first. Pixels come as float32 in [0, 1]
(``eight_bit=True`` gives the integers 0..255).
"""
import os

import numpy as np
import torch

from ..errors import DataError
from .dataset import ImageDataset
from .paths import existing_data_root

__all__ = ["CIFAR_FOLDER", "load_cifar10"]

CIFAR_FOLDER = "cifar-10-batches-py"


def _images(array):
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2))).to(torch.float32).div_(255.0)


def load_cifar10(root=None):
    """CIFAR-10's train and test splits from ``<root>/cifar-10-batches-py`` (see the module).

    :raises DataError: if the folder is missing or torchvision rejects its files.
    """
    root = existing_data_root(root)
    folder = os.path.join(root, CIFAR_FOLDER)
    if not os.path.isdir(folder):
        raise DataError(f"CIFAR-10 was not found: no folder {folder}; unpack cifar-10-python.tar.gz "
                        "(https://www.cs.toronto.edu/~kriz/cifar.html) into the data root (--data-root or "
                        "PYRO_LVM_DATA) so that it holds cifar-10-batches-py/")
    from torchvision.datasets import CIFAR10

    try:
        train, test = (CIFAR10(root, train=flag, download=False) for flag in (True, False))
    except (RuntimeError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"reading CIFAR-10 from {folder} failed ({reason}); unpack cifar-10-python.tar.gz "
                        "there again") from None
    return ImageDataset(name="cifar10", train=_images(train.data), test=_images(test.data),
                        train_labels=torch.as_tensor(train.targets).long(),
                        test_labels=torch.as_tensor(test.targets).long(), source=folder)
