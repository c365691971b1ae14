"""A whole trained model saves and loads in one call, whatever names ``fit`` gave its modules."""
import subprocess
import sys

import pytest
import torch

import pyro_lvm
from conftest import REPO
from pyro_lvm.errors import CheckpointError, UsageError
from pyro_lvm.models import VAE, BernoulliLatentModel
from pyro_lvm.objectives import get_objective
from pyro_lvm.runs import load_model, save_model
from pyro_lvm.train import fit


def _data(n=48):
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(0))


def _log_weights(model, x, seed=3):
    torch.manual_seed(seed)
    return get_objective("iwae", num_particles=4).log_weights(model.model, model.guide, x).detach()


@pytest.mark.parametrize("names", [{"net": "vae"}, {"model": "vae"}, None])
def test_a_fit_checkpoint_loads_under_any_module_name(names, tmp_path):
    torch.manual_seed(0)
    vae = VAE(latent_dim=3, hidden=(16,))
    modules = None if names is None else {name: vae for name in names}
    fit(vae.model, vae.guide, "elbo", _data(), epochs=1, batch_size=16, progress=False, modules=modules,
        checkpoint=str(tmp_path / "ck.pt"))
    loaded = load_model(tmp_path / "ck.pt")
    assert type(loaded) is VAE and not loaded.training and loaded.config == vae.config
    assert torch.equal(_log_weights(loaded, _data(8)), _log_weights(vae.eval(), _data(8)))


@pytest.mark.parametrize("make", [lambda: VAE(latent_dim=2, hidden=(8,), arch="conv", channels=(4, 8)),
                                  lambda: BernoulliLatentModel(latent_dim=5, decoder_hidden=(7,), baseline="both")])
def test_save_model_then_load_model_in_a_fresh_process(make, tmp_path):
    torch.manual_seed(0)
    model = make().eval()
    path = pyro_lvm.save_model(model, tmp_path / "saved")
    assert path.endswith("checkpoint.pt") and (tmp_path / "saved" / "config.json").exists()
    expected = _log_weights(model, _data(6))
    torch.save(expected, tmp_path / "expected.pt")
    code = ("import sys, torch, pyro_lvm\n"
            "from pyro_lvm.objectives import get_objective\n"
            "x = torch.bernoulli(torch.full((48, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(0))[:6]\n"
            "model = pyro_lvm.load_model(sys.argv[1])\n"
            "torch.manual_seed(3)\n"
            "log_w = get_objective('iwae', num_particles=4).log_weights(model.model, model.guide, x).detach()\n"
            "assert torch.equal(log_w, torch.load(sys.argv[2], weights_only=True))\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "saved"), str(tmp_path / "expected.pt")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]


def test_what_cannot_be_rebuilt_is_named(tmp_path):
    with pytest.raises(UsageError, match="save_model saves the package's models"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x")
    from pyro_lvm.guides import AmortizedNormalGuide
    from pyro_lvm.models import LinearGaussian
    from pyro_lvm.nn import MLPEncoder

    model, guide = LinearGaussian(4, 2), AmortizedNormalGuide(MLPEncoder((4,), hidden=(), latent_dim=2))
    fit(model.model, guide, "elbo", torch.randn(32, 4), epochs=1, batch_size=16, progress=False,
        modules={"model": model, "guide": guide}, checkpoint=str(tmp_path / "ck.pt"))
    with pytest.raises(CheckpointError, match="holds no module that can be rebuilt"):
        load_model(tmp_path / "ck.pt")


def test_a_vqvae_saves_with_its_prior(tmp_path):
    from pyro_lvm.runs import load_run
    from pyro_lvm.vqvae import VQVAE, CodePrior

    torch.manual_seed(0)
    model = VQVAE(num_codes=8).eval()
    prior = CodePrior(model.num_codes, model.grid_shapes, 8, 2).eval()
    save_model(model, tmp_path / "vq", prior=prior)
    loaded, state = load_run(tmp_path / "vq")
    images = torch.rand(2, 1, 28, 28)
    codes = model.encode(images)
    assert all(torch.equal(a, b) for a, b in zip(loaded.encode(images), codes))
    assert all(torch.equal(a, b) for a, b in zip(state["prior"](codes), prior(codes)))
    with pytest.raises(UsageError, match="exists; pass overwrite=True"):
        save_model(model, tmp_path / "vq")
    with pytest.raises(UsageError, match="prior= is saved with a VQ-VAE only"):
        save_model(VAE(latent_dim=2, hidden=(4,)), tmp_path / "vae", prior=prior)
