"""The VAE with the autoregressive (gated PixelCNN) decoder: an exact, normalised p(x|z) whose
samples follow it, every objective, the log-likelihood, checkpoints and the command line."""
import itertools

import numpy as np
import pyro
import pytest
import torch

from pyro_lvm.cli import run
from pyro_lvm.errors import UsageError
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.models import VAE, VAEConfig
from pyro_lvm.models.autoregressive import AutoregressiveBernoulli
from pyro_lvm.objectives import get_objective
from pyro_lvm.runs.saved import load_model, save_model
from tests.cli_helpers import fails


def small_vae(shape=(1, 4, 4), **overrides):
    torch.manual_seed(0)
    return VAE(input_shape=shape, latent_dim=3, hidden=(8,), decoder="pixelcnn", pixelcnn_layers=2,
               pixelcnn_channels=6, **overrides).double()


def all_images(shape):
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=int(torch.Size(shape).numel()))),
                        dtype=torch.float64)
    return bits.reshape(-1, *shape)


def test_p_x_given_z_is_normalised_and_sampled_at_its_probabilities():
    vae = small_vae(shape=(1, 2, 3))
    z = torch.randn(2, 3, dtype=torch.float64)
    images = all_images((1, 2, 3))  # all 64 binary images
    with torch.no_grad():
        log_p = AutoregressiveBernoulli(vae.decoder, z[:, None]).log_prob(images)  # (2, 64)
    assert log_p.shape == (2, 64)
    assert torch.allclose(log_p.logsumexp(1), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    # draws follow p(x|z): frequencies of the 64 images within 5 binomial standard errors
    torch.manual_seed(1)
    n = 20000
    draws = AutoregressiveBernoulli(vae.decoder, z[0]).sample((n,))
    index = (draws.flatten(1) * 2 ** torch.arange(5, -1, -1, dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(index, minlength=64).double() / n
    p = log_p[0].exp()
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-3).all()


@pytest.mark.parametrize("objective,particles", [("elbo", 1), ("iwae", 3), ("renyi", 3), ("tracegraph", 1)])
def test_every_objective_gives_a_finite_loss_and_decoder_gradients(objective, particles):
    vae = small_vae()
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.3, dtype=torch.float64))
    loss = get_objective(objective, num_particles=particles).differentiable_loss(vae.model, vae.guide, x)
    assert torch.isfinite(loss)
    loss.backward()
    stack_grad = vae.decoder.stack[0].horizontal.weight.grad
    assert torch.isfinite(stack_grad).all() and stack_grad.abs().sum() > 0
    assert vae.decoder.latent_map.net[0].weight.grad.abs().sum() > 0  # z reaches the decoder's map


def test_log_likelihood_predictive_sample_and_reconstruct():
    vae = small_vae()
    x = torch.bernoulli(torch.full((4, 1, 4, 4), 0.3, dtype=torch.float64))
    ll = log_likelihood(vae.model, vae.guide, x, num_samples=30, batch_size=4, progress=False, seed=0)
    assert torch.isfinite(ll.per_datum).all() and ll.mean < 0
    draws = pyro.infer.Predictive(vae.model, num_samples=2, parallel=True)(None, batch_size=3)["x"]
    assert draws.shape == (2, 3, 1, 4, 4) and set(draws.unique().tolist()) <= {0.0, 1.0}
    samples, recon = vae.sample(3), vae.reconstruct(x)
    assert samples.shape == (3, 1, 4, 4) and ((samples > 0) & (samples < 1)).all()
    loc, _ = vae.encoder(x)
    assert torch.allclose(recon, torch.sigmoid(vae.decoder(loc, x)))


def test_checkpoint_round_trip_gives_identical_log_weights(tmp_path):
    vae = small_vae()
    x = torch.bernoulli(torch.full((4, 1, 4, 4), 0.3, dtype=torch.float64))
    save_model(vae, str(tmp_path / "run"))
    loaded = load_model(str(tmp_path / "run")).double()  # the checkpoint rebuilds float32 modules
    assert loaded.config == vae.config
    before = log_likelihood(vae.model, vae.guide, x, num_samples=7, batch_size=4, progress=False, seed=3)
    after = log_likelihood(loaded.model, loaded.guide, x, num_samples=7, batch_size=4, progress=False, seed=3)
    assert torch.equal(before.per_datum, after.per_datum)


def test_old_configs_load_with_the_factorised_decoder():
    old = {k: v for k, v in VAEConfig().to_dict().items() if not k.startswith(("decoder", "pixelcnn"))}
    assert VAE.from_config(old).config.decoder == "mlp"


def test_pixelcnn_decoder_needs_bernoulli_data():
    with pytest.raises(UsageError, match="bernoulli"):
        VAE(decoder="pixelcnn", likelihood="gaussian")
    with pytest.raises(UsageError, match="'mlp' or 'pixelcnn'"):
        VAE(decoder="pixel")


def test_cli_trains_a_pixelcnn_vae(tmp_path, capsys):
    # 8x8 images of one's own: the run's timed evaluation pilot scores 10^4 images, slow at 28x28
    data, out = tmp_path / "tiny.npz", tmp_path / "run"
    g = np.random.default_rng(0)
    np.savez(data, train=(g.random((64, 1, 8, 8)) < 0.3).astype(np.float32),
             test=(g.random((16, 1, 8, 8)) < 0.3).astype(np.float32))
    run(["train", "vae", "--smoke", "--no-progress", "--data", str(data), "--decoder", "pixelcnn",
         "--pixelcnn-layers", "2", "--pixelcnn-channels", "8", "--eval-samples", "2", "--eval-images", "4",
         "--out", str(out)])
    model = load_model(str(out))
    assert model.config.decoder == "pixelcnn" and model.config.pixelcnn_layers == 2
    assert (out / "samples.png").exists()
    fails(["train", "vae", "--smoke", "--decoder", "pixelcnn", "--likelihood", "gaussian", "--out",
           str(tmp_path / "gaussian")], capsys, "bernoulli likelihood")
