r"""Importance-weighted bounds with a global latent: the per-datum (nested) bound, against exact answers.

.. math:: u \sim \mathcal N(0, \tau^2 I_k), \quad z_i \mid u \sim \mathcal N(u, \sigma_z^2 I_k), \quad
          x_i \mid z_i \sim \mathcal N(W z_i + b, \sigma^2 I_d), \qquad i = 1..N,

with guide :math:`q(u) = \mathcal N(m, L L^\top)`, :math:`q(z_i | x_i, u) = \mathcal N(a_i + G u, R R^\top)`.
The model has a global ``u`` outside the data plate and a local
``z_i`` in it; ``log p(x)`` of the batch, ``p(u|x)``, ``p(z_i|x_i, u)`` and the nested bound's
``K -> infinity`` limit are all closed-form. With the local guide equal to ``p(z_i|x_i, u)``
every local weight is ``p(x_i|u)``, so the nested bound's expectation *is* that limit for any
``K``. Tolerances: 4 standard errors of the mean over the repeats (float64, fixed seeds).
"""
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

from pyro_lvm.objectives import get_objective

Z = 4.0


class GlobalLinearGaussian(nn.Module):
    """The model, its data (drawn from it), and its exact answers."""

    def __init__(self, data_dim=3, latent_dim=2, num_data=6, tau=1.5, sigma_z=0.8, sigma=0.5, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        opts = dict(generator=g, dtype=torch.float64)
        self.weight = nn.Parameter(torch.randn(data_dim, latent_dim, **opts))
        self.bias = nn.Parameter(torch.randn(data_dim, **opts))
        self.tau, self.sigma_z, self.sigma = tau, sigma_z, sigma
        self.k, self.d = latent_dim, data_dim
        u = tau * torch.randn(latent_dim, **opts)
        z = u + sigma_z * torch.randn(num_data, latent_dim, **opts)
        self.x = (z @ self.weight.T + self.bias + sigma * torch.randn(num_data, data_dim, **opts)).detach()

    def model(self, x):
        eye = torch.eye(self.k, dtype=x.dtype)
        u = pyro.sample("u", dist.MultivariateNormal(torch.zeros(self.k, dtype=x.dtype), self.tau ** 2 * eye))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(u, self.sigma_z).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.weight.T + self.bias, self.sigma).to_event(1), obs=x)

    # ---- exact answers ---------------------------------------------------------------
    def conditional_cov(self):
        """C = Cov(x_i | u)."""
        w = self.weight
        return self.sigma_z ** 2 * w @ w.T + self.sigma ** 2 * torch.eye(self.d, dtype=w.dtype)

    def log_evidence(self, x):
        """log p(x_1..N) of the whole batch (one MultivariateNormal of dimension N d)."""
        n, w = x.shape[0], self.weight
        cov = torch.kron(torch.ones(n, n, dtype=x.dtype), self.tau ** 2 * w @ w.T)
        cov = cov + torch.kron(torch.eye(n, dtype=x.dtype), self.conditional_cov())
        return dist.MultivariateNormal(self.bias.repeat(n), cov).log_prob(x.reshape(-1))

    def posterior_u(self, x):
        """p(u | x) as (mean, covariance)."""
        w, c_inv = self.weight, torch.linalg.inv(self.conditional_cov())
        precision = torch.eye(self.k, dtype=x.dtype) / self.tau ** 2 + x.shape[0] * w.T @ c_inv @ w
        cov = torch.linalg.inv(precision)
        return cov @ w.T @ c_inv @ (x - self.bias).sum(0), cov

    def conditional_posterior_z(self, x):
        """p(z_i | x_i, u) = N(a_i + G u, S): returns (a, G, S)."""
        w = self.weight
        precision = torch.eye(self.k, dtype=x.dtype) / self.sigma_z ** 2 + w.T @ w / self.sigma ** 2
        cov = torch.linalg.inv(precision)
        return (x - self.bias) @ w @ cov.T / self.sigma ** 2, cov / self.sigma_z ** 2, cov

    def nested_limit(self, x, guide):
        r"""The nested bound as K -> infinity: E_q(u)[log p(u) - log q(u) + sum_i log p(x_i | u)].

        Closed form for Gaussian q(u) = N(m, S): -KL(q(u) || p(u)) + sum_i [log N(x_i; W m + b, C)
        - tr(C^{-1} W S W^T) / 2]. Differentiable in the model's and q(u)'s parameters.
        """
        m, scale_tril = guide.u_loc, guide.u_scale_tril()
        s = scale_tril @ scale_tril.T
        prior = dist.MultivariateNormal(torch.zeros_like(m), self.tau ** 2 * torch.eye(self.k, dtype=m.dtype))
        kl = torch.distributions.kl_divergence(dist.MultivariateNormal(m, scale_tril=scale_tril), prior)
        c = self.conditional_cov()
        w = self.weight
        fit = dist.MultivariateNormal(w @ m + self.bias, c).log_prob(x).sum()
        spread = 0.5 * x.shape[0] * torch.trace(torch.linalg.solve(c, w @ s @ w.T))
        return -kl + fit - spread


class GlobalLocalGuide(nn.Module):
    """q(u) = N(m, L L^T), q(z_i | x_i, u) = N(a_i + G u, R R^T), all free parameters."""

    def __init__(self, u_loc, u_cov, z_offset, z_gain, z_cov):
        super().__init__()
        self.u_loc = nn.Parameter(u_loc.clone())
        self.u_tril = nn.Parameter(torch.linalg.cholesky(u_cov).clone())
        self.z_offset = nn.Parameter(z_offset.clone())
        self.z_gain = nn.Parameter(z_gain.clone())
        self.z_tril = nn.Parameter(torch.linalg.cholesky(z_cov).clone())

    def u_scale_tril(self):
        return self.u_tril.tril()

    def forward(self, x):
        u = pyro.sample("u", dist.MultivariateNormal(self.u_loc, scale_tril=self.u_scale_tril()))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(self.z_offset + u @ self.z_gain.T,
                                                     scale_tril=self.z_tril.tril()))


def exact_local_guide(model, x, u_shift=0.0, u_inflate=1.0):
    """The exact p(z_i | x_i, u) with q(u) = p(u|x), shifted by ``u_shift`` and inflated by ``u_inflate``."""
    with torch.no_grad():
        u_loc, u_cov = model.posterior_u(x)
        offset, gain, z_cov = model.conditional_posterior_z(x)
    return GlobalLocalGuide(u_loc + u_shift, u_inflate * u_cov, offset, gain, z_cov)


def repeat(fn, repeats):
    """Mean and standard error of ``fn()`` over ``repeats`` calls."""
    values = torch.tensor([fn() for _ in range(repeats)], dtype=torch.float64)
    return values.mean().item(), (values.std() / math.sqrt(repeats)).item()


@pytest.fixture
def case(float64):
    model = GlobalLinearGaussian()
    return model, model.x


@pytest.mark.parametrize("vectorize", [True, False])
@pytest.mark.parametrize("name, options", [("iwae", {}), ("renyi", {"alpha": 0.5}), ("renyi", {"alpha": -1.0})])
def test_the_exact_posterior_makes_the_nested_bound_log_px(case, vectorize, name, options):
    model, x = case
    guide = exact_local_guide(model, x)
    objective = get_objective(name, num_particles=7, vectorize_particles=vectorize, **options)
    assert -objective.loss(model.model, guide, x) == pytest.approx(model.log_evidence(x).item(), abs=1e-9)
    # log_weights are per datum, conditional on the shared draw of u: each is log p(x_i | u)
    log_w = objective.log_weights(model.model, guide, x)
    assert log_w.shape == (7, x.shape[0])
    assert torch.allclose(log_w, log_w[:1].expand_as(log_w), atol=1e-10)


@pytest.mark.parametrize("name, k, options", [("iwae", 1, {}), ("iwae", 20, {}), ("renyi", 20, {"alpha": 0.5})])
def test_the_bound_is_the_nested_per_datum_bound_not_the_batch_bound(case, name, k, options):
    model, x = case
    guide = exact_local_guide(model, x, u_shift=0.7, u_inflate=2.0)
    exact = model.nested_limit(x, guide).item()
    objective = get_objective(name, num_particles=k, **options)
    mean, se = repeat(lambda: -objective.loss(model.model, guide, x), 400)
    assert abs(mean - exact) < Z * se, (mean, exact, se)
    assert exact < model.log_evidence(x).item() - 1.0  # the guide of u is poor: a strict bound
    weights = objective.datum_weights(model.model, guide, x)
    assert weights.global_names == {"u"} and weights.local.shape == (k, x.shape[0])


def test_the_nested_bound_has_unbiased_gradients(case):
    model, x = case
    guide = exact_local_guide(model, x, u_shift=0.5, u_inflate=1.5)
    params = [model.weight, model.bias, guide.u_loc, guide.u_tril, guide.z_offset, guide.z_gain, guide.z_tril]
    # d/dtheta E[log mean_k w_k] = grad log p(x_i | u) where q(z|x, u) = p(z|x, u); the local guide's
    # parameters sit at the bound's maximum, so their expected gradient is zero, as in the limit
    exact = torch.cat([g.flatten() for g in torch.autograd.grad(model.nested_limit(x, guide), params,
                                                                allow_unused=True, materialize_grads=True)])
    objective = get_objective("iwae", num_particles=5)
    draws = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(
        -objective.differentiable_loss(model.model, guide, x), params)]) for _ in range(400)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    resolved = se > 1e-9
    assert ((mean - exact).abs()[resolved] / se[resolved]).max() < 4.5  # 4.5 sigma over ~40 coordinates
    assert ((mean - exact).abs()[~resolved] < 1e-8).all()


def test_global_draws_alone_give_the_elbo(float64):
    # only a global latent: nothing to importance-weight per datum, so every particle draws u
    data = torch.tensor([0.3, -1.2, 2.0])

    def model():
        u = pyro.sample("u", dist.Normal(0.0, 1.0))
        with pyro.plate("data", 3):
            pyro.sample("x", dist.Normal(u, 1.0), obs=data)

    def guide():
        pyro.sample("u", dist.Normal(0.1, 0.8))

    # closed-form ELBO of N(0.1, 0.8^2) against this model
    m, s2 = 0.1, 0.64
    exact = (-0.5 * math.log(2 * math.pi) - 0.5 * (m ** 2 + s2) + 0.5 * math.log(2 * math.pi * math.e * s2)
             + sum(-0.5 * math.log(2 * math.pi) - 0.5 * ((d - m) ** 2 + s2) for d in data.tolist()))
    objective = get_objective("iwae", num_particles=10)
    mean, se = repeat(lambda: -objective.loss(model, guide), 400)
    assert abs(mean - exact) < Z * se
    assert objective.datum_weights(model, guide).draws_globals


def test_a_global_site_that_depends_on_local_latents_is_refused(case):
    model, x = case

    def model_with_total(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
            pyro.sample("x", dist.Normal(z @ model.weight.T, 1.0).to_event(1), obs=x)
        # an observation outside the data plate whose density depends on every z_i
        pyro.sample("total", dist.Normal(z.sum(-1).sum(-1, keepdim=True), 1.0), obs=torch.tensor([0.0]))

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    with pytest.raises(ValueError, match="depend on the data plate's latent sites"):
        get_objective("iwae", num_particles=4).loss(model_with_total, guide, x)
    get_objective("elbo", num_particles=4).loss(model_with_total, guide, x)  # the ELBO needs no such split


def test_a_bound_that_cannot_be_formed_per_datum_says_so(float64):
    # row and column latents of a matrix: no plate separates the data, the bound is joint
    data = torch.randn(3, 4)

    def model():
        rows, columns = pyro.plate("rows", 3, dim=-2), pyro.plate("columns", 4, dim=-1)
        with columns:
            v = pyro.sample("v", dist.Normal(0.0, 1.0))
        with rows:
            u = pyro.sample("u", dist.Normal(0.0, 1.0))
        with rows, columns:
            pyro.sample("x", dist.Normal(u * v, 1.0), obs=data)

    def guide():
        with pyro.plate("columns", 4, dim=-1):
            pyro.sample("v", dist.Normal(0.1, 1.0))
        with pyro.plate("rows", 3, dim=-2):
            pyro.sample("u", dist.Normal(-0.1, 1.0))

    objective = get_objective("iwae", num_particles=5)
    with pytest.warns(UserWarning, match="jointly over the batch"):
        assert objective.log_weights(model, guide).shape == (5, 1, 1)
