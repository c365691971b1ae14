"""The plain-torch mixture: densities and E/M steps against independent formulas, k-means++, EM."""
import math

import numpy as np
import pytest
import torch
from pyro.infer import TraceEnum_ELBO
from scipy import stats
from scipy.special import logsumexp

from pyro_lvm.models.gmm import GaussianMixture
from pyro_lvm.models.gmm_em import (MixtureParams, check_data, component_log_prob, e_step, fit_em, initial_params,
                                    kmeans_plusplus, log_likelihood, m_step, random_params, sample_mixture)


def _scipy_log_joint(x, params):
    """log pi_k + log N(x_n; mu_k, Sigma_k) with scipy, shape (N, K)."""
    x = x.numpy()
    covs = params.covariances.numpy()
    return np.stack([math.log(w) + stats.multivariate_normal(m, c).logpdf(x)
                     for w, m, c in zip(params.weights.tolist(), params.locs.numpy(), covs)], axis=1)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_e_step_matches_scipy(covariance, float64):
    g = torch.Generator().manual_seed(1)
    params = random_params(4, 3, covariance, generator=g)
    x, _ = sample_mixture(params, 300, g)
    resp, log_px = e_step(x, params)
    joint = _scipy_log_joint(x, params)
    assert np.allclose(log_px.numpy(), logsumexp(joint, axis=1), rtol=0, atol=1e-10)
    assert np.allclose(resp.numpy(), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)), atol=1e-12)
    assert torch.allclose(resp.sum(-1), torch.ones(300), atol=1e-12)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_component_log_prob_and_its_gradient_match_torch_distributions(covariance, float64):
    g = torch.Generator().manual_seed(11)
    params = random_params(10, 10, covariance, generator=g)
    x, _ = sample_mixture(params, 3000, g)  # several blocks of rows
    locs, scale = params.locs.clone().requires_grad_(), params.scale.clone().requires_grad_()
    if covariance == "diag":
        reference = torch.distributions.Normal(locs, scale).log_prob(x.unsqueeze(1)).sum(-1)
    else:
        reference = torch.distributions.MultivariateNormal(locs, scale_tril=scale).log_prob(x.unsqueeze(1))
    ours = component_log_prob(x, locs, scale)
    assert torch.allclose(ours, reference, atol=1e-9)
    weights = torch.rand(3000, 10, generator=g)  # an arbitrary upstream gradient
    expected = torch.autograd.grad((reference * weights).sum(), (locs, scale))
    for got, want in zip(torch.autograd.grad((ours * weights).sum(), (locs, scale)), expected):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_m_step_is_the_weighted_maximum_likelihood(covariance, float64):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 3, generator=g)
    resp = torch.softmax(torch.randn(200, 4, generator=g), -1)
    params = m_step(x, resp, covariance, reg_covar=0.0)
    for k in range(4):
        w = resp[:, k].numpy()
        mean = np.average(x.numpy(), axis=0, weights=w)
        cov = np.cov(x.numpy(), rowvar=False, aweights=w, bias=True)
        expected = np.diag(np.diag(cov)) if covariance == "diag" else cov
        assert np.allclose(params.locs[k].numpy(), mean, atol=1e-12)
        assert np.allclose(params.covariances[k].numpy(), expected, atol=1e-12)
    assert torch.allclose(params.weights, resp.mean(0), atol=1e-14)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_hard_labels_equal_one_hot_responsibilities(covariance, float64):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(100, 2, generator=g)
    labels = torch.randint(3, (100,), generator=g)
    soft = m_step(x, torch.nn.functional.one_hot(labels, 3).double(), covariance)
    hard = m_step(x, labels, covariance)
    for a, b in zip((soft.weights, soft.locs, soft.scale), (hard.weights, hard.locs, hard.scale)):
        assert torch.allclose(a, b, atol=1e-12)


def test_empty_component_keeps_its_previous_parameters(float64):
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    previous = random_params(3, 2, "full", generator=torch.Generator().manual_seed(1))
    resp = torch.zeros(50, 3)
    resp[:, 0], resp[:, 1] = 0.3, 0.7  # component 2 has no responsibility at all
    params = m_step(x, resp, "full", previous=previous)
    assert params.weights[2] == 0
    assert torch.equal(params.locs[2], previous.locs[2]) and torch.equal(params.scale[2], previous.scale[2])
    assert torch.isfinite(log_likelihood(x, params)).all()


def test_em_never_lowers_the_likelihood_and_stops_at_a_stationary_point(float64):
    g = torch.Generator().manual_seed(4)
    truth = random_params(3, 2, "full", spread=1.5, generator=g)  # overlapping: EM takes many steps
    x, _ = sample_mixture(truth, 1000, g)
    result = fit_em(x, 3, tol=1e-13, max_iter=5000, reg_covar=0.0, generator=g)
    assert result.converged and result.iterations > 20
    assert all(b >= a - 1e-12 for a, b in zip(result.history, result.history[1:]))
    assert result.log_likelihood >= log_likelihood(x, truth).mean().item()  # the MLE beats the truth on its data
    # EM's fixed point is a stationary point of the enumerated likelihood of the Pyro model
    def largest_gradient(params):
        mixture = GaussianMixture.from_params(params, reg_covar=0.0)
        loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(mixture.model, mixture.guide, x)
        grads = torch.autograd.grad(loss, list(mixture.parameters()))
        return loss.item(), max(g.abs().max().item() for g in grads)

    loss, gradient = largest_gradient(result.params)
    assert gradient < 1e-3 and largest_gradient(m_step(x, e_step(x, truth)[0], reg_covar=0.0))[1] > 1.0
    assert loss == pytest.approx(-len(x) * result.log_likelihood, rel=1e-12)


def test_absolute_tolerance_is_scikit_learns_rule(float64):
    g = torch.Generator().manual_seed(4)
    truth = random_params(3, 2, "full", spread=1.5, generator=g)
    x, _ = sample_mixture(truth, 1000, g)
    init, _ = initial_params(x, 3, generator=g)
    loose = fit_em(x, init=init, tol=1e-3, relative=False)
    tight = fit_em(x, init=init, tol=1e-12, max_iter=3000)
    assert loose.converged and loose.iterations < tight.iterations
    assert abs(loose.history[-1] - loose.history[-2]) <= 1e-3 < abs(loose.history[-2] - loose.history[-3])


def test_one_component_em_is_the_sample_mean_and_covariance(float64):
    x = torch.randn(400, 3, generator=torch.Generator().manual_seed(5)) @ torch.tensor(
        [[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.0, -1.0, 0.3]]) + 4.0
    result = fit_em(x, 1, reg_covar=0.0)
    assert result.iterations <= 2
    assert torch.allclose(result.params.locs[0], x.mean(0), atol=1e-12)
    assert torch.allclose(result.params.covariances[0], torch.cov(x.T, correction=0), atol=1e-10)


def test_kmeans_plusplus_draws_seeds_in_proportion_to_squared_distance(float64):
    # points 0, 1 and 3 on a line; with the first seed at 0 the second is 1 w.p. 1/10 and 3 w.p. 9/10
    x = torch.tensor([[0.0], [1.0], [3.0]])
    g = torch.Generator().manual_seed(6)
    draws = [kmeans_plusplus(x, 2, g, trials=1).tolist() for _ in range(3000)]
    after_zero = [second for first, second in draws if first == 0]
    p_one = sum(s == 1 for s in after_zero) / len(after_zero)
    assert abs(p_one - 0.1) < 4 * math.sqrt(0.1 * 0.9 / len(after_zero))
    assert all(first != second for first, second in draws)  # a chosen point has D^2 = 0


def test_kmeans_plusplus_puts_one_seed_in_each_separated_cluster(float64):
    g = torch.Generator().manual_seed(7)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    x = (centres.repeat_interleave(50, 0) + torch.randn(200, 2, generator=g))
    seeds = kmeans_plusplus(x, 4, g)
    assert sorted((seeds // 50).tolist()) == [0, 1, 2, 3]


def test_duplicate_points_do_not_produce_nan(float64):
    x = torch.ones(40, 2)
    x[20:] = torch.tensor([3.0, -1.0])
    for k in (1, 2, 3):
        params, ll = initial_params(x, k)
        result = fit_em(x, init=params, max_iter=50)
        assert math.isfinite(ll) and math.isfinite(result.log_likelihood)
        assert all(torch.isfinite(t).all() for t in (result.params.weights, result.params.locs, result.params.scale))
    seeds = kmeans_plusplus(torch.zeros(10, 2), 3, torch.Generator().manual_seed(0))
    assert len(seeds) == 3


def test_best_of_restarts_is_the_highest_likelihood_seeding(float64):
    g = torch.Generator().manual_seed(8)
    truth = random_params(5, 2, "full", generator=g)
    x, _ = sample_mixture(truth, 500, g)
    best = initial_params(x, 5, restarts=4, generator=torch.Generator().manual_seed(9))
    again = torch.Generator().manual_seed(9)
    scores = [log_likelihood(x, initial_params(x, 5, restarts=1, generator=again)[0]).mean().item()
              for _ in range(4)]
    assert best[1] == pytest.approx(max(scores), abs=1e-12)


def test_sampling_matches_the_parameters(float64):
    params = MixtureParams.from_covariances(torch.tensor([0.2, 0.8]), torch.tensor([[0.0, 0.0], [5.0, 1.0]]),
                                            torch.tensor([[[1.0, 0.5], [0.5, 2.0]], [[0.3, 0.0], [0.0, 0.3]]]))
    x, z = sample_mixture(params, 20000, torch.Generator().manual_seed(10))
    frac = (z == 0).double().mean().item()
    assert abs(frac - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 20000)
    first = x[z == 0]
    se = (torch.diagonal(params.covariances[0]) / len(first)).sqrt()
    assert ((first.mean(0) - params.locs[0]).abs() < 4 * se).all()
    assert torch.allclose(torch.cov(first.T), params.covariances[0], atol=0.1)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        check_data(torch.zeros(10))
    with pytest.raises(ValueError, match="K = 5 components to N = 3 points"):
        check_data(torch.zeros(3, 2), num_components=5)
    with pytest.raises(ValueError, match="D = 3"):
        check_data(torch.zeros(10, 3), data_dim=2)
    x = torch.zeros(10, 2)
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match="1 NaN"):
        fit_em(x, 2)
    with pytest.raises(ValueError, match="covariance must be one of"):
        m_step(torch.zeros(4, 2), torch.ones(4, 1), "spherical")
    with pytest.raises(ValueError, match="expected weights"):
        MixtureParams(torch.ones(2), torch.zeros(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="give num_components or init"):
        fit_em(torch.zeros(10, 2))
