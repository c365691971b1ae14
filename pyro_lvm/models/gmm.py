r"""The Gaussian mixture as Pyro models whose assignment is summed out exactly.

.. math:: z_n \sim \mathrm{Categorical}(\pi), \qquad x_n \mid z_n = k \sim \mathcal N(\mu_k, \Sigma_k),
          \qquad n = 1, \dots, N.

The site ``"assignment"`` is marked ``infer={"enumerate": "parallel"}``. ``TraceEnum_ELBO``
(``max_plate_nesting=1``) then puts its :math:`K` values in a tensor dimension left of the
``"data"`` plate and sums it out exactly by tensor variable elimination [1, 2], so

.. math:: \mathrm{ELBO} = \sum_n \log \sum_k \pi_k \mathcal N(x_n; \mu_k, \Sigma_k) + \log p(\theta)

for :class:`GaussianMixture`, whose parameters are point estimates (maximum likelihood, or MAP
with a :class:`GMMPrior`) and whose guide is empty. :class:`BayesianGaussianMixture` puts the
prior on weights, means and scales as sample sites instead; its :meth:`~BayesianGaussianMixture.variational_guide`
is a variational posterior over them, and NUTS samples the same model (see
:mod:`pyro_lvm.evaluate.mcmc`). Both observe the data through :func:`observe_mixture`.

After a fit, :meth:`GaussianMixture.log_likelihood` and :meth:`~GaussianMixture.responsibilities`
read the enumerated joint :math:`\log \pi_k + \log \mathcal N(x_n; \mu_k, \Sigma_k)` off a trace,
:meth:`~GaussianMixture.assign` runs ``infer_discrete`` (MAP assignments at temperature 0,
posterior samples at 1), and :meth:`~GaussianMixture.sample` draws new points. Start a fit
from :meth:`~GaussianMixture.initialize`: the best of a few k-means++ seedings [3] by exact
log-likelihood.

**References**

1. F. Obermeyer, E. Bingham, M. Jankowiak, J. Chiu, N. Pradhan, A. Rush, N. Goodman, "Tensor
   variable elimination for plated factor graphs", ICML 2019.
2. Pyro documentation, "Inference with Discrete Latent Variables" (enumeration, ``TraceEnum_ELBO``,
   ``infer_discrete``).
3. D. Arthur, S. Vassilvitskii, "k-means++: the advantages of careful seeding", SODA 2007.
4. C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006, chapter 9.
"""
import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import TorchDistribution, constraints
from pyro.infer import infer_discrete
from pyro.infer.autoguide import AutoNormal, init_to_median, init_to_value
from pyro.ops.indexing import Vindex
from torch import nn

from pyro_lvm.models.gmm_em import (COVARIANCES, MixtureParams, check_data, component_log_prob, initial_params,
                                    log_weights, sample_mixture)
from pyro_lvm.models.plates import batch_size_of
from pyro_lvm.models.registration import register

ASSIGNMENT, OBS = "assignment", "x"


class GaussianComponents(TorchDistribution):
    r""":math:`x \sim \mathcal N(\mu_z, \Sigma_z)` given component indices :math:`z`, sampled or enumerated.

    The density of indexing a ``MultivariateNormal`` (or a diagonal ``Normal``) by ``z``, computed
    the other way round: :meth:`log_prob` scores the data under all :math:`K` components with one
    whitening product each (:func:`~pyro_lvm.models.gmm_em.component_log_prob`), then picks
    component :math:`z` for each point. Under parallel enumeration ``z`` is ``arange(K)`` in a
    dimension left of the data plate, so this avoids the ``(K, N, D)`` intermediates of the
    indexed distribution, which dominate the cost of a full-batch step.

    :param torch.Tensor locs: ``(K, D)``.
    :param torch.Tensor scale: standard deviations ``(K, D)`` or Cholesky factors ``(K, D, D)``.
    :param torch.Tensor z: component indices; its shape is the batch shape.
    """

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, locs, scale, z, validate_args=None):
        if locs.dim() != 2 or scale.dim() not in (2, 3):
            raise ValueError(f"expected locs (K, D) and scale (K, D) or (K, D, D), got {tuple(locs.shape)} "
                             f"and {tuple(scale.shape)}")
        self.locs, self.scale, self.z = locs, scale, z
        super().__init__(z.shape, locs.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GaussianComponents, _instance)
        new.locs, new.scale, new.z = self.locs, self.scale, self.z.expand(batch_shape)
        super(GaussianComponents, new).__init__(torch.Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        if value.dim() != 2:
            raise ValueError(f"GaussianComponents scores data of shape (N, D), got {tuple(value.shape)}")
        table = component_log_prob(value, self.locs, self.scale)  # (N, K)
        if self._is_enumeration():
            return table.T.expand(self.batch_shape)  # z = arange(K) down the enumeration dimension
        return Vindex(table)[torch.arange(len(value)), self.z]

    def _is_enumeration(self):
        z, k = self.z, self.locs.shape[0]
        return (z.dim() == 2 and z.shape[0] == k and z.stride(-1) == 0
                and torch.equal(z[:, 0], torch.arange(k, device=z.device)))

    def sample(self, sample_shape=torch.Size()):
        z = self.z.expand(torch.Size(sample_shape) + self.batch_shape)
        noise = torch.randn(z.shape + self.event_shape, dtype=self.locs.dtype)
        if self.scale.dim() == 2:
            return (self.locs[z] + self.scale[z] * noise).detach()
        return (self.locs[z] + (self.scale[z] @ noise.unsqueeze(-1)).squeeze(-1)).detach()


def observe_mixture(x, logits, locs, scale, batch_size=None):
    r"""Score ``x`` under the mixture, with the assignment as an enumerated discrete site.

    :param torch.Tensor x: ``(N, D)``, or ``None`` to sample ``batch_size`` points instead.
    :param torch.Tensor logits: unnormalised :math:`\log \pi`, shape ``(K,)``.
    :param torch.Tensor locs: ``(K, D)``.
    :param torch.Tensor scale: standard deviations ``(K, D)`` or Cholesky factors ``(K, D, D)``.
    """
    with pyro.plate("data", batch_size_of(x, batch_size)):
        z = pyro.sample(ASSIGNMENT, dist.Categorical(logits=logits), infer={"enumerate": "parallel"})
        pyro.sample(OBS, GaussianComponents(locs, scale, z), obs=x)


def _check_covariance(covariance):
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")


@dataclass
class GMMPrior:
    r"""Priors on the mixture's parameters.

    .. math:: \pi \sim \mathrm{Dirichlet}(\alpha \mathbf 1), \quad
              \mu_{kd} \sim \mathcal N(m, s^2), \quad \sigma_{kd} \sim \mathrm{LogNormal}(a, b^2), \quad
              \Omega_k \sim \mathrm{LKJ}(\eta),

    with :math:`\Sigma_k = \mathrm{diag}(\sigma_k)\, \Omega_k\, \mathrm{diag}(\sigma_k)` (the
    correlation :math:`\Omega_k` only for full covariances, through its Cholesky factor).

    :param float concentration: :math:`\alpha`; 1 is flat on the simplex.
    :param float loc_loc: :math:`m`.
    :param float loc_scale: :math:`s`.
    :param float scale_loc: :math:`a`, location of :math:`\log \sigma`.
    :param float scale_scale: :math:`b`.
    :param float lkj_concentration: :math:`\eta`; 1 is uniform over correlation matrices.
    """

    concentration: float = 1.0
    loc_loc: float = 0.0
    loc_scale: float = 10.0
    scale_loc: float = 0.0
    scale_scale: float = 2.0
    lkj_concentration: float = 1.0

    def distributions(self, num_components, data_dim, covariance, like):
        """The prior of each site: ``weights`` over all components, the others for one component."""
        sites = {
            "weights": dist.Dirichlet(like.new_full((num_components,), self.concentration)),
            "locs": dist.Normal(like.new_tensor(self.loc_loc), self.loc_scale).expand([data_dim]).to_event(1),
            "scales": dist.LogNormal(like.new_tensor(self.scale_loc), self.scale_scale).expand([data_dim]).to_event(1),
        }
        if covariance == "full":
            # validate_args=False: a factor normalised in floating point may miss the constraint's tolerance
            sites["corr_chol"] = dist.LKJCholesky(data_dim, like.new_tensor(self.lkj_concentration),
                                                  validate_args=False)
        return sites

    def log_prob(self, params):
        r""":math:`\log p(\pi, \mu, \Sigma)` at point values, for MAP estimation."""
        priors = self.distributions(params.num_components, params.data_dim, params.covariance, params.locs)
        values = site_values(params)
        return sum(priors[name].log_prob(value).sum() for name, value in values.items())


def site_values(params):
    """The :class:`GMMPrior` sites' values at ``params``: weights, locs, scales (and corr_chol)."""
    values = {"weights": params.weights, "locs": params.locs}
    if params.covariance == "diag":
        values["scales"] = params.scale
    else:
        values["scales"] = params.scale.norm(dim=-1)  # rows of L have norms sqrt(diag(L L^T))
        values["corr_chol"] = params.scale / values["scales"].unsqueeze(-1)
    return values


class GaussianMixture(nn.Module):
    r"""A :math:`K`-component Gaussian mixture with point-estimate parameters, as a Pyro model.

    Train ``model``/``guide`` with ``TraceEnum_ELBO(max_plate_nesting=1)``: the guide is empty,
    so the loss is the exact negative log-likelihood (minus the log prior when ``prior`` is set).
    Covariances are :math:`L_k L_k^\top + \epsilon I` (``reg_covar`` :math:`= \epsilon`, as in
    EM), so a component on duplicate points stays finite.

    The parameters are stored relative to reference values in units of fixed steps:
    :math:`\mu_k = \bar\mu_k + h_k \bar L_k u_k`, :math:`L_k = \bar L_k T_k` with
    :math:`T_k` lower-triangular (off-diagonal :math:`h_k c`, diagonal :math:`e^{h_k c / \sqrt2}`)
    and logits :math:`\bar\ell_k + h_k v_k`. By default the reference is random means, unit
    covariances and equal weights, with :math:`h_k = 1`. :meth:`set_params` moves the reference to
    given parameters and, given the objective's curvature, sets :math:`h_k` so that one unit of
    every coordinate is about one standard error there (:math:`h_k = 1/\sqrt{N_k}` for the summed
    log-likelihood): a fixed diagonal preconditioner that keeps full-batch L-BFGS well scaled.
    It changes the coordinates, not the model.

    :param int num_components: ``K``.
    :param int data_dim: ``D``.
    :param str covariance: ``"diag"`` or ``"full"``.
    :param GMMPrior prior: if given, the model adds :math:`\log p(\theta)` (MAP estimation).
    :param float reg_covar: :math:`\epsilon`.

    :meth:`model` registers the module as ``"gaussian_mixture"`` with ``pyro.module`` (see
    :mod:`pyro_lvm.models.registration`), so stock ``pyro.infer.SVI`` with ``TraceEnum_ELBO`` trains it.
    """

    registration_name = "gaussian_mixture"

    def __init__(self, num_components, data_dim, covariance="full", prior=None, reg_covar=1e-6, dtype=None):
        super().__init__()
        _check_covariance(covariance)
        if num_components < 1 or data_dim < 1:
            raise ValueError(f"need K >= 1 and D >= 1, got K = {num_components}, D = {data_dim}")
        dtype = dtype or torch.get_default_dtype()
        k, d = num_components, data_dim
        self.num_components, self.data_dim, self.covariance = k, d, covariance
        self.prior, self.reg_covar = prior, reg_covar
        scale_shape = (k, d) if covariance == "diag" else (k, d, d)
        self.logit_coords = nn.Parameter(torch.zeros(k, dtype=dtype))
        self.loc_coords = nn.Parameter(torch.zeros(k, d, dtype=dtype))
        self.scale_coords = nn.Parameter(torch.zeros(scale_shape, dtype=dtype))
        self.register_buffer("ref_logits", torch.zeros(k, dtype=dtype))
        self.register_buffer("ref_locs", torch.randn(k, d, dtype=dtype))
        ref_scale = torch.ones(k, d, dtype=dtype)
        self.register_buffer("ref_scale", ref_scale if covariance == "diag" else torch.diag_embed(ref_scale))
        self.register_buffer("step", torch.ones(k, dtype=dtype))

    @classmethod
    def from_params(cls, params, **kwargs):
        """A mixture holding ``params`` (its covariance type and dtype follow them)."""
        mixture = cls(params.num_components, params.data_dim, params.covariance, dtype=params.locs.dtype, **kwargs)
        mixture.set_params(params)
        return mixture

    def constrained_params(self):
        """``(params, logits)``: the current :class:`MixtureParams` and weight logits, differentiable."""
        h = self.step
        logits = self.ref_logits + h * self.logit_coords
        if self.covariance == "diag":
            locs = self.ref_locs + h[:, None] * self.ref_scale * self.loc_coords
            stddevs = self.ref_scale * torch.exp(h[:, None] / math.sqrt(2) * self.scale_coords)
            scale = (stddevs.pow(2) + self.reg_covar).sqrt()
        else:
            locs = self.ref_locs + h[:, None] * (self.ref_scale @ self.loc_coords.unsqueeze(-1)).squeeze(-1)
            coords = self.scale_coords
            unit = coords.tril(-1) * h[:, None, None] + torch.diag_embed(
                torch.exp(coords.diagonal(dim1=-2, dim2=-1) * h[:, None] / math.sqrt(2)))
            factor = self.ref_scale @ unit
            scale = factor
            if self.reg_covar:
                eye = torch.eye(self.data_dim, dtype=factor.dtype)
                scale = torch.linalg.cholesky(factor @ factor.mT + self.reg_covar * eye)
        return MixtureParams(torch.softmax(logits, -1), locs, scale), logits

    @torch.no_grad()
    def params(self):
        """The current :class:`MixtureParams`, detached."""
        return self.constrained_params()[0]

    @torch.no_grad()
    def set_params(self, params, curvature=None):
        r"""Hold ``params`` (covariances including ``reg_covar``), coordinates reset to zero there.

        :param curvature: optional :math:`c_k`, shape ``(K,)``: the curvature of the objective per
            unit of each component's coordinates, e.g. :math:`N_k = N \pi_k` for the summed
            log-likelihood. The steps become :math:`h_k = 1/\sqrt{c_k}`, so the objective's Hessian
            is about the identity here (the Fisher information of well-separated components).
            Without it the steps are kept.
        """
        if (params.num_components, params.data_dim, params.covariance) != (
                self.num_components, self.data_dim, self.covariance):
            raise ValueError(f"params are K={params.num_components}, D={params.data_dim}, {params.covariance}; "
                             f"the mixture is K={self.num_components}, D={self.data_dim}, {self.covariance}")
        params = params.to(self.step.dtype)
        if curvature is not None:
            curvature = torch.as_tensor(curvature, dtype=self.step.dtype)
            self.step.copy_(curvature.clamp_min(torch.finfo(self.step.dtype).eps * curvature.max()).rsqrt())
        self.ref_logits.copy_(log_weights(params.weights))
        self.ref_locs.copy_(params.locs)
        self.ref_scale.copy_(self._without_ridge(params.scale))
        for p in (self.logit_coords, self.loc_coords, self.scale_coords):
            p.zero_()

    def _without_ridge(self, scale):
        """The factor whose covariance plus ``reg_covar`` gives ``scale`` (``scale`` itself if none is)."""
        if self.covariance == "diag":
            variances = scale.pow(2) - self.reg_covar
            return torch.where(variances > 0, variances.clamp_min(0).sqrt(), scale)
        eye = torch.eye(self.data_dim, dtype=scale.dtype)
        factor, info = torch.linalg.cholesky_ex(scale @ scale.mT - self.reg_covar * eye)
        return torch.where((info == 0).view(-1, 1, 1), factor, scale)

    def initialize(self, x, restarts=3, generator=None):
        """Start from the best of ``restarts`` k-means++ seedings by exact log-likelihood.

        See :func:`~pyro_lvm.models.gmm_em.initial_params`.

        :returns: the mean log-likelihood per point at the start.
        """
        x = self.validate_data(x)
        params, ll = initial_params(x.to(self.step.dtype), self.num_components, self.covariance, restarts,
                                    self.reg_covar, generator)
        self.set_params(params)
        return ll

    def validate_data(self, x):
        """``x`` if it is finite ``(N, D)`` data with ``N >= K``; else ``ValueError``."""
        return check_data(x, self.num_components, self.data_dim)

    def model(self, x=None, *, batch_size=None):
        """The mixture over ``x`` of shape ``(N, D)``, with the assignment enumerated.

        With ``x=None`` the sites ``"assignment"`` and ``"x"`` are sampled for ``batch_size``
        points: ``Predictive(gmm.model, num_samples=S)(None, batch_size=N)["x"]`` is ``(S, N, D)``.
        """
        register(self.registration_name, self)
        params, logits = self.constrained_params()
        if self.prior is not None:
            pyro.factor("log_prior", self.prior.log_prob(params))
        observe_mixture(x, logits, params.locs, params.scale, batch_size)

    def guide(self, x):
        """Empty: the parameters are point estimates and the assignment is enumerated in the model."""

    @torch.no_grad()
    def log_joint(self, x):
        r""":math:`\log \pi_k + \log \mathcal N(x_n; \mu_k, \Sigma_k)`, shape ``(N, K)``, from an enumerated trace."""
        x = self.validate_data(x).to(self.step.dtype)
        trace = poutine.trace(poutine.enum(self.model, first_available_dim=-2)).get_trace(x)
        joint = sum(trace.nodes[name]["fn"].log_prob(trace.nodes[name]["value"]) for name in (ASSIGNMENT, OBS))
        assert joint.shape == (self.num_components, len(x)), joint.shape
        return joint.T

    def log_likelihood(self, x):
        r"""Exact :math:`\log p(x_n)` per point, shape ``(N,)``: the enumerated joint summed over components."""
        return self.log_joint(x).logsumexp(-1)

    def responsibilities(self, x):
        r""":math:`p(z_n = k \mid x_n)`, shape ``(N, K)``; each row sums to one."""
        return self.log_joint(x).softmax(-1)

    @torch.no_grad()
    def assign(self, x, temperature=0):
        """Component of each point by ``infer_discrete``: the MAP at temperature 0, a posterior draw at 1."""
        x = self.validate_data(x).to(self.step.dtype)
        if self.num_components == 1:  # nothing to enumerate: Pyro would leave the site unsampled
            return torch.zeros(len(x), dtype=torch.long)
        model = infer_discrete(self.model, first_available_dim=-2, temperature=temperature)
        return poutine.trace(model).get_trace(x).nodes[ASSIGNMENT]["value"]

    def sample(self, num_samples, generator=None):
        """Draw ``(x, z)``: new points ``(num_samples, D)`` and their components."""
        return sample_mixture(self.params(), num_samples, generator)


class BayesianGaussianMixture:
    r"""The fully Bayesian mixture: weights, means and scales are sample sites under a :class:`GMMPrior`.

    ``model(x)`` samples ``"weights"``, then in ``pyro.plate("components")`` ``"locs"``,
    ``"scales"`` and, for full covariances, ``"corr_chol"``; the assignment is enumerated as in
    :class:`GaussianMixture`. NUTS samples it directly (``max_plate_nesting=1``);
    :meth:`variational_guide` gives a mean-field Normal variational posterior for ``TraceEnum_ELBO``.
    """

    def __init__(self, num_components, data_dim, covariance="diag", prior=None):
        _check_covariance(covariance)
        self.num_components, self.data_dim, self.covariance = num_components, data_dim, covariance
        self.prior = prior or GMMPrior()

    @property
    def sites(self):
        """The global sample sites."""
        return ("weights", "locs", "scales") + (("corr_chol",) if self.covariance == "full" else ())

    def model(self, x=None, *, batch_size=None):
        """Priors on the global sites, then the data with the assignment enumerated.

        With ``x=None`` it samples ``batch_size`` points (``float`` default dtype), as
        :meth:`GaussianMixture.model` does. It has no parameters to register; the
        :meth:`variational_guide` (an ``AutoNormal``) registers its own.
        """
        like = x if x is not None else torch.zeros(())
        priors = self.prior.distributions(self.num_components, self.data_dim, self.covariance, like)
        weights = pyro.sample("weights", priors["weights"])
        with pyro.plate("components", self.num_components):
            locs = pyro.sample("locs", priors["locs"])
            scale = pyro.sample("scales", priors["scales"])
            if self.covariance == "full":
                scale = scale.unsqueeze(-1) * pyro.sample("corr_chol", priors["corr_chol"])
        observe_mixture(x, log_weights(weights), locs, scale, batch_size)

    def params_from_sites(self, values):
        """:class:`MixtureParams` from one set of site values (e.g. posterior medians)."""
        scale = values["scales"]
        if self.covariance == "full":
            scale = scale.unsqueeze(-1) * values["corr_chol"]
        return MixtureParams(values["weights"], values["locs"], scale)

    def variational_guide(self, init_values=None, init_scale=0.01):
        """A mean-field Normal posterior over the global sites (``AutoNormal``), the assignment hidden.

        :param dict init_values: starting posterior medians, e.g. ``site_values(initial_params(...)[0])``;
            default the prior medians (all components alike, which a fit cannot separate).
        """
        init = init_to_value(values=init_values) if init_values is not None else init_to_median
        return AutoNormal(poutine.block(self.model, expose=list(self.sites)), init_loc_fn=init,
                          init_scale=init_scale)


def match_components(locs, reference_locs):
    """The order of ``locs``'s components that best matches ``reference_locs`` (Hungarian algorithm).

    :returns: ``order`` such that ``locs[order]`` pairs with ``reference_locs`` by minimum total
        squared distance; use ``params.permute(order)``.
    """
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(torch.as_tensor(reference_locs, dtype=torch.float64),
                       torch.as_tensor(locs, dtype=torch.float64)).pow(2)
    _, order = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(order)
