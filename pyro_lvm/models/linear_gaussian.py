r"""The linear-Gaussian latent model (probabilistic PCA), with everything in closed form.

.. math:: z \sim \mathcal N(0, I_k), \qquad x \mid z \sim \mathcal N(W z + b, \sigma^2 I_d).

Marginal likelihood and posterior (Tipping & Bishop 1999, eqs. 6 and 7):

.. math::
    p(x) = \mathcal N(x;\, b,\, W W^\top + \sigma^2 I), \qquad
    p(z \mid x) = \mathcal N\big(M^{-1} W^\top (x - b),\, \sigma^2 M^{-1}\big),
    \quad M = W^\top W + \sigma^2 I_k.

It trains like any other model here, and it is the ground truth against which the
objectives and the log-likelihood estimators are tested.
"""
import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_lvm.models.plates import batch_size_of
from pyro_lvm.models.registration import register


class LinearGaussian(nn.Module):
    """Probabilistic PCA as a Pyro model with exact :meth:`log_prob` and :meth:`posterior`.

    :param int data_dim: ``d``, dimension of ``x``.
    :param int latent_dim: ``k``, dimension of ``z``.
    :param torch.Tensor weight: optional initial ``W`` of shape ``(d, k)`` (random if omitted).
    :param torch.Tensor bias: optional initial ``b`` of shape ``(d,)`` (zeros if omitted).
    :param float noise_scale: initial ``sigma``.

    :meth:`model` and :meth:`exact_guide` register the module as ``"linear_gaussian"`` with
    ``pyro.module`` (see :mod:`pyro_lvm.models.registration`), so stock ``pyro.infer.SVI`` trains it.
    """

    registration_name = "linear_gaussian"

    latent_site = "z"
    obs_site = "x"

    def __init__(self, data_dim, latent_dim, weight=None, bias=None, noise_scale=1.0, dtype=None):
        super().__init__()
        dtype = dtype or torch.get_default_dtype()
        if weight is None:
            weight = torch.randn(data_dim, latent_dim, dtype=dtype) / math.sqrt(latent_dim)
        if bias is None:
            bias = torch.zeros(data_dim, dtype=dtype)
        weight, bias = torch.as_tensor(weight, dtype=dtype), torch.as_tensor(bias, dtype=dtype)
        if weight.shape != (data_dim, latent_dim) or bias.shape != (data_dim,):
            raise ValueError(f"expected weight {(data_dim, latent_dim)} and bias {(data_dim,)}, "
                             f"got {tuple(weight.shape)} and {tuple(bias.shape)}")
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.log_noise_scale = nn.Parameter(torch.tensor(math.log(noise_scale), dtype=dtype))
        self.data_dim, self.latent_dim = data_dim, latent_dim

    @property
    def noise_scale(self):
        return self.log_noise_scale.exp()

    def model(self, x=None, *, batch_size=None):
        """The generative model over a batch ``x`` of shape ``(N, d)``.

        With ``x=None`` the site ``"x"`` is sampled for ``batch_size`` data:
        ``Predictive(m.model, num_samples=S)(None, batch_size=N)["x"]`` has shape ``(S, N, d)``,
        each row distributed as :meth:`marginal`.
        """
        n = batch_size_of(x, batch_size)
        register(self.registration_name, self)
        like = x if x is not None else self.weight
        with pyro.plate("data", n):
            prior = dist.Normal(like.new_zeros(()), like.new_ones(())).expand([self.latent_dim]).to_event(1)
            z = pyro.sample(self.latent_site, prior)
            loc = z @ self.weight.T + self.bias
            pyro.sample(self.obs_site, dist.Normal(loc, self.noise_scale).to_event(1), obs=x)

    def marginal(self):
        """:math:`p(x)` as a MultivariateNormal."""
        cov = self.weight @ self.weight.T + self.noise_scale ** 2 * torch.eye(
            self.data_dim, dtype=self.weight.dtype)
        return dist.MultivariateNormal(self.bias, covariance_matrix=cov)

    def log_prob(self, x):
        """Exact :math:`\\log p(x)` per datum, shape ``(N,)``."""
        return self.marginal().log_prob(x)

    def posterior(self, x):
        """Exact :math:`p(z|x)` as a batched MultivariateNormal over ``(N, k)``."""
        var = self.noise_scale ** 2
        m = self.weight.T @ self.weight + var * torch.eye(self.latent_dim, dtype=self.weight.dtype)
        m_inv = torch.linalg.inv(m)
        loc = (x - self.bias) @ self.weight @ m_inv.T
        return dist.MultivariateNormal(loc, covariance_matrix=var * m_inv)

    def exact_guide(self, x):
        """A guide that samples the exact posterior: with it every ELBO equals log p(x)."""
        register(self.registration_name, self)
        with pyro.plate("data", x.shape[0]):
            pyro.sample(self.latent_site, self.posterior(x))

    @torch.no_grad()
    def sample(self, num_samples, generator=None):
        """Draw ``(x, z)`` from the model; data with known truth for tests and examples."""
        z = torch.randn(num_samples, self.latent_dim, dtype=self.weight.dtype, generator=generator)
        noise = torch.randn(num_samples, self.data_dim, dtype=self.weight.dtype, generator=generator)
        return z @ self.weight.T + self.bias + self.noise_scale * noise, z
