"""A linear-Gaussian model with a deliberately imperfect Gaussian guide whose ELBO is analytic."""
import math

import pyro
import pyro.distributions as dist
import torch

from pyro_lvm.models import LinearGaussian


def make_case(num_data=8, data_dim=4, latent_dim=2, seed=0):
    """Model, data, and the exact posterior's mean and marginal scales (float64)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(data_dim, latent_dim, generator=g, dtype=torch.float64)
    bias = torch.randn(data_dim, generator=g, dtype=torch.float64)
    model = LinearGaussian(data_dim, latent_dim, weight=weight, bias=bias, noise_scale=0.6, dtype=torch.float64)
    x, _ = model.sample(num_data, generator=g)
    post = model.posterior(x)
    return model, x, post.loc.detach(), post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt().detach()


class ShiftedGuide(torch.nn.Module):
    """q(z|x) = N(loc, diag(scale^2)) with free per-datum parameters (started off the posterior)."""

    def __init__(self, loc, scale):
        super().__init__()
        self.loc = torch.nn.Parameter(loc.clone())
        self.log_scale = torch.nn.Parameter(scale.log().clone())

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(self.loc, self.log_scale.exp()).to_event(1))


def analytic_elbo(model, guide, x):
    """Sum over data of E_q[log p(x, z) - log q(z)] in closed form (differentiable)."""
    w, b, var = model.weight, model.bias, model.noise_scale ** 2
    m, s2 = guide.loc, guide.log_scale.exp() ** 2
    d, k = w.shape
    resid = x - m @ w.T - b
    trace_wsw = (s2 @ (w ** 2).T).sum(-1)  # tr(W S W^T) per datum, S diagonal
    e_loglik = -0.5 * d * torch.log(2 * math.pi * var) - 0.5 * ((resid ** 2).sum(-1) + trace_wsw) / var
    e_logprior = -0.5 * k * math.log(2 * math.pi) - 0.5 * ((m ** 2).sum(-1) + s2.sum(-1))
    entropy = 0.5 * k * math.log(2 * math.pi * math.e) + 0.5 * s2.log().sum(-1)
    return (e_loglik + e_logprior + entropy).sum()
