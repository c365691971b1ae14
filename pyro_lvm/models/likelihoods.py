"""Observation models p(x | decoder output) shared by the image models.

Both likelihoods sum log-densities over every pixel of a datum (``to_event`` over the data's
dimensions), so a datum's log-likelihood is in nats per image, never a per-pixel average.
"""
import math

import pyro.distributions as dist
import torch
from torch import nn

from pyro_lvm.data import check_binary


class BernoulliLikelihood(nn.Module):
    r"""Independent Bernoulli pixels with logits given by the decoder,

    :math:`\log p(x|z) = \sum_i x_i \log \sigma(\eta_i) + (1 - x_i) \log(1 - \sigma(\eta_i))`.

    Only defined for data in {0, 1}: :meth:`validate` raises a :class:`ValueError` naming the fix.
    """

    binary = True

    def forward(self, logits, event_dim):
        return dist.Bernoulli(logits=logits, validate_args=False).to_event(event_dim)

    def mean(self, logits):
        return torch.sigmoid(logits)

    def validate(self, x):
        check_binary(x, what="data for a Bernoulli likelihood")


class GaussianLikelihood(nn.Module):
    r"""Independent Gaussian pixels around the decoder output,

    :math:`\log p(x|z) = -\sum_i \left[\frac{(x_i - \mu_i)^2}{2\sigma^2} + \log\sigma
    + \tfrac12\log 2\pi\right]`,

    with the normalising constant included so the value is a true log-density.

    :param float scale: the initial (or fixed) standard deviation :math:`\sigma`.
    :param bool learn_scale: learn :math:`\log\sigma` (one value shared by all pixels).
    """

    binary = False

    def __init__(self, scale=0.1, learn_scale=True):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"the Gaussian likelihood scale must be positive, got {scale}")
        log_scale = torch.tensor(math.log(scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def scale(self):
        return self.log_scale.exp()

    def forward(self, loc, event_dim):
        return dist.Normal(loc, self.scale.to(loc.dtype).expand_as(loc), validate_args=False).to_event(event_dim)

    def mean(self, loc):
        return loc

    def validate(self, x):
        if not torch.isfinite(x).all():
            raise ValueError("data for a Gaussian likelihood contain NaN or infinite values")


def make_likelihood(name, **kwargs):
    """Likelihood by name: ``"bernoulli"`` or ``"gaussian"`` (keyword arguments go to the class)."""
    if name == "bernoulli":
        return BernoulliLikelihood()
    if name == "gaussian":
        return GaussianLikelihood(**kwargs)
    raise ValueError(f"unknown likelihood {name!r}; choose 'bernoulli' or 'gaussian'")
