"""Early, explicit checks on data, so a bad input fails with a fix instead of a NaN loss.

A Bernoulli likelihood evaluated on grayscale pixels does not raise: PyTorch's
``Bernoulli.log_prob`` happily returns a number for ``x = 0.35`` when argument
validation is off, and the model then trains on an objective that is not a
log-likelihood. :func:`check_binary` catches that before training starts, and
:func:`check_probabilities` catches pixels that cannot be binarized (outside
[0, 1], or NaN) before a Bernoulli draw fails on them in the middle of an epoch.
Every check raises a :class:`~pyro_lvm.errors.DataError`.
"""
import torch

from ..errors import DataError

__all__ = ["check_binary", "check_finite", "check_probabilities", "check_splits"]


def check_finite(x, what="data"):
    """Raise if ``x`` holds NaN or infinite values.

    :param torch.Tensor x: the tensor to check.
    :param str what: how to name ``x`` in the message.
    :raises DataError: naming how many values are NaN or infinite.
    :returns: ``x``, unchanged.
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        return x
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise DataError(
            f"{what} must be finite, but it has {n_nan} NaN and {n_inf} infinite values "
            f"out of {x.numel()}; check the files it was read from, or the transform applied to it"
        )
    return x


def check_probabilities(x, what="data"):
    """Raise unless every value of ``x`` lies in [0, 1], as pixels to be binarized must.

    :param torch.Tensor x: grayscale pixels, read as the probability that a pixel is on.
    :param str what: how to name ``x`` in the message.
    :raises DataError: with the observed range, the number of NaN values and the fix.
    :returns: ``x``, unchanged.
    """
    x = torch.as_tensor(x)
    nan = torch.isnan(x)
    n_nan = int(nan.sum())
    values = x[~nan] if n_nan else x
    low, high = (values.min().item(), values.max().item()) if values.numel() else (0, 0)
    if n_nan or low < 0 or high > 1:
        raise DataError(
            f"binarization needs {what} in [0, 1], but {what} has values in [{low:.4g}, {high:.4g}] "
            f"and {n_nan} NaN; scale the pixels to [0, 1] (uint8 images: divide by 255) and "
            "remove NaN, or keep them grayscale (binarize=None) with a Gaussian likelihood"
        )
    return x


def check_binary(x, what="data"):
    """Raise unless every value of ``x`` is exactly 0 or 1.

    :param torch.Tensor x: the tensor to check, e.g. a batch about to be scored
        by a Bernoulli likelihood.
    :param str what: how to name ``x`` in the message.
    :raises DataError: with the observed range, one offending value and the two fixes.
    :returns: ``x``, unchanged.
    """
    x = torch.as_tensor(x)
    not_binary = (x != 0) & (x != 1)
    if bool(not_binary.any()):
        example = x[not_binary].flatten()[0].item()
        low, high = x.min().item(), x.max().item()
        raise DataError(
            f"Bernoulli likelihood needs {what} in {{0, 1}}, but {what} has values in "
            f"[{low:.4g}, {high:.4g}] (e.g. {example:.4g}); binarize the data "
            "(load_dataset(..., binarize='dynamic' or 'static')) or use a Gaussian likelihood"
        )
    return x


def check_splits(name, source, splits, labels):
    """Raise unless the splits of a data set are non-empty images of one shape.

    :param str name: the data set, for the message.
    :param str source: where it was read from, for the message.
    :param dict splits: split name to tensor ``(N, C, H, W)`` or ``None`` (absent;
        only ``"valid"`` may be absent).
    :param dict labels: split name to a label tensor or ``None``.
    :raises DataError: naming the split and what is wrong with it.
    """
    where = f"{name} (from {source})" if source else name
    first = None
    for split, x in splits.items():
        if x is None and split == "valid":
            continue
        if not torch.is_tensor(x) or x.dim() != 4:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise DataError(f"the {split} split of {where} must be a tensor of images "
                            f"(N, C, H, W), got {shape}")
        if len(x) == 0:
            raise DataError(f"the {split} split of {where} is empty; it needs at least one image, "
                            "check the files it was read from")
        first = first or (split, tuple(x.shape[1:]))
        if tuple(x.shape[1:]) != first[1]:
            raise DataError(f"the images of {where} differ in shape between splits: {first[0]} "
                            f"{first[1]}, {split} {tuple(x.shape[1:])}; every split needs one shape")
    for split, y in labels.items():
        if y is not None and len(y) != len(splits[split]):
            raise DataError(f"{where} has {len(y)} {split} labels for {len(splits[split])} "
                            f"{split} images; each image needs one label")
