"""8-bit images as integers: pixel values ``0..255`` for discrete likelihoods and dequantization.

Every loader returns intensities in [0, 1] (uint8 divided by 255). A discrete likelihood scores
the integer pixel values themselves, so :func:`to_eight_bit` maps a data set back to the exact
integers ``round(255 x)`` (held in float32, which represents them exactly) after checking that
every pixel is one of the 256 levels ``k / 255``: data that are not 8-bit (already binarized,
generated floats) raise rather than being rounded silently. ``load_dataset(..., eight_bit=True)``
calls it; :func:`check_eight_bit` is what the 8-bit likelihoods validate a batch with.
"""
import dataclasses

import torch

from ..errors import DataError

__all__ = ["NUM_LEVELS", "check_eight_bit", "to_eight_bit"]

#: values of an 8-bit pixel
NUM_LEVELS = 256


def check_eight_bit(x, what="data"):
    """Raise unless every value of ``x`` is an integer in ``0..255``.

    :raises DataError: naming the range seen and the fix.
    :returns: ``x``, unchanged.
    """
    x = torch.as_tensor(x)
    bad = (x != torch.round(x)) | (x < 0) | (x > NUM_LEVELS - 1)
    if bool(bad.any()):
        raise DataError(
            f"an 8-bit likelihood needs {what} holding integer pixel values 0..255, but they lie in "
            f"[{x.min().item():.4g}, {x.max().item():.4g}] (e.g. {x[bad].flatten()[0].item():.4g}); load the "
            "images with load_dataset(..., eight_bit=True) (the vae run does so for discrete likelihoods "
            "and --dequantize)")
    return x


def _levels(x, what):
    if x is None:
        return None
    levels = torch.round(x * (NUM_LEVELS - 1))
    if not torch.allclose(levels / (NUM_LEVELS - 1), x, rtol=0, atol=1e-6):
        raise DataError(f"{what} are not 8-bit images (pixels are not all multiples of 1/255 in [0, 1]); "
                        "discrete likelihoods and dequantization need uint8 images, e.g. a .npy of dtype uint8")
    return levels.clamp_(0, NUM_LEVELS - 1)


def to_eight_bit(dataset):
    """The data set with every split as integer pixel values ``0..255`` (float32).

    :param ~pyro_lvm.data.dataset.ImageDataset dataset: grayscale or colour images in [0, 1],
        not binarized.
    :rtype: ~pyro_lvm.data.dataset.ImageDataset
    :raises DataError: for a binarized data set or pixels that are not multiples of 1/255.
    """
    if dataset.binarize is not None:
        raise DataError(f"{dataset.name} is binarized ({dataset.binarize}); 8-bit likelihoods need the "
                        "grayscale images: load it with binarize=None (drop --binarize)")
    what = f"the images of {dataset.name}"
    return dataclasses.replace(dataset, train=_levels(dataset.train, what), test=_levels(dataset.test, what),
                               valid=_levels(dataset.valid, what),
                               source=f"{dataset.source} (as 8-bit integers 0..255)")
