"""Collapse diagnostics against exact answers: linear-Gaussian mutual information, active units of a
decoder that ignores dimensions, KL per dimension, and the rate-distortion identity."""
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_lvm.evaluate import collapse_diagnostics, latent_traversal
from pyro_lvm.models import BernoulliLatentModel, LinearGaussian
from pyro_lvm.objectives import get_objective

DATA_DIM, LATENT_DIM, NOISE = 4, 2, 1.0


def _model(weight):
    return LinearGaussian(DATA_DIM, weight.shape[1], weight=weight, noise_scale=NOISE, dtype=torch.float64)


def _exact_mi(model):
    """I_p(x; z) = 0.5 log det(I + W^T W / sigma^2) (H(z) - H(z|x) of the Gaussians)."""
    w = model.weight.detach()
    return 0.5 * torch.logdet(torch.eye(w.shape[1], dtype=w.dtype) + w.T @ w / NOISE ** 2).item()


class DiagonalGuide:
    """q(z|x) = N(posterior mean, diag(c^2 * posterior marginal variances)): amortized, factorized, and
    exact in each dimension's mean; with ``c = 1`` it misses only the posterior's correlations."""

    def __init__(self, model, c=1.0):
        self.model, self.c = model, c

    def __call__(self, x):
        post = self.model.posterior(x)
        scale = self.c * post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(post.loc, scale).to_event(1))

    def expected_kl_from_posterior(self):
        """E_x KL(p(z|x) || q(z|x)), the same for every x: 0.5 (tr(D^-1 S) - k + log det D - log det S)."""
        cov = self.model.posterior(torch.zeros(1, DATA_DIM, dtype=torch.float64)).covariance_matrix[0].detach()
        diag = self.c ** 2 * cov.diagonal()
        k = cov.shape[0]
        return 0.5 * ((cov.diagonal() / diag).sum() - k + diag.log().sum() - torch.logdet(cov)).item()


@pytest.fixture
def case(float64):
    g = torch.Generator().manual_seed(0)
    weight = torch.tensor([[1.0, 0.8], [0.9, 1.0], [0.2, -0.3], [0.5, 0.6]], dtype=torch.float64)
    model = _model(weight)
    x, _ = model.sample(2000, generator=g)
    return model, x


def test_mutual_information_of_the_exact_posterior_is_the_linear_gaussian_value(case):
    # N = 2000 data, I = 0.880 nats: over 40 repeated data sets the estimates averaged 0.883 +- 0.003
    # (the finite-N bias is below 0.01 nats, under the standard error of 0.021), and their spread
    # (0.0215) matched the reported standard error (0.0215), so 3 SE bounds the error.
    model, x = case
    result = collapse_diagnostics(model.model, model.exact_guide, x, seed=1)
    exact = _exact_mi(model)
    assert result.mutual_information <= result.log_num_data
    assert abs(result.mutual_information - exact) < 3 * result.mi_se, (result.mutual_information, exact)
    # the exact guide makes Barber & Agakov's bound tight: equal within its standard error
    assert abs(result.mi_lower_bound - exact) < 3 * result.mi_lower_bound_se, (result.mi_lower_bound, exact)
    assert 0.005 < result.mi_se < 0.05


def test_barber_agakov_bound_is_below_with_an_imperfect_guide(case):
    model, x = case
    guide = DiagonalGuide(model, c=1.5)
    result = collapse_diagnostics(model.model, guide, x, seed=2)
    exact, gap = _exact_mi(model), guide.expected_kl_from_posterior()
    # the bound equals I - E KL(p(z|x) || q(z|x)); the gap is far outside the error bars
    assert abs(result.mi_lower_bound - (exact - gap)) < 3 * result.mi_lower_bound_se
    assert gap > 10 * result.mi_lower_bound_se
    assert result.mi_lower_bound < exact - 5 * result.mi_lower_bound_se


def test_ignored_dimensions_are_inactive_and_kl_per_dim_is_analytic(float64):
    # columns 2 and 3 of W are zero: the decoder ignores those latents, and the posterior (hence the
    # diagonal guide) is exactly the prior on them
    weight = torch.zeros(DATA_DIM, 4, dtype=torch.float64)
    weight[:, :2] = torch.tensor([[1.0, 0.8], [0.9, 1.0], [0.2, -0.3], [0.5, 0.6]])
    model = _model(weight)
    x, _ = model.sample(300, generator=torch.Generator().manual_seed(3))
    guide = DiagonalGuide(model)
    result = collapse_diagnostics(model.model, guide, x, batch_size=128, seed=0)
    assert result.active_mask.tolist() == [True, True, False, False]
    assert result.active_units == 2 and result.kl_analytic
    post = model.posterior(x)
    loc, var = post.loc.detach(), post.covariance_matrix.diagonal(dim1=-2, dim2=-1).detach()
    assert torch.allclose(result.unit_variances, loc.var(0), rtol=0, atol=1e-12)
    expected = (0.5 * (loc ** 2 + var - 1 - var.log())).mean(0)  # KL(N(m, s^2) || N(0, 1)) per dimension
    assert torch.allclose(result.kl_per_dim, expected, rtol=0, atol=1e-10)
    assert result.kl_per_dim[2:].abs().max() < 1e-12
    assert abs(result.kl_per_dim.sum().item() - result.rate) < 1e-10


def test_rate_and_distortion_add_up_to_the_elbo_of_the_same_draws(case):
    model, x = case
    guide = DiagonalGuide(model, c=1.5)
    n = len(x)
    result = collapse_diagnostics(model.model, guide, x, batch_size=n, seed=5, mutual_information=False)
    torch.manual_seed(5)  # the diagnostics seed their draws the same way (one batch, as the loss)
    elbo = -get_objective("meanfield").loss(model.model, guide, x) / n  # analytic KL, as the diagnostics
    assert abs(-(result.rate + result.distortion) - elbo) < 1e-10
    assert result.elbo == -(result.rate + result.distortion)
    # with the exact guide (a MultivariateNormal) the KL is sampled, as in the plain ELBO
    sampled = collapse_diagnostics(model.model, model.exact_guide, x, batch_size=n, seed=5,
                                   mutual_information=False)
    torch.manual_seed(5)
    elbo = -get_objective("elbo").loss(model.model, model.exact_guide, x) / n
    assert not sampled.kl_analytic and sampled.kl_per_dim is None
    assert abs(-(sampled.rate + sampled.distortion) - elbo) < 1e-10


def test_bernoulli_latents_have_analytic_kl_per_dim(float64):
    model = BernoulliLatentModel(input_shape=(6,), latent_dim=3).double()
    with torch.no_grad():
        model.prior_logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.bernoulli(torch.full((64, 6), 0.3, dtype=torch.float64))
    result = collapse_diagnostics(model.model, model.guide, x, seed=0)
    q = torch.sigmoid(model.encoder(x)).detach()
    p = torch.sigmoid(model.prior_logits).detach()
    expected = (q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()).mean(0)
    assert result.kl_analytic
    assert torch.allclose(result.kl_per_dim, expected, rtol=0, atol=1e-10)
    assert torch.allclose(result.unit_variances, q.var(0), rtol=0, atol=1e-12)
    assert result.mutual_information <= result.log_num_data + 1e-12
    images, values = latent_traversal(model.model, model.guide, x[:1], dims=[0, 2])
    assert values.tolist() == [[0.0, 0.0], [1.0, 1.0]]  # the bit off, then on
    z = q[:1].repeat(2, 1)
    z[:, 2] = torch.tensor([0.0, 1.0])
    assert torch.allclose(images[1], torch.sigmoid(model.decoder(z)).detach(), rtol=0, atol=1e-12)


def test_traversal_varies_one_dimension_over_prior_quantiles(case):
    model, x = case
    quantiles = (0.1, 0.5, 0.9)
    images, values = latent_traversal(model.model, DiagonalGuide(model), x[:1], dims=[1], quantiles=quantiles)
    levels = torch.tensor([math.sqrt(2) * torch.erfinv(torch.tensor(2 * q - 1)).item() for q in quantiles])
    assert torch.allclose(values[:, 0], levels.double(), atol=1e-10)
    z = model.posterior(x[:1]).loc.detach().repeat(3, 1)
    z[:, 1] = levels
    assert images.shape == (1, 3, DATA_DIM)
    assert torch.allclose(images[0], (z @ model.weight.T + model.bias).detach(), rtol=0, atol=1e-12)


def test_a_site_outside_the_pair_is_named(case):
    model, x = case
    with pytest.raises(ValueError, match="no latent site 'u'"):
        collapse_diagnostics(model.model, model.exact_guide, x[:10], site="u")
