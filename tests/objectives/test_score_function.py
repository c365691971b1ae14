"""Score-function terms: each site's own plates, distributions' own score parts, masks (float64).

Exact answers: Pyro's ``Trace_ELBO`` gradient on the same draws where Pyro is right, and
closed-form ELBO gradients (an Exponential-Gamma model; a masked Bernoulli) where the estimate
is compared in expectation, 4.5 standard errors over the repeats.
"""
import math

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.distributions.testing import fakes
from pyro.distributions.testing.rejection_gamma import ShapeAugmentedGamma
from pyro.infer import Trace_ELBO
from torch.distributions import constraints

from pyro_lvm.objectives import get_objective

DATA = torch.tensor([-0.5, 2.0])


def _nested_plates_pair(repeats):
    """A non-reparameterised local site in two plates, and sites outside both plates."""

    def model():
        pyro.sample("nuisance_a", fakes.NonreparameterizedNormal(0.0, 1.0))
        with pyro.plate("repeats", repeats, dim=-2), pyro.plate("data", 2, dim=-1):
            z = pyro.sample("z", fakes.NonreparameterizedNormal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=DATA)
        pyro.sample("nuisance_b", fakes.NonreparameterizedNormal(2.0, 3.0))

    def guide():
        loc = pyro.param("loc", torch.zeros(2))
        scale = pyro.param("scale", torch.tensor([1.0]), constraint=constraints.positive)
        pyro.sample("nuisance_b", fakes.NonreparameterizedNormal(2.0, 3.0))
        with pyro.plate("repeats", repeats, dim=-2), pyro.plate("data", 2, dim=-1):
            pyro.sample("z", fakes.NonreparameterizedNormal(loc, scale))
        pyro.sample("nuisance_a", fakes.NonreparameterizedNormal(0.0, 1.0))

    return model, guide


def _grads(loss, names=("loc", "scale")):
    return [g.clone() for g in torch.autograd.grad(loss, [pyro.param(n).unconstrained() for n in names])]


@pytest.mark.parametrize("name", ["elbo", "tracegraph"])
@pytest.mark.parametrize("k, vectorize", [(1, True), (3, True), (3, False)])
def test_a_local_score_term_is_weighted_by_its_own_plates_cost(float64, name, k, vectorize):
    model, guide = _nested_plates_pair(repeats=50)
    pyro.set_rng_seed(1)
    ours = get_objective(name, num_particles=k, vectorize_particles=vectorize, max_plate_nesting=2)
    ours_loss = ours.differentiable_loss(model, guide)
    ours_grads = _grads(ours_loss)
    pyro.set_rng_seed(1)
    theirs = Trace_ELBO(num_particles=k, vectorize_particles=vectorize, max_plate_nesting=2)
    theirs_loss = theirs.differentiable_loss(model, guide)
    assert ours_loss.item() == pytest.approx(theirs_loss.item(), rel=1e-12)
    for g1, g2 in zip(ours_grads, _grads(theirs_loss)):
        assert torch.allclose(g1, g2, rtol=1e-10, atol=1e-12)


def test_nuisance_sites_do_not_swamp_the_local_gradient(float64):
    # 200 repeats of 2 data: the expected gradient of loc per repeat is (0.5, -2.0)
    model, guide = _nested_plates_pair(repeats=200)
    draws = []
    for seed in range(20):
        pyro.set_rng_seed(seed)
        draws.append(_grads(get_objective("elbo").differentiable_loss(model, guide))[0] / 200)
    draws = torch.stack(draws)
    assert draws.std(0).max() < 1.0  # about 0.2 and 0.4; the whole trace's cost gives about 240
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - torch.tensor([0.5, -2.0])).abs() < 4.5 * se).all()


def _exponential_gamma(gamma):
    data = torch.tensor([3.0, 2.0])

    def model():
        rate = pyro.sample("rate", gamma(torch.tensor(1.0), torch.tensor(1.0)))
        with pyro.plate("data", 2):
            pyro.sample("obs", dist.Exponential(rate), obs=data)

    def guide():
        shape = pyro.param("shape", torch.tensor(2.5), constraint=constraints.positive)
        rate = pyro.param("rate_q", torch.tensor(4.0), constraint=constraints.positive)
        pyro.sample("rate", gamma(shape, rate))

    def exact_elbo():
        # E_q[log Gamma(l; 1, 1) + sum log Exp(x | l)] + H[q], q = Gamma(a, b)
        a, b = pyro.param("shape"), pyro.param("rate_q")
        e_log, e = torch.digamma(a) - torch.log(b), a / b
        entropy = torch.distributions.Gamma(a, b).entropy()
        return -e + len(data) * e_log - data.sum() * e + entropy

    return model, guide, exact_elbo


@pytest.mark.parametrize("gamma", [ShapeAugmentedGamma, fakes.NonreparameterizedGamma, dist.Gamma])
@pytest.mark.parametrize("name, options", [("elbo", {}), ("renyi", {"alpha": 0.2}), ("iwae", {})])
def test_score_parts_of_the_guide_distribution_give_unbiased_gradients(float64, gamma, name, options):
    # the rate is global: for the bounds, each particle is a draw of it and the bound is the ELBO
    model, guide, exact_elbo = _exponential_gamma(gamma)
    objective = get_objective(name, num_particles=3, **options)
    objective.loss(model, guide)  # creates the parameters
    true = torch.stack(_grads(exact_elbo(), ("shape", "rate_q")))
    draws = torch.stack([torch.stack(_grads(-objective.differentiable_loss(model, guide), ("shape", "rate_q")))
                         for _ in range(2000)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - true).abs() / se).max() < 4.5, (mean, true, se)


def test_a_rejection_samplers_score_part_matches_pyro(float64):
    model, guide, _ = _exponential_gamma(ShapeAugmentedGamma)
    pyro.set_rng_seed(2)
    ours = _grads(get_objective("elbo").differentiable_loss(model, guide), ("shape", "rate_q"))
    pyro.set_rng_seed(2)
    theirs = _grads(Trace_ELBO().differentiable_loss(model, guide), ("shape", "rate_q"))
    for g1, g2 in zip(ours, theirs):
        assert torch.allclose(g1, g2, rtol=1e-10)


@pytest.mark.parametrize("name", ["elbo", "tracegraph", "iwae"])
def test_a_masked_site_keeps_its_score_term(float64, name):
    # z is masked out of the bound, but x depends on it: the guide's probability still matters
    x = torch.tensor([1.5, -0.3, 0.8])

    def model():
        with pyro.plate("data", 3):
            with poutine.mask(mask=False):
                z = pyro.sample("z", dist.Bernoulli(0.5))
            pyro.sample("x", dist.Normal(2.0 * z, 1.0), obs=x)

    def guide():
        logit = pyro.param("logit", torch.zeros(3))
        with pyro.plate("data", 3), poutine.mask(mask=False):
            pyro.sample("z", dist.Bernoulli(logits=logit))

    def exact():
        p = torch.sigmoid(pyro.param("logit"))
        normal = torch.distributions.Normal
        return (p * normal(2.0, 1.0).log_prob(x) + (1 - p) * normal(0.0, 1.0).log_prob(x)).sum()

    objective = get_objective(name, num_particles=4)
    objective.loss(model, guide)
    true = _grads(exact(), ("logit",))[0]
    draws = torch.stack([_grads(-objective.differentiable_loss(model, guide), ("logit",))[0] for _ in range(500)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    if name == "iwae":  # masked z: every weight is p(x|z); still unbiased, for the masked bound
        true = _grads(_masked_iwae(x, 4), ("logit",))[0]
    assert ((mean - true).abs() / se).max() < 4.5, (mean, true)


def _masked_iwae(x, k):
    """E over K iid z ~ q of log mean_k N(x; 2 z_k, 1), by summing over the 2^K configurations."""
    p = torch.sigmoid(pyro.param("logit"))
    normal = torch.distributions.Normal
    total = 0.0
    for bits in range(2 ** k):
        z = torch.tensor([(bits >> j) & 1 for j in range(k)], dtype=x.dtype).unsqueeze(-1)
        prob = (p ** z * (1 - p) ** (1 - z)).prod(0)
        total = total + prob * (torch.logsumexp(normal(2.0 * z, 1.0).log_prob(x), 0) - math.log(k))
    return total.sum()
