"""``pyro.infer.Predictive`` on the models: ``model(None, batch_size=N)`` draws data from the model.

Each check compares the draws with moments computed another way (closed form, or the model's
own mean images) within a few standard errors.
"""
import pytest
import torch
from pyro.infer import Predictive

from pyro_lvm.models import VAE, BayesianGaussianMixture, BernoulliLatentModel, GaussianMixture, LinearGaussian
from pyro_lvm.models.gmm_em import random_params

Z = 4.5  # standard errors: many entries are checked at once


def test_linear_gaussian_draws_match_the_marginal(float64):
    model = LinearGaussian(3, 2, weight=torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.0]]),
                           bias=torch.tensor([0.5, -1.0, 2.0]), noise_scale=0.4)
    draws = Predictive(model.model, num_samples=400)(None, batch_size=50)
    assert draws["x"].shape == (400, 50, 3) and draws["z"].shape == (400, 50, 2)
    x = draws["x"].reshape(-1, 3)
    n = len(x)
    cov = model.marginal().covariance_matrix.detach()  # W W^T + sigma^2 I
    assert torch.allclose(cov, model.weight @ model.weight.T + 0.16 * torch.eye(3))
    assert ((x.mean(0) - model.bias).abs() < Z * (cov.diagonal() / n).sqrt()).all()
    centred = x - model.bias
    empirical = centred.T @ centred / n
    # Var[x_i x_j] = C_ii C_jj + C_ij^2 for zero-mean Gaussians
    se = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov ** 2) / n).sqrt()
    assert ((empirical - cov).abs() < Z * se).all(), (empirical, cov)


def test_vae_draws_are_binary_images_around_the_models_mean():
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden=(8,))
    draws = Predictive(vae.model, num_samples=200)(None, batch_size=20)
    x = draws["x"]
    assert x.shape == (200, 20, 1, 28, 28) and draws["z"].shape == (200, 20, 2)
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(x[0], x[1])
    # E[x] = E_z[sigmoid(decoder(z))], estimated independently from the model's mean images
    mean = vae.sample(20000).mean(0)  # its own Monte Carlo error is below 0.004
    n = x.shape[0] * x.shape[1]  # draws per pixel
    assert ((x.mean((0, 1)) - mean).abs() < Z * (mean * (1 - mean) / n).sqrt() + 0.01).all()


def test_gaussian_vae_draws_have_the_learned_scale():
    vae = VAE(latent_dim=2, hidden=(8,), likelihood="gaussian", gaussian_scale=0.3, input_shape=(1, 4, 4))
    draws = Predictive(vae.model, num_samples=500)(None, batch_size=10)["x"]
    assert draws.shape == (500, 10, 1, 4, 4)
    # x - E[x|z] ~ N(0, 0.3^2): pair the draws with their own z through a trace
    import pyro.poutine as poutine

    trace = poutine.trace(vae.model).get_trace(None, batch_size=5000)
    residual = trace.nodes["x"]["value"] - vae.decoder(trace.nodes["z"]["value"])
    assert residual.std().item() == pytest.approx(0.3, rel=0.02)


def test_guide_conditioned_predictive_still_works():
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.full((5, 1, 28, 28), 0.3))
    draws = Predictive(vae.model, guide=vae.guide, num_samples=3000, return_sites=("z",))(x)
    assert set(draws) == {"z"} and draws["z"].shape == (3000, 5, 2)
    loc, scale = vae.encoder(x)
    assert ((draws["z"].mean(0) - loc).abs() < Z * scale / 3000 ** 0.5).all()
    observed = Predictive(vae.model, guide=vae.guide, num_samples=2)(x)["x"]
    assert torch.equal(observed[0], x) and torch.equal(observed[1], x)  # observed stays observed


def test_bernoulli_latent_model_draws():
    torch.manual_seed(0)
    m = BernoulliLatentModel(input_shape=(1, 4, 4), latent_dim=3, decoder_hidden=(8,))
    with torch.no_grad():
        m.prior_logits.copy_(torch.tensor([-2.0, 0.0, 1.5]))
    draws = Predictive(m.model, num_samples=300)(None, batch_size=20)
    assert draws["x"].shape == (300, 20, 1, 4, 4) and draws["z"].shape == (300, 20, 3)
    z = draws["z"].reshape(-1, 3)
    beta = torch.sigmoid(m.prior_logits.detach())
    assert ((z.mean(0) - beta).abs() < Z * (beta * (1 - beta) / len(z)).sqrt()).all()
    # given the drawn z, x is Bernoulli(sigmoid(decoder(z)))
    p = torch.sigmoid(m.decoder(z)).reshape(-1, 1, 4, 4)
    x = draws["x"].reshape(-1, 1, 4, 4)
    assert ((x - p).mean(0).abs() < Z * (p * (1 - p)).mean(0).div(len(x)).sqrt()).all()


def test_gaussian_mixture_draws_follow_weights_and_components(float64):
    mixture = GaussianMixture.from_params(random_params(3, 2, "diag", generator=torch.Generator().manual_seed(0)),
                                          reg_covar=0.0)
    params = mixture.params()
    draws = Predictive(mixture.model, num_samples=100)(None, batch_size=60)
    assert draws["x"].shape == (100, 60, 2) and draws["assignment"].shape == (100, 60)
    z, x = draws["assignment"].reshape(-1), draws["x"].reshape(-1, 2)
    n = len(z)
    freq = torch.bincount(z, minlength=3).double() / n
    assert ((freq - params.weights).abs() < Z * (params.weights * (1 - params.weights) / n).sqrt()).all()
    for k in range(3):
        xs = x[z == k]
        assert ((xs.mean(0) - params.locs[k]).abs() < Z * params.scale[k] / len(xs) ** 0.5).all()
        assert ((xs.std(0) / params.scale[k] - 1).abs() < Z / (2 * len(xs)) ** 0.5).all()


def test_bayesian_mixture_draws_from_its_prior():
    bayes = BayesianGaussianMixture(2, 3, "full")
    draws = Predictive(bayes.model, num_samples=4)(None, batch_size=7)
    assert draws["x"].shape == (4, 7, 3) and draws["weights"].shape == (4, 1, 2)  # Predictive pads global sites
    assert torch.allclose(draws["weights"].sum(-1), torch.ones(4, 1))


@pytest.mark.parametrize("make", [lambda: VAE(latent_dim=2, hidden=(8,)).model,
                                  lambda: LinearGaussian(3, 2).model,
                                  lambda: BernoulliLatentModel(latent_dim=2).model,
                                  lambda: GaussianMixture(2, 2).model])
def test_generating_needs_a_batch_size(make):
    model = make()
    with pytest.raises(ValueError, match="batch_size=N"):
        model(None)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        model(None, batch_size=2.5)
