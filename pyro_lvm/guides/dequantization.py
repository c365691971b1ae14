r"""Dequantization noise :math:`q(u \mid x)` on :math:`[0, 1)^D`, sampled as a guide site.

A density :math:`p` on :math:`[0, 1)^D` gives the 8-bit data :math:`x` the probability
:math:`P(x) = \int_{[0,1)^D} p((x + u)/B)\, B^{-D}\, du` (:class:`~pyro_lvm.models.discretized.Dequantized`).
Any :math:`q(u|x)` on :math:`[0,1)^D` gives, by Jensen's inequality (Ho et al. 2019, Flow++, eq. 12),

.. math:: \log P(x) \;\ge\; \mathbb E_{q(u|x)}\big[\log p((x + u)/B) - D \log B - \log q(u \mid x)\big],

with equality iff :math:`q(u|x) \propto p((x+u)/B)`:

- :class:`UniformDequantizer`: :math:`q = U[0,1)^D`, :math:`\log q = 0` (Theis et al. 2016, the
  bound :math:`\mathbb E_u \log p(x + u)`); tight exactly when :math:`p` is constant within each bin.
- :class:`VariationalDequantizer`: :math:`u = \sigma(f_x(\epsilon))`, :math:`\epsilon \sim \mathcal N(0, I)`,
  with :math:`f_x` a stack of elementwise rational-quadratic splines (Durkan et al. 2019; Pyro's
  :class:`~pyro.distributions.transforms.ConditionalSpline`) whose knots come from a small
  convolutional network of the (scaled) image, and a :class:`~pyro.distributions.transforms.SigmoidTransform`
  at the end. Each :math:`u_i` thus has its own flexible law, given the pixels around :math:`i`
  (a factorized conditional flow: the :math:`u_i` are independent given :math:`x`).

Both return a Pyro distribution with event shape ``input_shape``, so the VAE's guide samples
``u`` beside ``z`` and every objective (``elbo``, ``iwae``) and the importance-sampled
log-likelihood weight :math:`(z, u)` jointly.

References:

1. J. Ho, X. Chen, A. Srinivas, Y. Duan, P. Abbeel. Flow++: Improving flow-based generative models
   with variational dequantization and architecture design. ICML 2019, sec. 3.1.
2. L. Theis, A. van den Oord, M. Bethge. A note on the evaluation of generative models. ICLR 2016.
3. C. Durkan, A. Bekasov, I. Murray, G. Papamakarios. Neural spline flows. NeurIPS 2019.
"""
import math
from functools import partial

import pyro.distributions as dist
from pyro.distributions.transforms import ConditionalSpline
from pyro.distributions.transforms.spline import ConditionedSpline, _monotonic_rational_spline
from torch import nn
from torch.distributions.transforms import ReshapeTransform, SigmoidTransform

__all__ = ["DEQUANTIZERS", "UniformDequantizer", "VariationalDequantizer", "make_dequantizer"]


class UniformDequantizer(nn.Module):
    """:math:`q(u|x) = U[0, 1)^D` (no parameters)."""

    def __init__(self, input_shape):
        super().__init__()
        self.input_shape = tuple(input_shape)

    def forward(self, x):
        zeros = x.new_zeros(x.shape)
        return dist.Uniform(zeros, zeros + 1).to_event(len(self.input_shape))


class _BroadcastSpline(ConditionedSpline):
    """A conditioned spline whose per-datum knots broadcast over leading sample dimensions
    (the objectives' vectorized particles draw ``(K, N, D)`` for knots of shape ``(N, D, bins)``)."""

    def spline_op(self, x, **kwargs):
        params = self._params() if callable(self._params) else self._params
        params = [None if p is None else p.expand(x.shape + p.shape[-1:]) for p in params]
        return _monotonic_rational_spline(x, *params, bound=self.bound, **kwargs)


class _KnotNet(nn.Module):
    """Image ``(N, C, H, W)`` in [0, 1] -> spline parameters ``(w, h, d, l)``, each ``(N, D * K)``
    (``K - 1`` for ``d``) in pixel-major order, as :class:`ConditionalSpline` reads them."""

    def __init__(self, input_shape, count_bins, hidden):
        super().__init__()
        self.channels, self.count_bins = input_shape[0], count_bins
        per_value = 4 * count_bins - 1
        self.net = nn.Sequential(nn.Conv2d(self.channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, self.channels * per_value, 1))
        nn.init.zeros_(self.net[-1].weight)  # start at the identity spline: q = sigmoid(N(0, I))
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, image):
        n, k = image.shape[0], self.count_bins
        out = self.net(image).unflatten(1, (self.channels, -1))  # (N, C, 4K - 1, H, W)
        out = out.movedim(2, -1).reshape(n, -1, 4 * k - 1)        # (N, D, 4K - 1), D in (C, H, W) order
        w, h, d, l = out.split([k, k, k - 1, k], dim=-1)
        return w.flatten(1), h.flatten(1), d.flatten(1), l.flatten(1)


class VariationalDequantizer(nn.Module):
    r"""A conditional flow :math:`q(u|x)` on :math:`(0, 1)^D` (see the module docstring).

    :param tuple input_shape: ``(C, H, W)``.
    :param int flows: spline layers.
    :param int count_bins: spline segments :math:`K`.
    :param float bound: the splines act on :math:`[-b, b]` (identity outside); :math:`\sigma(\pm 8)`
        leaves :math:`3 \cdot 10^{-4}` of the unit interval at each end to the Normal's tails.
    :param int hidden: channels of each knot network.
    :param int num_bins: the data's levels :math:`B`; the network sees :math:`x / (B - 1)`.
    """

    def __init__(self, input_shape, flows=2, count_bins=8, bound=8.0, hidden=32, num_bins=256):
        super().__init__()
        self.input_shape, self.num_bins = tuple(input_shape), num_bins
        if len(self.input_shape) != 3:
            raise ValueError(f"variational dequantization needs images (C, H, W), got {self.input_shape}")
        self.dim = math.prod(self.input_shape)
        self.splines = nn.ModuleList(
            ConditionalSpline(_KnotNet(self.input_shape, count_bins, hidden), self.dim, count_bins, bound=bound)
            for _ in range(flows))

    def forward(self, x):
        image = x / (self.num_bins - 1)
        base = dist.Normal(x.new_zeros(x.shape[0], self.dim), x.new_ones(())).to_event(1)
        transforms = [_BroadcastSpline(partial(spline._params, image), bound=spline.bound, order=spline.order)
                      for spline in self.splines]
        transforms += [SigmoidTransform(cache_size=1), ReshapeTransform((self.dim,), self.input_shape, cache_size=1)]
        return dist.TransformedDistribution(base, transforms)


#: the dequantization noise families by name (``"none"``: the data are not dequantized)
DEQUANTIZERS = {"uniform": UniformDequantizer, "variational": VariationalDequantizer}


def make_dequantizer(name, input_shape, **kwargs):
    """A dequantizer by name (``"uniform"`` or ``"variational"``; keyword arguments go to the class)."""
    if name not in DEQUANTIZERS:
        raise ValueError(f"unknown dequantization {name!r}; choose one of {', '.join(map(repr, DEQUANTIZERS))}")
    return DEQUANTIZERS[name](input_shape, **kwargs)
