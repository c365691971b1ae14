"""The Pyro mixture: exact enumeration against brute force, recovery of known parameters, SVI = EM."""
import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from scipy import stats
from scipy.special import logsumexp

from pyro_lvm.train.mixture import fit_adam, fit_lbfgs
from pyro_lvm.models.gmm import (BayesianGaussianMixture, GaussianComponents, GaussianMixture, GMMPrior,
                                 match_components, site_values)
from pyro_lvm.models.gmm_em import MixtureParams, fit_em, initial_params, random_params, sample_mixture
from pyro_lvm.train import fit

# three separated components in 2-D with known parameters
TRUTH = MixtureParams.from_covariances(
    torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
    torch.tensor([[-4.0, 0.0], [4.0, 0.0], [0.0, 6.0]], dtype=torch.float64),
    torch.tensor([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 1.5]], [[0.8, -0.2], [-0.2, 0.8]]],
                 dtype=torch.float64))


def _brute_force_log_joint(x, params):
    """log pi_k + log N(x_n | k) for every component, one scipy density at a time: (N, K)."""
    return np.stack([math.log(w) + stats.multivariate_normal(m, c).logpdf(x.numpy())
                     for w, m, c in zip(params.weights.tolist(), params.locs.numpy(), params.covariances.numpy())],
                    axis=1)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_enumerated_log_likelihood_equals_brute_force_sum(covariance, float64):
    g = torch.Generator().manual_seed(0)
    params = random_params(4, 3, covariance, spread=1.0, generator=g)
    x, _ = sample_mixture(params, 200, g)
    mixture = GaussianMixture.from_params(params, reg_covar=0.0)
    brute = logsumexp(_brute_force_log_joint(x, params), axis=1)
    assert np.allclose(mixture.log_likelihood(x).numpy(), brute, rtol=0, atol=1e-10)
    # TraceEnum_ELBO with the empty guide is the same number, summed
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(mixture.model, mixture.guide, x)
    assert loss == pytest.approx(-brute.sum(), rel=1e-12)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_gaussian_components_equal_an_indexed_normal(covariance, float64):
    g = torch.Generator().manual_seed(1)
    params = random_params(3, 2, covariance, generator=g)
    x, z = sample_mixture(params, 50, g)

    def indexed(index):
        if covariance == "diag":
            return dist.Normal(params.locs[index], params.scale[index]).to_event(1)
        return dist.MultivariateNormal(params.locs[index], scale_tril=params.scale[index])

    enumerated = torch.arange(3).view(3, 1)
    fast = GaussianComponents(params.locs, params.scale, enumerated).expand([3, 50])
    assert torch.allclose(fast.log_prob(x), indexed(enumerated).log_prob(x), atol=1e-12)
    assert torch.allclose(GaussianComponents(params.locs, params.scale, z).log_prob(x), indexed(z).log_prob(x),
                          atol=1e-12)
    assert GaussianComponents(params.locs, params.scale, z).sample((2,)).shape == (2, 50, 2)


def test_responsibilities_and_assignments(float64):
    g = torch.Generator().manual_seed(2)
    params = random_params(3, 2, "full", spread=1.0, generator=g)  # overlapping, so posteriors are not 0/1
    x, _ = sample_mixture(params, 30, g)
    mixture = GaussianMixture.from_params(params, reg_covar=0.0)
    resp = mixture.responsibilities(x)
    joint = _brute_force_log_joint(x, params)
    assert torch.allclose(resp.sum(-1), torch.ones(30), atol=1e-12)
    assert np.allclose(resp.numpy(), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)), atol=1e-10)
    assert torch.equal(mixture.assign(x), resp.argmax(-1))  # infer_discrete at temperature 0: the MAP
    # at temperature 1, infer_discrete draws from the posterior: 400 copies of each point
    copies = 400
    draws = mixture.assign(x.repeat(copies, 1), temperature=1).view(copies, 30)
    freq = torch.nn.functional.one_hot(draws, 3).double().mean(0)
    se = (resp * (1 - resp) / copies).sqrt()
    assert ((freq - resp).abs() <= 4.5 * se + 1e-9).all()


def _fit_truth(n, tol=1e-10):
    x, _ = sample_mixture(TRUTH, n, torch.Generator().manual_seed(3))
    mixture = GaussianMixture(3, 2, "full", dtype=torch.float64)
    mixture.initialize(x, generator=torch.Generator().manual_seed(4))
    start = mixture.params()
    return x, mixture, start, fit_lbfgs(mixture, x, tol=tol)


def test_lbfgs_fit_recovers_known_parameters_up_to_permutation(float64):
    n = 6000
    x, mixture, _, result = _fit_truth(n)
    assert result.converged
    fitted = mixture.params()
    fitted = fitted.permute(match_components(fitted.locs, TRUTH.locs))
    counts = n * TRUTH.weights
    # standard errors of well-separated components: sigma / sqrt(N_k) for a mean, sigma / sqrt(2 N_k) for a
    # standard deviation, sqrt(pi (1 - pi) / N) for a weight; each estimate within 4 of them
    stddevs = TRUTH.covariances.diagonal(dim1=-2, dim2=-1).sqrt()
    fitted_stddevs = fitted.covariances.diagonal(dim1=-2, dim2=-1).sqrt()
    assert ((fitted.locs - TRUTH.locs).abs() <= 4 * stddevs / counts.sqrt()[:, None]).all()
    assert ((fitted_stddevs - stddevs).abs() <= 4 * stddevs / (2 * counts).sqrt()[:, None]).all()
    assert ((fitted.weights - TRUTH.weights).abs() <= 4 * (TRUTH.weights * (1 - TRUTH.weights) / n).sqrt()).all()
    # the maximum-likelihood fit scores its data at least as well as the truth does
    assert result.log_likelihood >= GaussianMixture.from_params(TRUTH, reg_covar=0.0).log_likelihood(x).mean()


def test_svi_and_em_reach_the_same_log_likelihood(float64):
    g = torch.Generator().manual_seed(5)
    truth = random_params(4, 2, "full", spread=1.5, generator=g)  # overlapping: a real optimisation problem
    x, _ = sample_mixture(truth, 2000, g)
    mixture = GaussianMixture(4, 2, "full", dtype=torch.float64)
    mixture.initialize(x, generator=g)
    start = mixture.params()
    svi = fit_lbfgs(mixture, x, tol=1e-12, max_iter=1000)
    em = fit_em(x, init=start, tol=1e-13, max_iter=20000)
    assert svi.iterations > 10 and em.iterations > 10
    assert svi.log_likelihood == pytest.approx(em.log_likelihood, rel=1e-7)
    assert svi.log_likelihood > start_ll(start, x) + 1e-3
    fitted = mixture.params()
    assert torch.allclose(fitted.locs[match_components(fitted.locs, em.params.locs)], em.params.locs, atol=2e-3)


def start_ll(params, x):
    return GaussianMixture.from_params(params).log_likelihood(x).mean().item()


def test_the_library_fit_loop_trains_the_mixture_with_adam(float64):
    x, _ = sample_mixture(TRUTH, 600, torch.Generator().manual_seed(6))
    start = MixtureParams(torch.ones(3) / 3, TRUTH.locs + 1.0, TRUTH.scale)  # off by one in every coordinate
    mixture = GaussianMixture.from_params(start)
    before = mixture.log_likelihood(x).mean().item()
    result = fit_adam(mixture, x, epochs=40, batch_size=200, lr=0.05)
    em = fit_em(x, init=start)
    assert before < em.log_likelihood - 0.3
    assert result.log_likelihood == pytest.approx(em.log_likelihood, abs=5e-3)


def test_map_objective_is_the_bayesian_joint_at_the_point(float64):
    g = torch.Generator().manual_seed(8)
    prior = GMMPrior(concentration=2.0, loc_scale=3.0, scale_scale=0.5, lkj_concentration=2.0)
    for covariance in ("diag", "full"):
        params = random_params(3, 2, covariance, generator=g)
        x, _ = sample_mixture(params, 100, g)
        point = GaussianMixture.from_params(params, prior=prior, reg_covar=0.0)
        bayes = BayesianGaussianMixture(3, 2, covariance, prior)
        elbo = TraceEnum_ELBO(max_plate_nesting=1)
        conditioned = poutine.condition(bayes.model, data=site_values(point.params()))
        assert elbo.loss(point.model, point.guide, x) == pytest.approx(elbo.loss(conditioned, point.guide, x),
                                                                        rel=1e-10)


def test_map_prior_shrinks_the_means(float64):
    x, _ = sample_mixture(TRUTH, 300, torch.Generator().manual_seed(9))
    mixture = GaussianMixture(3, 2, "diag", prior=GMMPrior(loc_scale=0.01))
    mixture.initialize(x, generator=torch.Generator().manual_seed(9))
    fit_lbfgs(mixture, x, tol=1e-10)
    assert mixture.params().locs.abs().max() < 0.05


def test_variational_posterior_covers_the_truth(float64):
    x, _ = sample_mixture(TRUTH, 600, torch.Generator().manual_seed(10))
    bayes = BayesianGaussianMixture(3, 2, "diag")
    start, _ = initial_params(x, 3, "diag", generator=torch.Generator().manual_seed(10))
    guide = bayes.variational_guide(site_values(start))
    fit(bayes.model, guide, TraceEnum_ELBO(max_plate_nesting=1), x, epochs=150, batch_size=600, lr=0.05,
        progress=False)
    median = bayes.params_from_sites(guide.median())
    order = match_components(median.locs, TRUTH.locs)
    low, high = (q[order] for q in guide.quantiles([0.001, 0.999])["locs"])
    assert ((low < TRUTH.locs) & (TRUTH.locs < high)).all()
    assert (high - low).max() < 0.6


def test_sampling_new_points(float64):
    mixture = GaussianMixture.from_params(TRUTH, reg_covar=0.0)
    x, z = mixture.sample(20000, torch.Generator().manual_seed(11))
    assert x.shape == (20000, 2)
    freq = torch.bincount(z, minlength=3).double() / 20000
    assert ((freq - TRUTH.weights).abs() < 4 * (TRUTH.weights * (1 - TRUTH.weights) / 20000).sqrt()).all()
    assert torch.allclose(x[z == 1].mean(0), TRUTH.locs[1], atol=4 * (1.5 / (20000 * 0.3)) ** 0.5)


def test_set_params_round_trip_and_preconditioning_keep_the_model(float64):
    for covariance in ("diag", "full"):
        params = random_params(3, 2, covariance, generator=torch.Generator().manual_seed(12))
        mixture = GaussianMixture.from_params(params)
        held = mixture.params()
        for a, b in zip((held.weights, held.locs, held.scale), (params.weights, params.locs, params.scale)):
            assert torch.allclose(a, b, atol=1e-12)
        x, _ = sample_mixture(params, 100, torch.Generator().manual_seed(13))
        before = mixture.log_likelihood(x)
        mixture.set_params(held, curvature=torch.tensor([10.0, 400.0, 1e4]))
        assert torch.allclose(mixture.log_likelihood(x), before, atol=1e-12)
        assert torch.allclose(mixture.step, torch.tensor([10.0, 400.0, 1e4]).rsqrt())


def test_one_component_fit_is_the_sample_mean_and_covariance(float64):
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(14)) @ torch.tensor([[1.0, 0.4], [0.0, 0.5]])
    mixture = GaussianMixture(1, 2, "full", reg_covar=0.0)
    mixture.initialize(x)
    fit_lbfgs(mixture, x, tol=1e-12)
    fitted = mixture.params()
    assert torch.allclose(fitted.locs[0], x.mean(0), atol=1e-6)
    assert torch.allclose(fitted.covariances[0], torch.cov(x.T, correction=0), atol=1e-6)
    assert torch.equal(mixture.assign(x), torch.zeros(500, dtype=torch.long))


def test_degenerate_data_do_not_produce_nan(float64):
    duplicates = torch.tensor([[1.0, 2.0]]).repeat(30, 1)
    duplicates[15:] = torch.tensor([-3.0, 0.5])
    for x, k in ((duplicates, 3), (torch.zeros(10, 2), 2)):
        mixture = GaussianMixture(k, 2, "full")
        mixture.initialize(x)
        result = fit_lbfgs(mixture, x, max_iter=50)
        for value in (result.log_likelihood, *mixture.log_likelihood(x).tolist(), *mixture.params().scale.flatten()):
            assert math.isfinite(value)
        assert torch.allclose(mixture.responsibilities(x).sum(-1), torch.ones(len(x)))
    # a component far from every point: no responsibility, no NaN
    x, _ = sample_mixture(TRUTH, 200, torch.Generator().manual_seed(15))
    far = MixtureParams(torch.tensor([0.4, 0.3, 0.3]), torch.cat([TRUTH.locs[:2], torch.tensor([[1e3, 1e3]])]),
                        TRUTH.scale)
    mixture = GaussianMixture.from_params(far)
    assert mixture.responsibilities(x)[:, 2].max() == 0
    result = fit_lbfgs(mixture, x, max_iter=50)
    em = fit_em(x, init=far, max_iter=50)
    assert math.isfinite(result.log_likelihood) and math.isfinite(em.log_likelihood)
    assert em.params.weights[2] < 1e-10 and torch.equal(em.params.locs[2], far.locs[2])
    assert torch.isfinite(mixture.params().locs).all()


def test_bad_input_gets_clear_errors():
    mixture = GaussianMixture(3, 2)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        mixture.log_likelihood(torch.zeros(5, 2, 1))
    with pytest.raises(ValueError, match="D = 4"):
        mixture.initialize(torch.zeros(10, 4))
    with pytest.raises(ValueError, match="K = 3 components to N = 2 points"):
        mixture.initialize(torch.randn(2, 2))
    with pytest.raises(ValueError, match="NaN"):
        mixture.assign(torch.tensor([[0.0, float("nan")]] * 5))
    with pytest.raises(ValueError, match="covariance must be one of"):
        GaussianMixture(3, 2, "spherical")
    with pytest.raises(ValueError, match="params are K=2"):
        mixture.set_params(random_params(2, 2))
