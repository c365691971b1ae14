"""The Bernoulli-latent model against exact answers by enumeration (float64, fixed seeds)."""
import itertools
import math

import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.models import BernoulliLatentModel
from pyro_lvm.objectives import get_objective


@pytest.fixture
def small(float64):
    torch.manual_seed(0)
    model = BernoulliLatentModel(input_shape=(6,), latent_dim=3, decoder_hidden=(5,), encoder_hidden=(4,))
    with torch.no_grad():
        model.prior_logits.normal_()
    x = torch.bernoulli(torch.full((4, 6), 0.4), generator=torch.Generator().manual_seed(1))
    return model, x


def _params(model):
    return [p for n, p in model.named_parameters() if not n.startswith("baseline_net")]


def _grad(value, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(value, params)])


def test_exact_log_prob_is_a_brute_force_sum(small):
    model, x = small
    prior = torch.distributions.Bernoulli(logits=model.prior_logits)
    total = []
    for bits in itertools.product((0.0, 1.0), repeat=3):
        z = torch.tensor(bits)
        logits = model.decoder(z)
        total.append(prior.log_prob(z).sum() + torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1))
    assert torch.allclose(model.exact_log_prob(x), torch.logsumexp(torch.stack(total), 0), atol=1e-12)
    z, post = model.exact_posterior(x)
    assert torch.allclose(post.sum(0), torch.ones(4))


def test_trace_enum_elbo_equals_brute_force_value_and_gradient(small):
    model, x = small
    params = _params(model)
    exact = model.exact_elbo(x).sum()
    enum = -TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model.enum_model, model.enum_guide, x)
    assert enum.item() == pytest.approx(exact.item(), abs=1e-10)
    assert torch.allclose(_grad(enum, params), _grad(exact, params), atol=1e-10)
    marginal = -TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(
        lambda data: model.enum_model(data, enumerate_latents=True), lambda data: None, x)
    assert marginal.item() == pytest.approx(model.exact_log_prob(x).sum().item(), abs=1e-10)


@pytest.mark.parametrize("name, baseline", [("elbo", None), ("tracegraph", "average"),
                                            ("tracegraph", "neural"), ("tracegraph", "both")])
def test_score_function_estimators_are_unbiased(small, name, baseline):
    model, x = small
    model.baseline = baseline
    if baseline in ("neural", "both"):
        model.baseline_net = torch.nn.Linear(6, 1)
    params = _params(model)
    true = _grad(model.exact_elbo(x).sum(), params)
    objective = get_objective(name, num_particles=8)
    draws = torch.stack([_grad(-objective.differentiable_loss(model.model, model.guide, x), params)
                         for _ in range(400)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    z = (mean - true).abs() / se.clamp(min=1e-12)
    assert z.max() < 4.5, z.max()  # 4.5 sigma over ~60 coordinates
    # the estimate is informative, not just noisy: most coordinates are resolved
    assert ((true.abs() > 3 * se) | (true.abs() < 1e-3)).float().mean() > 0.5


@pytest.mark.parametrize("name, alpha", [("iwae", 0.0), ("renyi", 0.5), ("renyi", -1.0)])
def test_vimco_is_unbiased_for_the_renyi_bound(small, name, alpha):
    # the K-sample bound's exact gradient, by summing over all K-tuples of configurations;
    # Pyro's RenyiELBO uses the K -> infinity limit's self-normalised gradient instead
    model, x = small
    k = 3
    params = _params(model)
    z, _ = model.exact_posterior(x)  # the 8 configurations
    joint, _ = model._joint_table(x)  # (8, N)
    log_q = torch.distributions.Bernoulli(logits=model.encoder(x).unsqueeze(0)).log_prob(z.unsqueeze(1)).sum(-1)
    expected = 0.0
    for tup in itertools.product(range(len(z)), repeat=k):  # all K-tuples of configurations
        idx = torch.tensor(tup)
        log_w = (1 - alpha) * (joint[idx] - log_q[idx])
        weight = log_q[idx].sum(0).exp()
        expected = expected + (weight * (torch.logsumexp(log_w, 0) - math.log(k))).sum() / (1 - alpha)
    true = _grad(expected, params)
    objective = get_objective(name, num_particles=k, **({"alpha": alpha} if name == "renyi" else {}))
    draws = torch.stack([_grad(-objective.differentiable_loss(model.model, model.guide, x), params)
                         for _ in range(600)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - true).abs() / se.clamp(min=1e-12)).max() < 4.5


@pytest.mark.parametrize("name", ["iwae", "renyi"])
def test_one_particle_with_discrete_latents_is_unbiased_for_the_elbo(small, name):
    # one sample: no leave-one-out baseline, and the bound is the ELBO
    model, x = small
    params = _params(model)
    true = _grad(model.exact_elbo(x).sum(), params)
    objective = get_objective(name, num_particles=1)
    draws = torch.stack([_grad(-objective.differentiable_loss(model.model, model.guide, x), params)
                         for _ in range(600)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - true).abs() / se.clamp(min=1e-12)).max() < 4.5


@pytest.mark.parametrize("proposal", ["prior", "guide"])
def test_likelihood_estimators_converge_to_the_exact_value(small, proposal):
    model, x = small
    guide = model.prior_guide if proposal == "prior" else model.guide
    exact = model.exact_log_prob(x).detach()
    ll = log_likelihood(model.model, guide, x, num_samples=20000, progress=False, seed=0)
    z = (ll.per_datum - exact).abs() / ll.per_datum_se
    assert z.max() < 4.5
    assert ll.per_datum_se.max() < 0.05  # and it has converged


def test_non_binary_data_is_rejected(small):
    model, _ = small
    with pytest.raises(ValueError, match="binarize"):
        get_objective("elbo").loss(model.model, model.guide, torch.rand(2, 6))


def test_fit_with_baselines_improves_the_exact_elbo(small):
    from pyro_lvm.train import fit

    model, _ = small
    model.baseline = "both"
    model.baseline_net = torch.nn.Linear(6, 1)
    x = torch.bernoulli(torch.full((256, 6), 0.3), generator=torch.Generator().manual_seed(2))
    before = model.exact_elbo(x).mean().item()
    objective = get_objective("tracegraph", num_particles=2)
    fit(model.model, model.guide, objective, x, epochs=30, batch_size=64, lr=3e-2, progress=False)
    assert model.exact_elbo(x).mean().item() > before + 0.5
    assert "z" in objective.averages
    with torch.no_grad():
        frozen = objective.averages["z"].clone()
        objective.differentiable_loss(model.model, model.guide, x)
    assert torch.equal(objective.averages["z"], frozen)


def test_average_baseline_reduces_gradient_variance(small):
    model, x = small
    encoder = list(model.encoder.parameters())

    def total_variance(objective, warmup):
        for _ in range(warmup):
            objective.differentiable_loss(model.model, model.guide, x)
        draws = torch.stack([_grad(objective.differentiable_loss(model.model, model.guide, x), encoder)
                             for _ in range(300)])
        return draws.var(0).sum().item()

    model.baseline = None
    plain = total_variance(get_objective("elbo"), 0)
    model.baseline = "average"
    centred = total_variance(get_objective("tracegraph"), 50)
    # the learning signal is ~-4 nats per datum; centring it removes most of its second moment
    assert centred < plain / 3, (centred, plain)
