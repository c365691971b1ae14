r"""Pyro distributions over 8-bit pixel values and the dequantized density.

:class:`DiscretizedLogistic` and :class:`DiscretizedLogisticMixture` wrap the plain-torch
:mod:`pyro_lvm.nn.discretized` (PixelCNN++, Salimans et al. 2017, eq. 2) as univariate Pyro
distributions over values :math:`\{0, \dots, B - 1\}` held as floats.

:class:`Dequantized` turns a density :math:`p` on :math:`[0, 1)^D` into a density of the
discrete data given dequantization noise :math:`u \in [0, 1)^D` (Theis et al. 2016; Ho et al.
2019, Flow++, sec. 3.1):

.. math:: \log p(x \mid u) = \log p\!\left(\frac{x + u}{B}\right) - D \log B,

the change of variables from :math:`y = (x + u)/B` back to the 8-bit scale. With :math:`u` a
latent site, :math:`\log P(x) = \log \int_{[0,1)^D} p(x \mid u)\, du`, so any bound on
:math:`\log P(x)` over :math:`(z, u)` jointly (ELBO, IWAE, the importance-sampled
log-likelihood) is a bound on the log-probability of the 8-bit data, in nats.
"""
import math

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions.torch_distribution import TorchDistribution

from pyro_lvm.nn.discretized import discretized_log_prob, discretized_mixture_log_prob

__all__ = ["Dequantized", "DiscretizedLogistic", "DiscretizedLogisticMixture"]


class DiscretizedLogistic(TorchDistribution):
    r"""A logistic density :math:`(\mu, s)` on [0, 1] discretized to ``num_bins`` values with edge bins.

    :param torch.Tensor loc: :math:`\mu` (bin centres are :math:`k / (B - 1)`).
    :param torch.Tensor log_scale: :math:`\log s`.
    :param int num_bins: :math:`B`.
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    has_rsample = False

    def __init__(self, loc, log_scale, num_bins=256, validate_args=None):
        self.loc, self.log_scale = torch.broadcast_tensors(loc, log_scale)
        self.num_bins = num_bins
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property
    def support(self):
        return constraints.integer_interval(0, self.num_bins - 1)

    def expand(self, batch_shape, _instance=None):
        return DiscretizedLogistic(self.loc.expand(batch_shape), self.log_scale.expand(batch_shape), self.num_bins)

    def log_prob(self, value):
        return discretized_log_prob(value, self.loc, self.log_scale, "logistic", self.num_bins)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            u = torch.rand(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
            y = self.loc + self.log_scale.exp() * (torch.log(u) - torch.log1p(-u))
            return torch.round(y * (self.num_bins - 1)).clamp(0, self.num_bins - 1)

    @property
    def mean(self):
        """The continuous logistic's mean clamped to [0, 1], in levels (close to the exact mean)."""
        return self.loc.clamp(0, 1) * (self.num_bins - 1)


class DiscretizedLogisticMixture(TorchDistribution):
    r"""Per value, :math:`\sum_m \pi_m P_m(k)` of discretized logistics (components in the last dimension).

    Each pixel (and, for colour images, each channel) has its own mixture; PixelCNN++'s
    autoregressive coupling of the RGB channels is left out, so channels are independent given
    the decoder's output.

    :param torch.Tensor logits: mixture logits, shape ``batch + (M,)``.
    :param torch.Tensor loc: component locations, same shape.
    :param torch.Tensor log_scale: component log-scales, same shape.
    """

    arg_constraints = {"logits": constraints.real, "loc": constraints.real, "log_scale": constraints.real}
    has_rsample = False

    def __init__(self, logits, loc, log_scale, num_bins=256, validate_args=None):
        self.logits, self.loc, self.log_scale = torch.broadcast_tensors(logits, loc, log_scale)
        self.num_bins = num_bins
        super().__init__(self.loc.shape[:-1], validate_args=validate_args)

    @constraints.dependent_property
    def support(self):
        return constraints.integer_interval(0, self.num_bins - 1)

    def expand(self, batch_shape, _instance=None):
        shape = tuple(batch_shape) + self.loc.shape[-1:]
        return DiscretizedLogisticMixture(self.logits.expand(shape), self.loc.expand(shape),
                                          self.log_scale.expand(shape), self.num_bins)

    def log_prob(self, value):
        return discretized_mixture_log_prob(value, self.logits, self.loc, self.log_scale, "logistic", self.num_bins)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            m = dist.Categorical(logits=self.logits).sample(sample_shape).unsqueeze(-1)
            shape = self._extended_shape(sample_shape) + self.loc.shape[-1:]
            loc = self.loc.expand(shape).gather(-1, m).squeeze(-1)
            log_scale = self.log_scale.expand(shape).gather(-1, m).squeeze(-1)
            return DiscretizedLogistic(loc, log_scale, self.num_bins).sample()

    @property
    def mean(self):
        return (torch.softmax(self.logits, -1) * self.loc.clamp(0, 1)).sum(-1) * (self.num_bins - 1)


class Dequantized(TorchDistribution):
    r"""The density of 8-bit data ``x`` given noise ``u``: :math:`p((x + u)/B) / B^D` (see the module).

    :param base: a Pyro distribution on :math:`[0, 1)^D` (any event shape ``D``-sized, e.g. an
        ``Independent`` Normal over an image).
    :param torch.Tensor noise: :math:`u`, shaped like a value of ``base``, in :math:`[0, 1)`.
    :param int num_bins: :math:`B`.
    """

    arg_constraints = {}
    has_rsample = False

    def __init__(self, base, noise, num_bins=256, validate_args=None):
        self.base, self.noise, self.num_bins = base, noise, num_bins
        super().__init__(base.batch_shape, base.event_shape, validate_args=validate_args)

    @constraints.dependent_property
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.num_bins - 1), len(self.event_shape))

    def expand(self, batch_shape, _instance=None):
        return Dequantized(self.base.expand(batch_shape), self.noise, self.num_bins)

    def log_prob(self, value):
        event_size = math.prod(self.event_shape)
        return self.base.log_prob((value + self.noise) / self.num_bins) - event_size * math.log(self.num_bins)

    def sample(self, sample_shape=torch.Size()):
        """Draws of the base density, floored to their bin: :math:`x = \\lfloor B y \\rfloor` clamped."""
        with torch.no_grad():
            return torch.floor(self.base.sample(sample_shape) * self.num_bins).clamp(0, self.num_bins - 1)

    @property
    def mean(self):
        return self.base.mean * self.num_bins - 0.5
