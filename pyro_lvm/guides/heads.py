r"""Guide-side heads: from an encoder's features and diagonal Normal to a richer q(z|x).

An encoder here (:class:`~pyro_lvm.nn.MLPEncoder`, :class:`~pyro_lvm.nn.ConvEncoder`) maps ``x``
to features ``h`` (:meth:`features`) and ``h`` to the ``(loc, scale)`` of a diagonal Normal
(:attr:`head`). The heads below read ``(h, loc, scale)`` and return the distribution of ``z``:

* :class:`FullCovarianceHead`: :math:`\mathcal N(\mu, L L^\top)` with
  :math:`L = \mathrm{strictly\_lower}(L') + \mathrm{diag}(\sigma)`, where :math:`\mu` and
  :math:`\sigma > 0` are the encoder's and :math:`L'` is a linear map of ``h`` (Kingma & Welling
  2019, sec. 2.5.1).
* :class:`IAFHead`: the diagonal Normal pushed through ``T`` inverse autoregressive flow steps
  conditioned on a context ``c = A h + b`` (Kingma et al. 2016, sec. 4, eqs. 10 and 14), built
  from Pyro's :class:`~pyro.distributions.transforms.ConditionalAffineAutoregressive` and
  :class:`~pyro.nn.ConditionalAutoRegressiveNN`, the order of the variables reversed from one
  step to the next.

Both leave the encoder alone, so a model keeps one encoder whatever its guide, and both start
close to the diagonal guide (the full-covariance head exactly: its weights start at zero).

**References**

1. D. P. Kingma, M. Welling, "An Introduction to Variational Autoencoders", Foundations and
   Trends in Machine Learning 12(4), 2019 (arXiv:1906.02691), sec. 2.5.1.
2. D. P. Kingma, T. Salimans, R. Jozefowicz, X. Chen, I. Sutskever, M. Welling, "Improved
   Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016 (arXiv:1606.04934).
"""
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import ConditionalAffineAutoregressive
from pyro.nn import ConditionalAutoRegressiveNN
from torch import nn

__all__ = ["FLOW_UPDATES", "GUIDE_FAMILIES", "FlowDistribution", "FullCovarianceHead", "IAFHead", "encode", "make_head"]

#: the variational families a :class:`~pyro_lvm.models.VAE` offers by name
GUIDE_FAMILIES = ("diag", "fullcov", "iaf")
#: the IAF updates: ``"affine"`` (eq. 10) and ``"gated"`` (eq. 14, numerically stable)
FLOW_UPDATES = ("affine", "gated")


def encode(encoder, x):
    """``(h, loc, scale)``: the encoder's features and the diagonal Normal it reads from them."""
    h = encoder.features(x)
    loc, scale = encoder.head(h)
    return h, loc, scale


class FullCovarianceHead(nn.Module):
    r"""q(z|x) = N(loc, L L^T), :math:`L = \mathrm{strictly\_lower}(L'(h)) + \mathrm{diag}(\sigma)`.

    Kingma & Welling (2019), sec. 2.5.1: the encoder gives :math:`\mu` and :math:`\log\sigma`,
    and :math:`L'` is a linear map of the features ``h``, of which only the strictly lower
    triangle is kept; :math:`\log|\det L| = \sum_i \log \sigma_i`. The map starts at zero, so
    the untrained guide is the diagonal one.

    :param int feature_dim: width of ``h``.
    :param int latent_dim: ``k``; the map has ``k (k - 1) / 2`` outputs.
    """

    def __init__(self, feature_dim, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        rows, cols = torch.tril_indices(latent_dim, latent_dim, offset=-1)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        self.strictly_lower = nn.Linear(feature_dim, len(rows))
        nn.init.zeros_(self.strictly_lower.weight)
        nn.init.zeros_(self.strictly_lower.bias)

    def scale_tril(self, h, scale):
        """The Cholesky factor ``L``, shape ``(.., k, k)``."""
        lower = scale.new_zeros(*scale.shape, self.latent_dim)
        lower[..., self._rows, self._cols] = self.strictly_lower(h)
        return lower + torch.diag_embed(scale)

    def forward(self, h, loc, scale):
        return dist.MultivariateNormal(loc, scale_tril=self.scale_tril(h, scale))


class IAFHead(nn.Module):
    r"""q(z|x): a diagonal Normal pushed through ``flows`` inverse autoregressive steps.

    With :math:`z_0 = \mu + \sigma \odot \epsilon` and a context :math:`c = A h + b` from the
    encoder's features (Kingma et al. 2016, algorithm 1), each step reads
    :math:`(m_t, s_t) = \mathrm{MADE}_t(z_{t-1}, c)`, autoregressive in :math:`z_{t-1}`, and sets

    .. math:: z_t = m_t + e^{s_t} \odot z_{t-1} \quad \text{(affine, eq. 10)}, \qquad
              z_t = \sigma_t \odot z_{t-1} + (1 - \sigma_t) \odot m_t,\;
              \sigma_t = \mathrm{sigmoid}(s_t + 2) \quad \text{(gated, eq. 14)},

    so :math:`\log q(z_T|x) = \log \mathcal N(z_0; \mu, \sigma^2) - \sum_t \sum_i \log \sigma_{t,i}`
    (the Jacobian of each step is triangular). The order of the variables is reversed between
    steps (sec. 4): step ``t`` is autoregressive in the order ``0, 1, .., k-1`` for even ``t``
    and ``k-1, .., 0`` for odd ``t``. The reversal is in the networks' order, not a
    :class:`~pyro.distributions.transforms.Permute` of the values, so ``z_t`` stays aligned
    with the encoder's ``loc`` and a near-identity flow is a near-diagonal guide. Each step is
    Pyro's :class:`ConditionalAffineAutoregressive` (``stable=True`` for the gated update) on a
    :class:`ConditionalAutoRegressiveNN` given that explicit permutation: its masks and the
    permutation are buffers, deterministic and in the ``state_dict``, unlike Pyro's default
    random permutation (pyro-ppl/pyro#1839).

    :meth:`forward` returns a :class:`~pyro.distributions.TransformedDistribution` (the base
    itself when ``flows=0``: then the guide *is* the diagonal one). Its ``log_prob`` at a value
    it sampled reads the cached inverse of every step (Pyro caches one), so it costs one pass
    and is exact; at any other value it inverts each step, ``k`` network passes per step.

    :param int feature_dim: width of the encoder's features ``h``.
    :param int latent_dim: ``k``.
    :param int flows: ``T >= 0`` steps.
    :param int context_dim: width of the context (default ``k``).
    :param hidden: hidden widths of each MADE, each ``>= k`` (default ``(10 k,)``, as Pyro's).
    :param str update: ``"affine"`` (eq. 10) or ``"gated"`` (eq. 14).
    """

    def __init__(self, feature_dim, latent_dim, flows=2, context_dim=None, hidden=None, update="gated"):
        super().__init__()
        if not isinstance(flows, int) or isinstance(flows, bool) or flows < 0:
            raise ValueError(f"flows must be a non-negative integer, got {flows!r}")
        if update not in FLOW_UPDATES:
            raise ValueError(f"unknown IAF update {update!r}; choose one of {list(FLOW_UPDATES)}")
        self.latent_dim, self.num_flows, self.update = latent_dim, flows, update
        context_dim = context_dim or latent_dim
        hidden = list(hidden or [10 * latent_dim])
        self.context = nn.Linear(feature_dim, context_dim) if flows else None
        order = torch.arange(latent_dim)
        self.flows = nn.ModuleList([
            ConditionalAffineAutoregressive(ConditionalAutoRegressiveNN(
                latent_dim, context_dim, hidden, permutation=order.flip(0) if t % 2 else order), stable=update == "gated")
            for t in range(flows)])

    def transforms(self, context):
        """The ``T`` steps conditioned on ``context`` (per datum: ``context`` has the batch shape)."""
        return [flow.condition(context) for flow in self.flows]

    def forward(self, h, loc, scale):
        base = dist.Normal(loc, scale).to_event(1)
        if not self.num_flows:
            return base
        return FlowDistribution(base, self.transforms(self.context(h)))


class FlowDistribution(dist.TransformedDistribution):
    """A ``TransformedDistribution`` whose ``log_prob`` broadcasts a value against the batch.

    Pyro's conditional networks expand the context to the shape of their input rather than
    broadcast it, so a value of shape ``(M, 1, k)`` against a batch of ``N`` (every draw under
    every datum's q, as in aggregate-posterior estimates) is expanded to ``(M, N, k)`` first.
    A value of the full shape is passed as it is, so that the transforms' caches still see the
    very tensor they produced.
    """

    def log_prob(self, value):
        shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        return super().log_prob(value if value.shape == shape else value.expand(shape))


def make_head(family, encoder, flows=2, update="gated"):
    """The head of a guide family by name: ``None`` for ``"diag"`` (the encoder's own Normal).

    :param str family: one of :data:`GUIDE_FAMILIES`.
    :param encoder: an encoder with ``features``, ``head``, ``feature_dim`` and ``latent_dim``.
    """
    if family == "diag":
        return None
    if family == "fullcov":
        return FullCovarianceHead(encoder.feature_dim, encoder.latent_dim)
    if family == "iaf":
        return IAFHead(encoder.feature_dim, encoder.latent_dim, flows=flows, update=update)
    raise ValueError(f"unknown guide {family!r}; choose one of {list(GUIDE_FAMILIES)}")
