"""The container every data set is loaded into: whole splits as float tensors.

Every data set, built in or read from a user's file, ends up in one
:class:`ImageDataset`, and its constructor checks the splits (non-empty, one image
shape, one label per image), so no loader can hand an empty or ragged data set to
training.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch

from .checks import check_splits
from .loader import TensorLoader

__all__ = ["BINARIZE_MODES", "ImageDataset", "from_uint8"]

#: Values of ``binarize``: ``None`` keeps grayscale in [0, 1]; ``"static"`` means
#: every split holds one fixed {0, 1} draw; ``"dynamic"`` means the train split
#: holds probabilities and its loader draws fresh {0, 1} pixels for every batch.
BINARIZE_MODES = (None, "static", "dynamic")


def from_uint8(images):
    """Map uint8 images ``(N, H, W)`` to float32 ``(N, 1, H, W)`` in [0, 1]."""
    return images.unsqueeze(1).to(torch.float32).div_(255.0)


@dataclass
class ImageDataset:
    """Train, test and (optionally) validation images, held whole in memory.

    Images are float32 tensors of shape ``(N, C, H, W)`` (``(N, 1, 28, 28)`` for the
    MNIST family), every split of one shape ``(C, H, W)``. With ``binarize=None``
    they are grayscale in [0, 1]; with ``"static"`` every split is in {0, 1}; with
    ``"dynamic"`` the train split is grayscale (Bernoulli means) and the test and
    valid splits are one fixed {0, 1} draw, so evaluation is deterministic.

    :ivar str name: the data set, e.g. ``"mnist"`` or ``"embedded"``.
    :ivar torch.Tensor train: training images.
    :ivar torch.Tensor test: test images.
    :ivar torch.Tensor valid: validation images, or ``None``.
    :ivar torch.Tensor train_labels: int64 class labels, or ``None``.
    :ivar torch.Tensor test_labels: int64 class labels, or ``None``.
    :ivar str binarize: one of :data:`BINARIZE_MODES`.
    :ivar str source: where the data came from (a folder, a file, ``"embedded"``
        or ``"generated"``).
    :raises DataError: if a split is empty, not 4-dimensional, or shaped unlike the
        others, or if labels do not match their images in number.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    valid: Optional[torch.Tensor] = None
    train_labels: Optional[torch.Tensor] = None
    test_labels: Optional[torch.Tensor] = None
    binarize: Optional[str] = None
    source: str = ""

    def __post_init__(self):
        if self.binarize not in BINARIZE_MODES:
            raise ValueError(f"binarize must be one of {BINARIZE_MODES}, got {self.binarize!r}")
        check_splits(self.name, self.source,
                     {"train": self.train, "valid": self.valid, "test": self.test},
                     {"train": self.train_labels, "test": self.test_labels})

    @property
    def input_shape(self):
        """Shape of one image, e.g. ``(1, 28, 28)``."""
        return tuple(self.train.shape[1:])

    def subset(self, train=None, test=None):
        """A copy holding at most the first ``train`` training and ``test`` test images.

        :param int train: how many training images (and labels) to keep; ``None`` keeps all.
        :param int test: the same for the test split. The valid split is kept whole.
        :rtype: ImageDataset
        """
        def head(x, n):
            return x if x is None or n is None else x[:n]

        return dataclasses.replace(
            self, train=head(self.train, train), train_labels=head(self.train_labels, train),
            test=head(self.test, test), test_labels=head(self.test_labels, test))

    @property
    def is_binary(self):
        """Whether the model sees {0, 1} data (static or dynamic binarization)."""
        return self.binarize is not None

    def train_loader(self, batch_size, generator=None, shuffle=True, drop_last=False,
                     with_labels=False):
        """Batches of the train split, freshly binarized per batch when ``binarize="dynamic"``.

        :param int batch_size: examples per batch.
        :param torch.Generator generator: the source of all randomness (order and draws).
        :param bool shuffle: a new random order each epoch.
        :param bool drop_last: skip the final incomplete batch.
        :param bool with_labels: yield ``(x, y)`` pairs.
        :rtype: TensorLoader
        """
        return TensorLoader(self.train, batch_size, shuffle=shuffle,
                            binarize=self.binarize == "dynamic", generator=generator,
                            drop_last=drop_last, labels=self._labels(self.train_labels, with_labels))

    def test_loader(self, batch_size, with_labels=False):
        """Batches of the test split, in order; already binarized once if binarizing.

        :rtype: TensorLoader
        """
        return TensorLoader(self.test, batch_size, shuffle=False,
                            labels=self._labels(self.test_labels, with_labels))

    def valid_loader(self, batch_size):
        """Batches of the validation split, in order.

        :raises ValueError: if the data set has no validation split.
        :rtype: TensorLoader
        """
        if self.valid is None:
            raise ValueError(f"data set {self.name!r} has no validation split")
        return TensorLoader(self.valid, batch_size, shuffle=False)

    def _labels(self, labels, wanted):
        if wanted and labels is None:
            raise ValueError(f"data set {self.name!r} has no labels")
        return labels if wanted else None

    def __repr__(self):
        splits = ", ".join(f"{split}={len(x)}" for split, x in
                           (("train", self.train), ("valid", self.valid), ("test", self.test))
                           if x is not None)
        return (f"ImageDataset(name={self.name!r}, {splits}, input_shape={self.input_shape}, "
                f"binarize={self.binarize!r}, source={self.source!r})")
