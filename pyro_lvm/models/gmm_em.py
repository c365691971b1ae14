r"""Gaussian mixtures in plain torch: parameters, exact densities, k-means++ seeding and EM.

A :math:`K`-component mixture in :math:`D` dimensions has density

.. math:: p(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x;\, \mu_k,\, \Sigma_k),

with diagonal or full covariances. This module holds what needs no Pyro: the exact
log-likelihood, sampling, the seeding and restarts that start any fit, and the EM baseline.
EM alternates two closed-form steps (Bishop 2006, sec. 9.2.2, eqs. 9.23-9.27). The E step
computes the responsibilities

.. math:: r_{nk} = \frac{\pi_k \mathcal N(x_n; \mu_k, \Sigma_k)}{\sum_j \pi_j \mathcal N(x_n; \mu_j, \Sigma_j)},

and the M step sets, with :math:`N_k = \sum_n r_{nk}`,

.. math:: \pi_k = \frac{N_k}{N}, \quad \mu_k = \frac1{N_k} \sum_n r_{nk} x_n, \quad
          \Sigma_k = \frac1{N_k} \sum_n r_{nk} (x_n - \mu_k)(x_n - \mu_k)^\top + \epsilon I.

The ridge :math:`\epsilon` (``reg_covar``, as in scikit-learn) keeps a component that collapses
onto one point, or onto duplicate points, finite. A component left with no responsibility keeps
its previous mean and covariance instead of dividing by zero.

**References**

1. C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006, chapter 9.
2. D. Arthur, S. Vassilvitskii, "k-means++: the advantages of careful seeding", SODA 2007.
"""
import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from pyro_lvm.data import check_finite

COVARIANCES = ("diag", "full")
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class MixtureParams:
    r"""The parameters of a Gaussian mixture.

    :ivar torch.Tensor weights: :math:`\pi`, shape ``(K,)``, on the simplex.
    :ivar torch.Tensor locs: :math:`\mu`, shape ``(K, D)``.
    :ivar torch.Tensor scale: standard deviations ``(K, D)`` for diagonal covariances, or lower
        Cholesky factors ``(K, D, D)`` with :math:`\Sigma_k = L_k L_k^\top` for full ones.
    """

    weights: torch.Tensor
    locs: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self):
        k, d = self.locs.shape if self.locs.dim() == 2 else (None, None)
        if k is None or self.weights.shape != (k,) or self.scale.shape not in ((k, d), (k, d, d)):
            raise ValueError(f"expected weights (K,), locs (K, D) and scale (K, D) or (K, D, D), got "
                             f"{tuple(self.weights.shape)}, {tuple(self.locs.shape)}, {tuple(self.scale.shape)}")

    @property
    def num_components(self):
        return self.locs.shape[0]

    @property
    def data_dim(self):
        return self.locs.shape[1]

    @property
    def covariance(self):
        """``"diag"`` or ``"full"``."""
        return "diag" if self.scale.dim() == 2 else "full"

    @property
    def covariances(self):
        """:math:`\\Sigma_k`, shape ``(K, D, D)`` whatever the covariance type."""
        if self.covariance == "diag":
            return torch.diag_embed(self.scale.pow(2))
        return self.scale @ self.scale.mT

    @classmethod
    def from_covariances(cls, weights, locs, covariances, covariance="full"):
        """Build from covariance matrices ``(K, D, D)`` (or variances ``(K, D)`` when diagonal)."""
        covariances = torch.as_tensor(covariances)
        if covariance == "diag":
            variances = covariances.diagonal(dim1=-2, dim2=-1) if covariances.dim() == 3 else covariances
            return cls(torch.as_tensor(weights), torch.as_tensor(locs), variances.sqrt())
        return cls(torch.as_tensor(weights), torch.as_tensor(locs), torch.linalg.cholesky(covariances))

    def to(self, dtype):
        return MixtureParams(self.weights.to(dtype), self.locs.to(dtype), self.scale.to(dtype))

    def detach(self):
        return MixtureParams(self.weights.detach(), self.locs.detach(), self.scale.detach())

    def permute(self, order):
        """The same mixture with its components reordered by ``order``."""
        return MixtureParams(self.weights[order], self.locs[order], self.scale[order])


def check_data(x, num_components=None, data_dim=None):
    """Return ``x`` if it is a finite floating ``(N, D)`` tensor with ``N >= K``; else raise ``ValueError``."""
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"a Gaussian mixture needs data of shape (N, D), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"data must be floating point, got {x.dtype}")
    if data_dim is not None and x.shape[1] != data_dim:
        raise ValueError(f"the mixture is {data_dim}-dimensional but the data have D = {x.shape[1]}")
    if num_components is not None and x.shape[0] < num_components:
        raise ValueError(f"cannot fit K = {num_components} components to N = {x.shape[0]} points; "
                         "use fewer components or more data")
    return check_finite(x)


def _block_rows(num_components, data_dim):
    """Rows per block for ``(rows, K, D)`` intermediates of about a megabyte (cache-sized)."""
    return max(1024, 2 ** 17 // (num_components * data_dim))


class _WhitenedSquares(torch.autograd.Function):
    r""":math:`m_{nk} = \lVert W_k x_n - s_k \rVert^2` for all components, a block of rows at a time.

    ``whiten`` is :math:`[W_1; \dots; W_K]^\top`, shape ``(D, K D)``, and ``shift`` the stacked
    :math:`s_k`, ``(K D,)``. The backward pass recomputes each block instead of keeping the
    ``(N, K, D)`` residuals, and returns gradients for ``whiten`` and ``shift`` only (the data
    are constants): :math:`\partial m_{nk} / \partial W_k = 2 y_{nk} x_n^\top`,
    :math:`\partial m_{nk} / \partial s_k = -2 y_{nk}`.
    """

    @staticmethod
    def forward(ctx, x, whiten, shift):
        k, d = whiten.shape[1] // x.shape[1], x.shape[1]
        ctx.save_for_backward(x, whiten, shift)
        return torch.cat([torch.linalg.vector_norm(torch.addmm(-shift, block, whiten).view(len(block), k, d),
                                                   dim=-1).square() for block in x.split(_block_rows(k, d))])

    @staticmethod
    def backward(ctx, grad):
        x, whiten, shift = ctx.saved_tensors
        k, d = whiten.shape[1] // x.shape[1], x.shape[1]
        rows = _block_rows(k, d)
        grad_whiten, grad_shift = torch.zeros_like(whiten), torch.zeros_like(shift)
        for block, g in zip(x.split(rows), grad.split(rows)):
            residual = torch.addmm(-shift, block, whiten).view(len(block), k, d)
            weighted = (2 * residual * g.unsqueeze(-1)).view(len(block), k * d)
            grad_whiten.addmm_(block.T, weighted)
            grad_shift.sub_(weighted.sum(0))
        return None, grad_whiten, grad_shift


def component_log_prob(x, locs, scale):
    r""":math:`\log \mathcal N(x_n; \mu_k, \Sigma_k)` for every point and component, shape ``(N, K)``.

    Full covariances whiten every component at once, :math:`y_{nk} = L_k^{-1} x_n - L_k^{-1}\mu_k`,
    by one matrix product per block of rows (blocks small enough to stay in cache, which on one
    CPU thread is several times faster than a pass per component); diagonal ones expand the
    square into three matrix products. Differentiable in ``locs`` and ``scale`` (not in ``x``).

    :param locs: ``(K, D)``.
    :param scale: standard deviations ``(K, D)`` or Cholesky factors ``(K, D, D)``.
    """
    n, d = x.shape
    k = locs.shape[0]
    if scale.dim() == 2:
        precision = scale.pow(-2)
        maha = (x.pow(2) @ precision.T - 2 * x @ (locs * precision).T
                + (locs.pow(2) * precision).sum(-1)).clamp_min(0)
        half_log_det = scale.log().sum(-1)
    else:
        eye = torch.eye(d, dtype=scale.dtype).expand_as(scale)
        whiten = torch.linalg.solve_triangular(scale, eye, upper=False)  # L_k^{-1}
        shift = (whiten @ locs.unsqueeze(-1)).squeeze(-1).reshape(-1)
        maha = _WhitenedSquares.apply(x, whiten.reshape(k * d, d).T, shift)
        half_log_det = scale.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return maha.mul(-0.5).sub_(half_log_det + 0.5 * d * LOG_2PI)


def log_weights(weights):
    """``log(weights)``, floored at the smallest normal number so an empty component is not ``-inf``."""
    return weights.clamp_min(torch.finfo(weights.dtype).tiny).log()


def log_likelihood(x, params):
    r"""Exact :math:`\log p(x_n) = \log \sum_k \pi_k \mathcal N(x_n; \mu_k, \Sigma_k)`, shape ``(N,)``."""
    return (component_log_prob(x, params.locs, params.scale) + log_weights(params.weights)).logsumexp(-1)


@torch.no_grad()
def e_step(x, params):
    """Responsibilities ``(N, K)`` (Bishop eq. 9.23) and the exact log-likelihood per point ``(N,)``; no gradients."""
    joint = component_log_prob(x, params.locs, params.scale).add_(log_weights(params.weights))
    log_px = joint.logsumexp(-1)
    return joint.sub_(log_px.unsqueeze(-1)).exp_(), log_px


def m_step(x, resp, covariance="full", reg_covar=1e-6, previous=None):
    r"""Closed-form maximisation (Bishop eqs. 9.24-9.27) given responsibilities.

    :param torch.Tensor resp: responsibilities ``(N, K)``, or hard labels: a ``torch.long``
        tensor ``(N,)``, with ``previous`` then giving ``K``.
    :param MixtureParams previous: where a component has no responsibility at all, its mean and
        covariance are kept from here (else they fall back to the data mean and covariance).
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
    n, d = x.shape
    if resp.is_floating_point():
        counts = resp.sum(0)
        denom = counts.clamp_min(torch.finfo(x.dtype).tiny).unsqueeze(-1)
        locs = resp.T @ x / denom
        scatter = _soft_scatter(x, resp, locs, covariance)
    else:
        k = previous.num_components if previous is not None else int(resp.max()) + 1
        counts = torch.bincount(resp, minlength=k).to(x.dtype)
        denom = counts.clamp_min(1).unsqueeze(-1)
        locs = x.new_zeros(k, d).index_add_(0, resp, x) / denom
        scatter = _hard_scatter(x, resp, locs, counts, covariance)
    if covariance == "diag":
        scale = (scatter / denom + reg_covar).sqrt()
    else:
        scale = torch.linalg.cholesky(scatter / denom.unsqueeze(-1) + reg_covar * torch.eye(d, dtype=x.dtype))
    empty = counts <= 10 * torch.finfo(x.dtype).eps * n
    if bool(empty.any()):
        if previous is None:
            previous = _moments(x, len(counts), covariance, reg_covar)
        locs = torch.where(empty[:, None], previous.locs, locs)
        scale = torch.where(empty.view(-1, *[1] * (scale.dim() - 1)), previous.scale, scale)
    return MixtureParams(counts / n, locs, scale)


def _soft_scatter(x, resp, locs, covariance):
    """:math:`\sum_n r_{nk} (x_n - \mu_k)(x_n - \mu_k)^\top` (or its diagonal), all components per block of rows."""
    total = 0
    for x_block, r_block in zip(x.split(_block_rows(*locs.shape)), resp.split(_block_rows(*locs.shape))):
        centred = x_block.unsqueeze(1) - locs  # (B, K, D)
        if covariance == "diag":
            total = total + torch.einsum("bk,bkd->kd", r_block, centred.pow(2))
        else:
            total = total + torch.einsum("bkd,bke->kde", centred * r_block.unsqueeze(-1), centred)
    return total


def _hard_scatter(x, labels, locs, counts, covariance):
    """The same with 0/1 responsibilities, from each component's own points only."""
    centred = x - locs[labels]
    if covariance == "diag":
        return torch.zeros_like(locs).index_add_(0, labels, centred.pow(2))
    groups = centred[labels.argsort()].split(counts.long().tolist())
    return torch.stack([g.T @ g for g in groups])


def _moments(x, num_components, covariance, reg_covar, locs=None):
    """Every component at the data mean (or ``locs``) with the data covariance, equal weights."""
    one = m_step(x, torch.zeros(len(x), dtype=torch.long), covariance, reg_covar)
    k = num_components
    weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
    locs = one.locs.expand(k, -1).clone() if locs is None else locs
    return MixtureParams(weights, locs, one.scale.expand(k, *one.scale.shape[1:]).clone())


def _squared_distances(x, centres, x_sq=None):
    """``||x_n - c_j||^2``, shape ``(N, J)``, by the expanded square (clamped at zero)."""
    x_sq = x.pow(2).sum(-1, keepdim=True) if x_sq is None else x_sq
    return (x_sq - 2 * x @ centres.T + centres.pow(2).sum(-1)).clamp_min(0)


def kmeans_plusplus(x, num_components, generator=None, trials=None):
    r"""Indices of ``K`` seed points chosen by greedy k-means++ (Arthur & Vassilvitskii 2007).

    The first seed is uniform; each next one is drawn with probability proportional to
    :math:`D(x)^2`, the squared distance to the nearest seed so far. The greedy variant draws
    ``trials`` candidates (default :math:`2 + \lfloor \log K \rfloor`) and keeps the one that lowers
    :math:`\sum_n D(x_n)^2` most. If every point already sits on a seed (duplicate data), the next
    seed is uniform.
    """
    n = len(x)
    trials = trials or 2 + int(math.log(num_components))
    x_sq = x.pow(2).sum(-1, keepdim=True)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    closest = _squared_distances(x, x[chosen], x_sq).squeeze(-1)
    for _ in range(1, num_components):
        cumulative = closest.cumsum(0)
        if cumulative[-1] > 0:  # inverse CDF: a point with D^2 = 0 is never drawn, and N is unlimited
            u = torch.rand(trials, generator=generator, dtype=cumulative.dtype) * cumulative[-1]
            candidates = torch.searchsorted(cumulative, u, right=True).clamp_max(n - 1)
        else:
            candidates = torch.randint(n, (trials,), generator=generator)
        updated = torch.minimum(closest.unsqueeze(-1), _squared_distances(x, x[candidates], x_sq))
        best = int(updated.sum(0).argmin())
        chosen.append(int(candidates[best]))
        closest = updated[:, best]
    return torch.tensor(chosen)


def seeded_params(x, num_components, covariance="full", reg_covar=1e-6, generator=None):
    """Mixture parameters from one k-means++ seeding: the moments of each seed's nearest points."""
    seeds = x[kmeans_plusplus(x, num_components, generator)]
    labels = _squared_distances(x, seeds).argmin(-1)
    return m_step(x, labels, covariance, reg_covar, previous=_moments(x, num_components, covariance, reg_covar, seeds))


def initial_params(x, num_components, covariance="full", restarts=3, reg_covar=1e-6, generator=None):
    """The best of ``restarts`` k-means++ seedings by exact log-likelihood.

    Each restart seeds by :func:`kmeans_plusplus`, assigns every point to its nearest seed, and
    takes the weights, means and covariances of those cells (one hard M step). No further
    iterations are run: what happens next is up to the fit.

    :returns: ``(params, mean_log_likelihood)`` of the best restart.
    """
    x = check_data(x, num_components)
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    best, best_ll = None, -math.inf
    for _ in range(restarts):
        params = seeded_params(x, num_components, covariance, reg_covar, generator)
        ll = log_likelihood(x, params).mean().item()
        if best is None or ll > best_ll:
            best, best_ll = params, ll
    return best, best_ll


def random_params(num_components, data_dim, covariance="full", spread=3.0, generator=None, dtype=None):
    r"""A random mixture with known parameters, for tests, examples and benchmarks.

    Means are :math:`\mathcal N(0, \text{spread}^2 I)`; weights are proportional to uniform draws
    in ``[1, 2]`` (so no component is tiny); standard deviations are log-uniform in ``[0.5, 1.5]``,
    and full covariances rotate them by a random orthogonal matrix.
    """
    dtype = dtype or torch.get_default_dtype()
    k, d = num_components, data_dim
    weights = 1 + torch.rand(k, generator=generator, dtype=dtype)
    locs = spread * torch.randn(k, d, generator=generator, dtype=dtype)
    stddevs = torch.exp(math.log(0.5) + math.log(3.0) * torch.rand(k, d, generator=generator, dtype=dtype))
    if covariance == "diag":
        return MixtureParams(weights / weights.sum(), locs, stddevs)
    rotation, _ = torch.linalg.qr(torch.randn(k, d, d, generator=generator, dtype=dtype))
    covs = rotation @ torch.diag_embed(stddevs.pow(2)) @ rotation.mT
    return MixtureParams.from_covariances(weights / weights.sum(), locs, covs)


def sample_mixture(params, num_samples, generator=None):
    """Draw ``(x, z)``: points ``(N, D)`` and the component that generated each ``(N,)``."""
    z = torch.multinomial(params.weights, num_samples, replacement=True, generator=generator)
    noise = torch.randn(num_samples, params.data_dim, generator=generator, dtype=params.locs.dtype)
    if params.covariance == "diag":
        shift = params.scale[z] * noise
    else:
        shift = (params.scale[z] @ noise.unsqueeze(-1)).squeeze(-1)
    return params.locs[z] + shift, z


@dataclass
class EMResult:
    """What :func:`fit_em` returns.

    :ivar MixtureParams params: the final parameters.
    :ivar float log_likelihood: their exact mean log-likelihood per point.
    :ivar list history: the mean log-likelihood at each E step (the first is the initialisation's).
    :ivar bool converged: whether the tolerance was met before ``max_iter``.
    :ivar float seconds: wall time, initialisation included.
    """

    params: MixtureParams
    log_likelihood: float
    iterations: int
    converged: bool
    history: list = field(default_factory=list)
    seconds: float = 0.0


def fit_em(x, num_components=None, init=None, covariance="full", tol=1e-7, relative=True, max_iter=1000,
           reg_covar=1e-6, restarts=3, generator=None, progress=False):
    r"""Fit a Gaussian mixture by expectation-maximisation (Bishop 2006, sec. 9.2.2).

    Stops when the mean log-likelihood per point changes by at most ``tol`` relative to its
    value, :math:`|\ell_t - \ell_{t-1}| \le \text{tol}\, |\ell_t|` (EM never lowers it), or with
    ``relative=False`` by at most ``tol`` nats (scikit-learn's rule, there with ``tol = 1e-3``).

    :param torch.Tensor x: data ``(N, D)``.
    :param int num_components: ``K``; may be left out when ``init`` is given.
    :param MixtureParams init: starting parameters; default :func:`initial_params` with ``restarts``.
    :param str covariance: ``"diag"`` or ``"full"`` (ignored when ``init`` is given).
    :param float reg_covar: ridge added to every covariance's diagonal.
    :returns: :class:`EMResult`.
    """
    start = time.perf_counter()
    if init is None:
        if num_components is None:
            raise ValueError("give num_components or init")
        init, _ = initial_params(x, num_components, covariance, restarts, reg_covar, generator)
    x = check_data(x, init.num_components, init.data_dim)
    params, history, converged = init, [], False
    with torch.no_grad(), tqdm(total=max_iter, desc="EM", disable=not progress, leave=False) as bar:
        for _ in range(max_iter):
            resp, log_px = e_step(x, params)
            history.append(log_px.mean().item())
            bar.update()
            bar.set_postfix(log_lik=f"{history[-1]:.6g}", refresh=False)
            if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * (abs(history[-1]) if relative else 1):
                converged = True
                break
            params = m_step(x, resp, params.covariance, reg_covar, previous=params)
    if not converged:
        history.append(log_likelihood(x, params).mean().item())
    return EMResult(params, history[-1], len(history) - 1, converged, history, time.perf_counter() - start)
