r"""Probabilities of 8-bit pixel values under a discretized continuous density (plain torch, no Pyro).

The one implementation of discretized likelihoods in the package: the VAE's discrete
likelihoods (:mod:`pyro_lvm.models.discretized`) and the VQ-VAE's whole-model bits per dimension
(:mod:`pyro_lvm.vqvae.evaluate`) both call :func:`discretized_log_prob`.

A pixel value :math:`k \in \{0, \dots, B - 1\}` (``B = num_bins``, 256 for 8-bit images) sits at
the centre :math:`c_k = k / (B - 1)` of the bin :math:`[c_k - \delta, c_k + \delta]`,
:math:`\delta = 1 / (2 (B - 1))`, of the interval [0, 1]. Under a location-scale density with
standardized CDF :math:`F` (the logistic sigmoid, or the Normal :math:`\Phi`), Salimans et al.
(2017, PixelCNN++, eq. 2) give

.. math:: P(k) = F\!\left(\frac{c_k + \delta - \mu}{s}\right) - F\!\left(\frac{c_k - \delta - \mu}{s}\right),

with the edge bins stretched to :math:`-\infty` (:math:`k = 0`) and :math:`+\infty`
(:math:`k = B - 1`), so the :math:`B` probabilities sum to one for every :math:`\mu, s`. A
mixture (PixelCNN++'s discretized logistic mixture) mixes these per pixel:
:math:`P(k) = \sum_m \pi_m P_m(k)`.

Numerics: the difference is taken in the tail nearer the bin (:math:`F(-l) - F(-u)` right of the
mean), which keeps it accurate far from the mean; where it still underflows (below ``1e-12`` in
float64, ``1e-6`` in float32) the density at the centre times the bin width
:math:`f((c_k - \mu)/s) / s \cdot 2\delta` stands in (the PixelCNN++ fallback). The edge bins use
log-CDFs (``logsigmoid``, ``log_ndtr``) and never underflow.

References:

1. T. Salimans, A. Karpathy, X. Chen, D. P. Kingma. PixelCNN++: Improving the PixelCNN with
   discretized logistic mixture likelihood and other modifications. ICLR 2017, sec. 2.1, eq. 2.
"""
import math

import torch
import torch.nn.functional as F
from torch.special import log_ndtr, ndtr

__all__ = ["FAMILIES", "discretized_log_prob", "discretized_mixture_log_prob", "levels_of"]


def _logistic_log_pdf(t):
    return F.logsigmoid(t) + F.logsigmoid(-t)


def _normal_log_pdf(t):
    return -0.5 * t.pow(2) - 0.5 * math.log(2 * math.pi)


#: standardized ``(cdf, log_cdf, log_pdf)`` of each location-scale family; ``log_sf(t) = log_cdf(-t)``
FAMILIES = {"logistic": (torch.sigmoid, F.logsigmoid, _logistic_log_pdf),
            "normal": (ndtr, log_ndtr, _normal_log_pdf)}


def levels_of(x, num_bins=256):
    """Pixel values in [0, 1] as their levels :math:`\\mathrm{round}(x (B - 1))` in ``{0..B-1}`` (float)."""
    steps = num_bins - 1
    return torch.round(x * steps).clamp(0, steps)


def discretized_log_prob(levels, loc, log_scale, family="logistic", num_bins=256):
    r"""Elementwise :math:`\log P(k)` of integer ``levels`` under the discretized ``family``.

    :param torch.Tensor levels: pixel values in ``{0, ..., num_bins - 1}`` (any dtype; floats must
        hold integers).
    :param torch.Tensor loc: :math:`\mu` on the [0, 1] scale of the bin centres, broadcastable.
    :param log_scale: :math:`\log s` on that scale, a float or a broadcastable tensor.
    :param str family: ``"logistic"`` (PixelCNN++) or ``"normal"``.
    :param int num_bins: :math:`B`.
    :returns: log-probabilities in nats, of the broadcast shape.
    """
    cdf, log_cdf, log_pdf = FAMILIES[family]
    steps = num_bins - 1
    log_scale = torch.as_tensor(log_scale, dtype=loc.dtype, device=loc.device)
    levels = levels.to(loc.dtype)
    centre, half = levels / steps, 0.5 / steps
    inv_scale = torch.exp(-log_scale)
    upper = (centre + half - loc) * inv_scale
    lower = (centre - half - loc) * inv_scale
    right_of_mean = centre > loc
    mass = torch.where(right_of_mean, cdf(-lower) - cdf(-upper), cdf(upper) - cdf(lower))
    tiny = 1e-12 if loc.dtype == torch.float64 else 1e-6
    fallback = log_pdf((centre - loc) * inv_scale) - log_scale + math.log(2 * half)
    inner = torch.where(mass > tiny, mass.clamp_min(tiny).log(), fallback)
    return torch.where(levels <= 0, log_cdf(upper), torch.where(levels >= steps, log_cdf(-lower), inner))


def discretized_mixture_log_prob(levels, logits, loc, log_scale, family="logistic", num_bins=256):
    r""":math:`\log \sum_m \pi_m P_m(k)` with :math:`\pi = \mathrm{softmax}(\text{logits})` per pixel.

    :param torch.Tensor levels: pixel values, shape ``S`` (no component dimension).
    :param torch.Tensor logits: mixture logits, shape ``S + (M,)``; ``loc`` and ``log_scale`` too.
    :returns: shape ``S``.
    """
    per_component = discretized_log_prob(levels.unsqueeze(-1), loc, log_scale, family, num_bins)
    return torch.logsumexp(torch.log_softmax(logits, -1) + per_component, -1)
