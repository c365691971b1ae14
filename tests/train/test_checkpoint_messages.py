"""What fit says about its checkpoint when training stops or resumes."""
import pytest
import torch

from pyro_lvm.errors import NonFiniteLossError
from pyro_lvm.models import VAE
from pyro_lvm.train import fit


def _setup():
    torch.manual_seed(1)
    x = torch.bernoulli(torch.full((64, 1, 28, 28), 0.2), generator=torch.Generator().manual_seed(0))
    return VAE(latent_dim=3, hidden=(16,)), x


def test_a_divergence_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    vae, x = _setup()
    with torch.no_grad():
        vae.encoder.head.loc.bias.fill_(float("nan"))
    path = tmp_path / "ck.pt"
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1; training stopped and no checkpoint exists yet") as info:
        fit(vae.model, vae.guide, "elbo", x, epochs=2, batch_size=32, progress=False, checkpoint=str(path))
    assert "(epoch 0)" not in str(info.value) and not path.exists()


def test_resuming_prints_the_epoch(tmp_path, capsys):
    vae, x = _setup()
    path = str(tmp_path / "ck.pt")
    fit(vae.model, vae.guide, "elbo", x, epochs=2, batch_size=32, progress=False, checkpoint=path, resume=True)
    assert "resuming" not in capsys.readouterr().out
    fit(vae.model, vae.guide, "elbo", x, epochs=3, batch_size=32, progress=False, checkpoint=path, resume=True)
    assert f"resuming from epoch 2 ({path})" in capsys.readouterr().out
