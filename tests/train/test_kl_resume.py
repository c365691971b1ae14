"""KL schedules run on fit's global step: the recorded beta, and an exact resume mid-schedule."""
import pytest
import torch

from pyro_lvm.models import VAE
from pyro_lvm.objectives import Cyclical, LinearWarmup, get_objective
from pyro_lvm.train import fit


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.2), generator=g)


def _vae():
    torch.manual_seed(1)
    return VAE(latent_dim=3, hidden=(16,))


# 96 images in batches of 32: 3 steps per epoch, 18 in 6 epochs
SCHEDULES = {
    "warmup": lambda: get_objective("elbo", beta=LinearWarmup(steps=10, beta0=0.1)),
    "cyclical-free-bits": lambda: get_objective("meanfield", beta=Cyclical(total_steps=18, cycles=2),
                                                free_bits=0.05),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_resume_mid_schedule_is_exact(tmp_path, name):
    x, test = _data(), _data(32, seed=1)

    def run(epochs, path, resume=False):
        module = _vae()
        objective = SCHEDULES[name]()
        result = fit(module.model, module.guide, objective, x, test, epochs=epochs, batch_size=32, progress=False,
                     seed=3, checkpoint=str(tmp_path / path), resume=resume)
        return module, result, objective

    straight, full, objective = run(6, "a.pt")
    run(2, "b.pt")  # stops at step 6, inside the warm-up and inside the first cycle
    resumed, out, _ = run(6, "b.pt", resume=True)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    for ours, theirs in zip(out.history, full.history):
        for key in ("beta", "train_loss", "test_loss", "test_elbo"):
            assert ours[key] == theirs[key], key
    # each epoch records the weight of its last step (steps 2, 5, ..., 17)
    assert [r["beta"] for r in full.history] == [objective.kl_control.schedule(3 * e + 2) for e in range(6)]


def test_beta_schedule_reaches_the_loss(tmp_path):
    """beta = 0 on the first step (a warm-up from 0) trains on the reconstruction term alone:
    one step from the same start equals one step of the objective with beta = 0."""
    x = _data(32)

    def one_step(objective):
        module = _vae()
        fit(module.model, module.guide, objective, x, epochs=1, batch_size=32, progress=False, seed=3)
        return [p.detach().clone() for p in module.parameters()]

    warm = one_step(get_objective("elbo", beta=LinearWarmup(steps=100)))
    for a, b in zip(warm, one_step(get_objective("elbo", beta=0.0))):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(warm, one_step(get_objective("elbo"))))
