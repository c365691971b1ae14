"""Importance-weighted bounds on a subsampled data plate (or under ``poutine.scale``), float64.

A minibatch of ``B`` of ``N`` data scales each datum's bound by ``N/B`` *after* its
log-sum-exp, which makes the minibatch estimate unbiased for the full data's sum of per-datum
bounds, itself below the exact ``log p(x)`` of the linear-Gaussian model. Tolerances: 4
standard errors over the repeats (subsample draws and particles).
"""
import math

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch

from linear_gaussian_cases import ShiftedGuide, make_case
from pyro_lvm.objectives import get_objective

Z = 4.0
N, B = 20, 2


def _subsampled_pair(model, guide):
    """The linear-Gaussian model and a per-datum guide over a plate subsampled at ``idx``."""

    def sub_model(x, idx):
        with pyro.plate("data", x.shape[0], subsample=idx):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([model.latent_dim]).to_event(1))
            pyro.sample("x", dist.Normal(z @ model.weight.T + model.bias, model.noise_scale).to_event(1),
                        obs=x[idx])

    def sub_guide(x, idx):
        with pyro.plate("data", x.shape[0], subsample=idx):
            pyro.sample("z", dist.Normal(guide.loc[idx], guide.log_scale[idx].exp()).to_event(1))

    return sub_model, sub_guide


@pytest.fixture
def case(float64):
    model, x, loc, scale = make_case(num_data=N)
    return model, x, ShiftedGuide(loc + 0.5, 1.8 * scale)


@pytest.mark.parametrize("name, options", [("iwae", {}), ("renyi", {"alpha": 0.5})])
def test_minibatch_bound_is_unbiased_for_the_full_data_bound_and_below_log_px(case, name, options):
    model, x, guide = case
    sub_model, sub_guide = _subsampled_pair(model, guide)
    objective = get_objective(name, num_particles=100, **options)
    log_px = model.log_prob(x).sum().item()
    everything = torch.arange(N)
    full, full_se = _mean_se([-objective.loss(sub_model, sub_guide, x, everything) for _ in range(100)])
    draws = [-objective.loss(sub_model, sub_guide, x, torch.randperm(N)[:B]) for _ in range(1000)]
    mini, mini_se = _mean_se(draws)
    assert abs(mini - full) < Z * math.hypot(mini_se, full_se), (mini, full)
    assert mini < log_px + Z * mini_se, (mini, log_px)  # scaling inside the log-sum-exp exceeds log p(x)
    assert full < log_px


def test_the_exact_posterior_gives_each_datum_its_log_px(float64):
    model, x, loc, scale = make_case(num_data=N, latent_dim=1)  # one latent: the posterior is diagonal
    guide = ShiftedGuide(loc, scale)
    sub_model, sub_guide = _subsampled_pair(model, guide)
    idx = torch.tensor([3, 11])
    for name in ("iwae", "renyi"):
        value = -get_objective(name, num_particles=9).loss(sub_model, sub_guide, x, idx)
        assert value == pytest.approx(N / B * model.log_prob(x[idx]).sum().item(), abs=1e-9)


def test_a_uniform_scale_multiplies_the_bound(case):
    model, x, guide = case
    scaled_model, scaled_guide = poutine.scale(model.model, scale=3.0), poutine.scale(guide, scale=3.0)
    for name in ("iwae", "renyi"):
        objective = get_objective(name, num_particles=6)
        torch.manual_seed(1)
        plain = objective.differentiable_loss(model.model, guide, x)
        plain_grad = torch.autograd.grad(plain, [guide.loc, model.weight])
        torch.manual_seed(1)
        scaled = objective.differentiable_loss(scaled_model, scaled_guide, x)
        scaled_grad = torch.autograd.grad(scaled, [guide.loc, model.weight])
        assert scaled.item() == pytest.approx(3.0 * plain.item(), rel=1e-12)
        for g1, g2 in zip(plain_grad, scaled_grad):
            assert torch.allclose(3.0 * g1, g2, rtol=1e-10)


def test_different_scales_within_a_datum_are_refused(case):
    model, x, guide = case
    with pytest.raises(ValueError, match="different scales"):
        get_objective("iwae").loss(poutine.scale(model.model, scale=0.5), guide, x)
    get_objective("elbo").loss(poutine.scale(model.model, scale=0.5), guide, x)  # the ELBO scales per site


def _mean_se(values):
    values = torch.tensor(values, dtype=torch.float64)
    return values.mean().item(), (values.std() / math.sqrt(len(values))).item()
