"""Observation models p(x | decoder output) shared by the image models.

Every likelihood sums log-probabilities (or log-densities) over every pixel of a datum
(``to_event`` over the data's dimensions), so a datum's log-likelihood is in nats per image, never
a per-pixel average. Each says what its number is, through ``data_kind``:

``"binary"``
    Bernoulli: a probability of {0, 1} data.
``"eight_bit"``
    the discretized logistic, its mixture and the 256-way categorical: probabilities of the
    integer pixel values 0..255 (:func:`pyro_lvm.data.load_dataset` with ``eight_bit=True``).
``"density"``
    the Gaussian: a density of continuous data, not a probability; its bits per dimension mean
    nothing unless the data are dequantized first (:class:`~pyro_lvm.models.discretized.Dequantized`).

The decoder outputs ``params_per_channel`` values per channel and pixel, laid out as
``(.., P * C, H, W)`` = ``P`` blocks of ``C`` channels.
"""
import math

import pyro.distributions as dist
import torch
from torch import nn

from pyro_lvm.data import NUM_LEVELS, check_binary, check_eight_bit
from pyro_lvm.models.discretized import DiscretizedLogistic, DiscretizedLogisticMixture


class BernoulliLikelihood(nn.Module):
    r"""Independent Bernoulli pixels with logits given by the decoder,

    :math:`\log p(x|z) = \sum_i x_i \log \sigma(\eta_i) + (1 - x_i) \log(1 - \sigma(\eta_i))`.

    Only defined for data in {0, 1}: :meth:`validate` raises a :class:`ValueError` naming the fix.
    """

    binary = True
    data_kind = "binary"
    params_per_channel = 1

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
    data_kind = "density"
    params_per_channel = 1

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


def _blocks(params, blocks, event_dim):
    """``(.., P * C, *rest)`` decoder output as ``P`` tensors ``(.., C, *rest)``."""
    channel_dim = params.dim() - event_dim
    return params.unflatten(channel_dim, (blocks, -1)).unbind(channel_dim)


class _EightBit(nn.Module):
    """What the likelihoods of integer pixel values 0..255 share."""

    binary = False
    data_kind = "eight_bit"

    def validate(self, x):
        check_eight_bit(x, what=f"data for a {self.name} likelihood")

    def mean(self, params, event_dim=3):
        """``E[x|z] / 255``: the mean intensity in [0, 1], for pictures (``event_dim``: the data's dimensions)."""
        return self(params, event_dim).mean / (NUM_LEVELS - 1)


class DiscretizedLogisticLikelihood(_EightBit):
    r"""Per pixel, a logistic :math:`(\mu, s)` discretized to the 256 values with edge bins
    (Salimans et al. 2017, eq. 2; :class:`~pyro_lvm.models.discretized.DiscretizedLogistic`),
    with :math:`\mu` and :math:`\log s` from the decoder (``params_per_channel = 2``).
    :math:`\log s` is kept above ``min_log_scale`` (a bin is :math:`1/255` wide).
    """

    name = "discretized-logistic"
    params_per_channel = 2

    def __init__(self, min_log_scale=-7.0):
        super().__init__()
        self.min_log_scale = min_log_scale

    def forward(self, params, event_dim):
        loc, log_scale = _blocks(params, 2, event_dim)
        return DiscretizedLogistic(loc, log_scale.clamp(min=self.min_log_scale), NUM_LEVELS).to_event(event_dim)


class LogisticMixtureLikelihood(_EightBit):
    r"""Per pixel (and channel), a mixture of ``components`` discretized logistics (PixelCNN++'s
    likelihood without its coupling of the RGB channels), ``params_per_channel = 3 M``: ``M``
    logits, ``M`` locations and ``M`` log-scales.

    :param int components: :math:`M`.
    """

    name = "logistic-mixture"

    def __init__(self, components=5, min_log_scale=-7.0):
        super().__init__()
        self.components, self.min_log_scale = components, min_log_scale
        self.params_per_channel = 3 * components

    def forward(self, params, event_dim):
        blocks = _blocks(params, 3 * self.components, event_dim)
        logits, loc, log_scale = (torch.stack(blocks[i * self.components:(i + 1) * self.components], -1)
                                  for i in range(3))
        return DiscretizedLogisticMixture(logits, loc, log_scale.clamp(min=self.min_log_scale),
                                          NUM_LEVELS).to_event(event_dim)


class CategoricalLikelihood(_EightBit):
    """A 256-way categorical per pixel (the reference that assumes no order of the values;
    ``params_per_channel = 256`` logits)."""

    name = "categorical"
    params_per_channel = NUM_LEVELS

    def forward(self, params, event_dim):
        blocks = _blocks(params, NUM_LEVELS, event_dim)
        return _Levels(logits=torch.stack(blocks, -1), validate_args=False).to_event(event_dim)


class _Levels(dist.Categorical):
    """A Categorical over the values 0..255 held as floats (log_prob takes them, samples are floats)."""

    def log_prob(self, value):
        return super().log_prob(value.long())

    def sample(self, sample_shape=torch.Size()):
        return super().sample(sample_shape).to(self.logits.dtype)

    @property
    def mean(self):
        levels = torch.arange(self.logits.shape[-1], dtype=self.logits.dtype, device=self.logits.device)
        return (self.probs * levels).sum(-1)


#: the likelihoods by name, and the keyword arguments each takes from a VAE config
LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood,
               "discretized-logistic": DiscretizedLogisticLikelihood,
               "logistic-mixture": LogisticMixtureLikelihood, "categorical": CategoricalLikelihood}


def make_likelihood(name, **kwargs):
    """Likelihood by name, one of :data:`LIKELIHOODS` (keyword arguments go to the class)."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(map(repr, LIKELIHOODS))}")
    return LIKELIHOODS[name](**kwargs)
