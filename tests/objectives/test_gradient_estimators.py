"""Gradient estimators: doubly reparameterised (DReG) and sticking-the-landing (STL), float64.

Exact answers: the ELBO's closed-form gradient (STL is unbiased for it); the ordinary bound's
gradient on the *same* draws for the model (DReG leaves the decoder's gradient alone); paired
differences with the ordinary estimator, whose mean must vanish (DReG is unbiased for the
same bound); zero for the guide at the exact posterior (path gradients of a constant
log-weight). Tolerances: 4.5 standard errors over the repeats.
"""
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions.testing import fakes
from torch import nn

from linear_gaussian_cases import ShiftedGuide, analytic_elbo, make_case
from pyro_lvm.objectives import get_objective


def _flat_grad(loss, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])


def _paired(objectives, model, guide, x, params, repeats):
    """Gradients of each objective on the same draws (same seed per repeat), stacked per objective."""
    draws = [[] for _ in objectives]
    for r in range(repeats):
        for i, objective in enumerate(objectives):
            torch.manual_seed(r)
            draws[i].append(_flat_grad(objective.differentiable_loss(model, guide, x), params))
    return [torch.stack(d) for d in draws]


@pytest.fixture
def case(float64):
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc + 0.4, 1.6 * scale)
    return model, guide, x


@pytest.mark.parametrize("name, alpha", [("iwae", None), ("renyi", 0.5), ("renyi", -1.0)])
def test_dreg_has_the_expected_gradient_of_the_bound(case, name, alpha):
    model, guide, x = case
    options = {} if alpha is None else {"alpha": alpha}
    standard, dreg = (get_objective(name, num_particles=8, gradient=g, **options) for g in ("standard", "dreg"))
    encoder, decoder = [guide.loc, guide.log_scale], [model.weight, model.bias, model.log_noise_scale]
    torch.manual_seed(0)
    value = standard.loss(model.model, guide, x)
    torch.manual_seed(0)
    assert dreg.loss(model.model, guide, x) == pytest.approx(value, rel=1e-14)
    std_dec, dreg_dec = _paired([standard, dreg], model.model, guide, x, decoder, 5)
    assert torch.allclose(std_dec, dreg_dec, rtol=1e-10, atol=1e-12)  # the decoder's gradient is the bound's
    std_enc, dreg_enc = _paired([standard, dreg], model.model, guide, x, encoder, 400)
    diff = dreg_enc - std_enc
    se = diff.std(0) / math.sqrt(len(diff))
    assert ((diff.mean(0).abs() / se).max() < 4.5)
    assert (dreg_enc.var(0).sum() < 0.5 * std_enc.var(0).sum())  # and it is the less noisy one


def test_stl_is_unbiased_for_the_elbo(case):
    model, guide, x = case
    params = [guide.loc, guide.log_scale, model.weight, model.bias, model.log_noise_scale]
    true = _flat_grad(-analytic_elbo(model, guide, x), params)
    for k in (1, 4):
        objective = get_objective("elbo", num_particles=k, gradient="stl")
        draws = torch.stack([_flat_grad(objective.differentiable_loss(model.model, guide, x), params)
                             for _ in range(400)])
        mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
        assert ((mean - true).abs() / se).max() < 4.5


@pytest.mark.parametrize("name, gradient", [("elbo", "stl"), ("tracegraph", "stl"), ("iwae", "stl"),
                                            ("iwae", "dreg"), ("renyi", "dreg")])
def test_path_gradients_vanish_for_the_guide_at_the_exact_posterior(float64, name, gradient):
    model, x, loc, scale = make_case(latent_dim=1)  # one latent: the posterior is in the guide's family
    guide = ShiftedGuide(loc, scale)
    encoder = [guide.loc, guide.log_scale]
    path = get_objective(name, num_particles=5, gradient=gradient)
    standard = get_objective(name, num_particles=5)
    path_draws, std_draws = _paired([path, standard], model.model, guide, x, encoder, 20)
    assert path_draws.abs().max() < 1e-10
    assert std_draws.std(0).min() > 1e-3  # the score term is what makes the ordinary estimate noisy


def test_encoder_signal_to_noise_falls_with_k_for_iwae_and_not_for_dreg(float64):
    # Rainforth et al. 2018, "Tighter variational bounds are not necessarily better", eq. 7: the
    # IWAE guide gradient's SNR is O(1/sqrt(K)); DReG's grows (Tucker et al. 2018, fig. 1)
    model, x, loc, scale = make_case(num_data=1)
    guide = ShiftedGuide(loc + 0.4, 1.6 * scale)
    encoder = [guide.loc, guide.log_scale]

    def snr(gradient, k):
        objective = get_objective("iwae", num_particles=k, gradient=gradient)
        draws = torch.stack([_flat_grad(objective.differentiable_loss(model.model, guide, x), encoder)
                             for _ in range(200)])
        return (draws.mean(0).abs() / draws.std(0)).mean().item()

    iwae_1, iwae_k = snr("standard", 1), snr("standard", 300)
    dreg_1, dreg_k = snr("dreg", 1), snr("dreg", 300)
    assert iwae_k < 0.3 * iwae_1, (iwae_1, iwae_k)
    assert dreg_k > 2 * dreg_1, (dreg_1, dreg_k)


class HierarchicalGuide(nn.Module):
    """q(z1) q(z2 | z1) per datum: the second site's parameters depend on the first sample."""

    def __init__(self, n):
        super().__init__()
        self.a = nn.Parameter(torch.linspace(-0.5, 0.5, n))
        self.log_s1 = nn.Parameter(torch.full((n,), -0.3))
        self.c = nn.Parameter(torch.tensor([0.2, 0.7]))
        self.log_s2 = nn.Parameter(torch.tensor(-0.5))

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.Normal(self.a, self.log_s1.exp()))
            pyro.sample("z2", dist.Normal(self.c[0] + self.c[1] * z1 + 0.3 * x, self.log_s2.exp()))


def _hierarchical_model(x):
    with pyro.plate("data", x.shape[0]):
        z1 = pyro.sample("z1", dist.Normal(0.0, 1.0))
        z2 = pyro.sample("z2", dist.Normal(z1, 1.0))
        pyro.sample("x", dist.Normal(z2, 0.5), obs=x)


@pytest.mark.parametrize("name, gradient", [("iwae", "dreg"), ("renyi", "dreg"), ("elbo", "stl")])
def test_path_gradients_are_unbiased_for_a_hierarchical_guide(float64, name, gradient):
    # the gradient reaching z1 through q(z2 | z1)'s parameters is part of the path, not the score
    x = torch.tensor([0.4, -1.3, 2.1])
    guide = HierarchicalGuide(3)
    params = list(guide.parameters())
    standard, path = get_objective(name, num_particles=6), get_objective(name, num_particles=6, gradient=gradient)
    std_draws, path_draws = _paired([standard, path], _hierarchical_model, guide, x, params, 600)
    diff = path_draws - std_draws
    se = diff.std(0) / math.sqrt(len(diff))
    assert (diff.mean(0).abs() / se).max() < 4.5


def test_estimators_that_do_not_apply_are_refused(case):
    model, guide, x = case
    with pytest.raises(ValueError, match="for the ELBO it is STL"):
        get_objective("elbo", gradient="dreg")
    with pytest.raises(ValueError, match="analytic KL"):
        get_objective("meanfield", gradient="stl")
    with pytest.raises(ValueError, match="one of"):
        get_objective("iwae", gradient="reinforce")

    def discrete_guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", fakes.NonreparameterizedNormal(guide.loc, 1.0).to_event(1))

    for name, gradient in (("elbo", "stl"), ("iwae", "dreg")):
        with pytest.raises(ValueError, match="needs reparameterised guide sites; site 'z'"):
            get_objective(name, num_particles=3, gradient=gradient).differentiable_loss(model.model, discrete_guide, x)

    def global_model(x):
        u = pyro.sample("u", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(u, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def global_guide(x):
        u = pyro.sample("u", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(u, 1.0))

    y = torch.zeros(4)
    with pytest.raises(ValueError, match="not implemented with global latent sites"):
        get_objective("iwae", num_particles=3, gradient="dreg").differentiable_loss(global_model, global_guide, y)
    get_objective("iwae", num_particles=3, gradient="stl").differentiable_loss(global_model, global_guide, y)
