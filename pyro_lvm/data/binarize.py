"""Turn grayscale splits into the {0, 1} data a Bernoulli likelihood needs.

Each pixel intensity in [0, 1] is read as the probability that the pixel is on
and replaced by one Bernoulli draw, the stochastic binarization of Salakhutdinov
and Murray [1]. Thresholding at 0.5 would instead give data the model cannot
spread probability over, and makes likelihoods incomparable with published ones.

The fixed draws use one :class:`torch.Generator` seeded with ``seed``, spent in
the order test, valid, train. So the test split is the same {0, 1} tensor under
``"static"`` and ``"dynamic"`` for a given seed, and results of the two modes are
evaluated on identical data.

**References**

[1] R. Salakhutdinov, I. Murray, "On the Quantitative Analysis of Deep Belief
    Networks", ICML 2008.
"""
import dataclasses

import torch

from .checks import check_probabilities
from .dataset import BINARIZE_MODES

__all__ = ["binarize_dataset"]


def binarize_dataset(dataset, mode, seed=0):
    """Return a copy of a grayscale :class:`~pyro_lvm.data.dataset.ImageDataset` binarized by ``mode``.

    :param ImageDataset dataset: grayscale data (``dataset.binarize is None``).
    :param str mode: ``None``, ``"static"`` (every split drawn once) or
        ``"dynamic"`` (test and valid drawn once; train left grayscale for the
        loader to draw per batch).
    :param int seed: seeds the generator of the fixed draws.
    :rtype: ImageDataset
    :raises DataError: if a split has pixels outside [0, 1] or NaN, which no
        Bernoulli draw can take as probabilities.
    """
    if mode not in BINARIZE_MODES:
        raise ValueError(f"binarize must be one of {BINARIZE_MODES}, got {mode!r}")
    if dataset.binarize is not None:
        raise ValueError(f"data set {dataset.name!r} is already binarized ({dataset.binarize!r})")
    if mode is None:
        return dataset
    for split in ("train", "valid", "test"):
        x = getattr(dataset, split)
        if x is not None:
            check_probabilities(x, f"the {split} images of {dataset.name}")
    generator = torch.Generator().manual_seed(seed)

    def draw(x):
        return None if x is None else torch.bernoulli(x, generator=generator)

    test = draw(dataset.test)
    valid = draw(dataset.valid)
    train = draw(dataset.train) if mode == "static" else dataset.train
    return dataclasses.replace(dataset, train=train, valid=valid, test=test, binarize=mode)
