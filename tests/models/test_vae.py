"""The VAE pair: shapes, likelihood constants and the errors for bad data."""
import math

import pyro
import pytest
import torch

from pyro_lvm.models import VAE, GaussianLikelihood
from pyro_lvm.objectives import get_objective


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("objective", ["elbo", "meanfield", "iwae"])
def test_every_objective_runs_with_every_arch(arch, objective):
    vae = VAE(arch=arch, latent_dim=4, hidden=(16,), channels=(4, 8), conv_hidden=16)
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.3))
    loss = get_objective(objective, num_particles=3).differentiable_loss(vae.model, vae.guide, x)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in vae.encoder.parameters())
    assert vae.sample(5).shape == (5, 1, 28, 28)
    assert vae.reconstruct(x).shape == x.shape


def test_conv_handles_32x32_rgb():
    vae = VAE(arch="conv", input_shape=(3, 32, 32), latent_dim=4, channels=(4, 8), conv_hidden=16,
              likelihood="gaussian")
    x = torch.rand(2, 3, 32, 32)
    assert math.isfinite(get_objective("iwae", num_particles=2).loss(vae.model, vae.guide, x))


def test_bernoulli_rejects_grayscale_with_the_fix():
    vae = VAE(latent_dim=2, hidden=(8,))
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match="binarize"):
        get_objective("elbo").loss(vae.model, vae.guide, x)
    with pytest.raises(ValueError, match="binarize"):
        vae.validate_data(x)


def test_wrong_shape_is_named():
    vae = VAE(latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match=r"expected a batch of shape \(N, 1, 28, 28\)"):
        get_objective("elbo").loss(vae.model, vae.guide, torch.zeros(4, 784))


def test_gaussian_likelihood_is_a_normalised_sum_over_pixels(float64):
    lik = GaussianLikelihood(scale=0.3, learn_scale=False)
    loc, x = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    expected = (-0.5 * ((x - loc) / 0.3) ** 2 - math.log(0.3) - 0.5 * math.log(2 * math.pi)).sum((1, 2, 3))
    assert torch.allclose(lik(loc, 3).log_prob(x), expected)


def test_gaussian_vae_learns_its_scale():
    from pyro_lvm.train import fit

    vae = VAE(latent_dim=2, hidden=(8,), likelihood="gaussian", gaussian_scale=2.0)
    x = 0.5 + 0.05 * torch.randn(64, 1, 28, 28)  # residuals of ~0.05, far below the initial scale of 2
    fit(vae.model, vae.guide, "elbo", x, epochs=20, batch_size=64, lr=0.05, progress=False)
    assert vae.likelihood.scale.item() < 1.0


def test_stock_svi_trains_the_networks_by_default():
    vae = VAE(latent_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), pyro.infer.Trace_ELBO())
    before = vae.encoder.head.loc.weight.detach().clone()
    svi.step(x)
    assert not torch.equal(before, vae.encoder.head.loc.weight)
