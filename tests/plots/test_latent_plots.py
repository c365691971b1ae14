"""Latent manifold, scatter and interpolation of a tiny trained VAE; grids and curves; their PNG sizes."""
import pyro
import pytest
import torch

from pyro_lvm.errors import UsageError
from pyro_lvm.models import VAE, BernoulliLatentModel
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import (latent_interpolation, latent_manifold, plot_history, plot_interpolation,
                            plot_latent_scatter, plot_manifold, posterior_means, save_reconstruction_grid)
from pyro_lvm.plots.latent import MANIFOLD_QUANTILES, principal_components, slerp
from pyro_lvm.train import fit
from png_helpers import png_file_size

SIDE = 6


def _grid_pixels(rows, columns, title=True):
    """save_image_grid's PNG: 2 pixels per grid pixel (2-pixel padding), 30 more rows for a title."""
    width, height = columns * (SIDE + 2) + 2, rows * (SIDE + 2) + 2
    return 2 * width, 2 * height + (30 if title else 0)


@pytest.fixture
def trained(float64):
    x = (torch.rand(64, 1, SIDE, SIDE) < 0.3).double()
    x[:32, :, :3] = 1.0  # two kinds of image, so that the latent means spread out
    vae = VAE(input_shape=(1, SIDE, SIDE), latent_dim=3, hidden=(16,))
    fit(vae.model, vae.guide, get_objective("elbo"), x, epochs=3, batch_size=16, lr=1e-2, progress=False)
    return vae.eval(), x


def test_the_manifold_decodes_exactly_the_prior_quantiles_it_claims(trained, tmp_path):
    vae, x = trained
    images, z, dims = latent_manifold(vae.model, vae.guide, x, dims=(2, 0), size=5)
    assert images.shape == (5, 5, 1, SIDE, SIDE) and z.shape == (5, 5, 3) and dims == [2, 0]
    levels = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(*MANIFOLD_QUANTILES, 5, dtype=torch.float64))
    for i in range(5):
        for j in range(5):
            assert torch.equal(z[i, j], torch.tensor([levels[j], 0.0, levels[i]]))  # the others at the median 0
            assert torch.allclose(images[i, j], vae.likelihood.mean(vae.decoder(z[i, j].unsqueeze(0)))[0],
                                  rtol=0, atol=1e-12)
    path = plot_manifold(images, dims, str(tmp_path / "manifold.png"))
    assert png_file_size(path) == _grid_pixels(5, 5)


def test_the_manifold_varies_the_most_active_dimensions_by_default(trained):
    vae, x = trained
    variances = posterior_means(vae.guide, x).var(0)
    _, _, dims = latent_manifold(vae.model, vae.guide, x, size=2)
    assert dims == sorted(torch.argsort(variances, descending=True)[:2].tolist())


def test_a_binary_latent_has_no_manifold_or_interpolation(float64):
    sbn = BernoulliLatentModel(input_shape=(1, SIDE, SIDE), latent_dim=3)
    x = torch.ones(4, 1, SIDE, SIDE)
    with pytest.raises(UsageError, match="continuous prior"):
        latent_manifold(sbn.model, sbn.guide, x)
    with pytest.raises(UsageError, match="continuous prior"):
        latent_interpolation(sbn.model, sbn.guide, x[:2], x[2:])


def test_scatter_of_posterior_means_by_class(trained, tmp_path):
    vae, x = trained
    means = posterior_means(vae.guide, x)
    scores, share = principal_components(means)
    assert scores.shape == (64, 2) and share.sum() <= 1 + 1e-12 and share[0] >= share[1]
    # projected variances are the top singular values' shares of the total
    total = (means - means.mean(0)).pow(2).sum()
    assert torch.allclose(scores.pow(2).sum(0) / total, share)
    labels = torch.arange(64) // 32
    path = plot_latent_scatter(means, labels, str(tmp_path / "scatter.png"))
    assert png_file_size(path) == (500, 450)


def test_slerp_keeps_the_norm_between_orthogonal_vectors_of_equal_norm():
    z0, z1 = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    t = torch.linspace(0, 1, 7)
    path = slerp(z0, z1, t)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    assert torch.allclose(path.norm(dim=-1), torch.full((7, 1), 2.0))
    assert torch.allclose(slerp(z0, 3 * z0, t)[:, 0], (1 - t).unsqueeze(-1) * z0 + t.unsqueeze(-1) * 3 * z0)


def test_interpolation_starts_and_ends_at_the_posterior_means(trained, tmp_path):
    vae, x = trained
    paths = latent_interpolation(vae.model, vae.guide, x[:2], x[32:34], steps=4)
    assert set(paths) == {"linear", "spherical"}
    means0, means1 = posterior_means(vae.guide, x[:2]), posterior_means(vae.guide, x[32:34])
    for images, z in paths.values():
        assert images.shape == (2, 4, 1, SIDE, SIDE)
        assert torch.allclose(z[:, 0], means0) and torch.allclose(z[:, -1], means1)
        assert torch.allclose(images[:, 0], vae.likelihood.mean(vae.decoder(means0)), atol=1e-12)
    path = plot_interpolation(paths, x[:2], x[32:34], str(tmp_path / "interpolation.png"))
    assert png_file_size(path) == _grid_pixels(4, 6)  # 2 pairs x 2 paths; image, 4 steps, image


def test_reconstruction_pairs_and_integer_epoch_ticks(tmp_path):
    x = torch.rand(6, 1, SIDE, SIDE)
    path = save_reconstruction_grid(x, 1 - x, str(tmp_path / "reconstructions.png"), pairs_per_row=3)
    assert png_file_size(path) == _grid_pixels(2, 6)
    history = [{"epoch": e, "train_loss": 10.0 / e} for e in (1, 2, 3)]
    import matplotlib.pyplot as plt

    calls = []
    original = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        calls.append([t for t in fig.axes[0].get_xticks() if 1 <= t <= 3])
        return original(fig, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        path = plot_history(history, str(tmp_path / "loss.png"))
    finally:
        plt.Figure.savefig = original
    assert calls and all(float(t).is_integer() for t in calls[0])
    assert png_file_size(path) == (500, 350)
