"""Every objective against exact answers on the linear-Gaussian model (float64).

Tolerances are ``4`` standard errors of the Monte Carlo mean over ``R`` repeats (two-sided
false-alarm rate ~6e-5 per check); seeds are fixed, so the tests are deterministic.
"""
import math

import pytest
import torch

from linear_gaussian_cases import ShiftedGuide, analytic_elbo, make_case
from pyro_lvm.objectives import get_objective

Z = 4.0


def _repeat(fn, repeats):
    values = torch.tensor([fn() for _ in range(repeats)], dtype=torch.float64)
    return values.mean().item(), (values.std() / math.sqrt(repeats)).item()


@pytest.fixture
def case(float64):
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc + 0.4, 1.6 * scale)
    return model, guide, x


def test_exact_posterior_guide_makes_every_bound_exact(float64):
    model, x, _, _ = make_case()
    log_px = model.log_prob(x).sum().item()
    for name, k in (("elbo", 1), ("elbo", 3), ("iwae", 7), ("renyi", 4)):
        loss = get_objective(name, num_particles=k).loss(model.model, model.exact_guide, x)
        assert -loss == pytest.approx(log_px, abs=1e-9), name


def test_elbo_and_meanfield_unbiased_for_analytic_elbo(case):
    model, guide, x = case
    exact = analytic_elbo(model, guide, x).item()
    for name in ("elbo", "meanfield"):
        objective = get_objective(name, num_particles=10)
        mean, se = _repeat(lambda: -objective.loss(model.model, guide, x), 400)
        assert abs(mean - exact) < Z * se, (name, mean, exact, se)
    # the analytic KL removes the prior/entropy noise: meanfield has the smaller spread
    _, se_elbo = _repeat(lambda: -get_objective("elbo").loss(model.model, guide, x), 200)
    _, se_mf = _repeat(lambda: -get_objective("meanfield").loss(model.model, guide, x), 200)
    assert se_mf < se_elbo


def test_iwae_sandwich_and_monotone_in_k(case):
    model, guide, x = case
    log_px = model.log_prob(x).sum().item()
    elbo = analytic_elbo(model, guide, x).item()
    means, ses = [], []
    for k in (1, 5, 50, 500):
        objective = get_objective("iwae", num_particles=k)
        mean, se = _repeat(lambda: -objective.loss(model.model, guide, x), 200)
        means.append(mean)
        ses.append(se)
    assert abs(means[0] - elbo) < Z * ses[0]  # IWAE with K = 1 is the ELBO
    for (m1, s1), (m2, s2) in zip(zip(means, ses), zip(means[1:], ses[1:])):
        assert m2 > m1 - Z * math.hypot(s1, s2)  # non-decreasing in K
    assert means[1] > means[0] + Z * math.hypot(ses[0], ses[1])  # and strictly, where the gap is large
    for m, s in zip(means, ses):
        assert m < log_px + Z * s  # a lower bound on log p(x)
    assert log_px - means[-1] < 0.1 * (log_px - elbo)  # closes in on log p(x)


def test_renyi_between_elbo_and_iwae_and_above_log_px_for_negative_alpha(case):
    model, guide, x = case
    log_px = model.log_prob(x).sum().item()
    k = 20
    est = {}
    for alpha in (0.0, 0.5, -2.0):
        objective = get_objective("renyi", alpha=alpha, num_particles=k)
        est[alpha] = _repeat(lambda: -objective.loss(model.model, guide, x), 200)
    elbo = analytic_elbo(model, guide, x).item()
    (m0, s0), (m5, s5), (mneg, sneg) = est[0.0], est[0.5], est[-2.0]
    assert elbo < m5 + Z * s5 and m5 < m0 + Z * math.hypot(s0, s5)  # L_1 <= L_0.5 <= L_0 (Li & Turner, thm 1)
    assert mneg > log_px - Z * sneg  # alpha < 0 gives an upper bound as K grows; at K=20 it already exceeds


def test_elbo_gradient_is_unbiased(case):
    model, guide, x = case
    exact = analytic_elbo(model, guide, x)
    params = [guide.loc, guide.log_scale, model.weight, model.bias, model.log_noise_scale]
    true_grads = torch.cat([g.flatten() for g in torch.autograd.grad(exact, params)])
    for name in ("elbo", "meanfield"):
        objective = get_objective(name)
        draws = []
        for _ in range(400):
            loss = objective.differentiable_loss(model.model, guide, x)
            draws.append(torch.cat([g.flatten() for g in torch.autograd.grad(-loss, params)]))
        draws = torch.stack(draws)
        mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
        z = ((mean - true_grads).abs() / se.clamp(min=1e-12))
        assert z.max() < 4.5, (name, z.max().item())  # 4.5 sigma over ~30 coordinates
