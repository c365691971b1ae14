"""Early, explicit checks on data, so a bad input fails with a fix instead of a NaN loss.

A Bernoulli likelihood evaluated on grayscale pixels does not raise: PyTorch's
``Bernoulli.log_prob`` happily returns a number for ``x = 0.35`` when argument
validation is off, and the model then trains on an objective that is not a
log-likelihood. :func:`check_binary` catches that before training starts.
"""
import torch

__all__ = ["check_binary", "check_finite"]


def check_finite(x, what="data"):
    """Raise if ``x`` holds NaN or infinite values.

    :param torch.Tensor x: the tensor to check.
    :param str what: how to name ``x`` in the message.
    :raises ValueError: naming how many values are NaN or infinite.
    :returns: ``x``, unchanged.
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        return x
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{what} must be finite, but it has {n_nan} NaN and {n_inf} infinite values "
            f"out of {x.numel()}; check the files it was read from, or the transform applied to it"
        )
    return x


def check_binary(x, what="data"):
    """Raise unless every value of ``x`` is exactly 0 or 1.

    :param torch.Tensor x: the tensor to check, e.g. a batch about to be scored
        by a Bernoulli likelihood.
    :param str what: how to name ``x`` in the message.
    :raises ValueError: with the observed range, one offending value and the two fixes.
    :returns: ``x``, unchanged.
    """
    x = torch.as_tensor(x)
    not_binary = (x != 0) & (x != 1)
    if bool(not_binary.any()):
        example = x[not_binary].flatten()[0].item()
        low, high = x.min().item(), x.max().item()
        raise ValueError(
            f"Bernoulli likelihood needs {what} in {{0, 1}}, but {what} has values in "
            f"[{low:.4g}, {high:.4g}] (e.g. {example:.4g}); binarize the data "
            "(load_dataset(..., binarize='dynamic' or 'static')) or use a Gaussian likelihood"
        )
    return x
