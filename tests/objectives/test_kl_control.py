"""KL weight, schedules and free bits, against exact answers (float64, fixed seeds)."""
import math

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch

from pyro_lvm.errors import UsageError
from pyro_lvm.models import BernoulliLatentModel
from pyro_lvm.objectives import Constant, Cyclical, LinearWarmup, get_objective
from pyro_lvm.objectives.kl_control import group_kl
from tests.linear_gaussian_cases import ShiftedGuide, make_case


# ---- schedules ------------------------------------------------------------------------
def test_constant_and_linear_warmup_by_hand():
    assert [Constant(0.0)(t) for t in (0, 7)] == [0.0, 0.0]
    warmup = LinearWarmup(steps=4, beta0=0.2)
    assert [warmup(t) for t in range(7)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0], abs=1e-15)
    assert [LinearWarmup(2, beta1=0.5)(t) for t in range(4)] == [0.0, 0.25, 0.5, 0.5]


def test_cyclical_by_hand():
    # T = 10 steps, M = 2 cycles of 5 steps, rising over R = 0.5 of each: tau = (t mod 5) / 5
    two = Cyclical(total_steps=10, cycles=2, ratio=0.5)
    assert [two(t) for t in range(12)] == pytest.approx([0, 0.4, 0.8, 1, 1, 0, 0.4, 0.8, 1, 1, 0, 0.4], abs=1e-15)
    # T/M = 10/3 is not an integer: period ceil(10/3) = 4, tau = (t mod 4) / (10/3)
    three = Cyclical(total_steps=10, cycles=3, ratio=0.5, beta1=2.0)
    assert [three(t) for t in range(9)] == pytest.approx([0, 1.2, 2, 2, 0, 1.2, 2, 2, 0], abs=1e-15)


@pytest.mark.parametrize("make", [lambda: Constant(-1.0), lambda: Constant(math.nan), lambda: LinearWarmup(0),
                                  lambda: Cyclical(10, cycles=3, ratio=0.0), lambda: Cyclical(2, cycles=3)])
def test_bad_schedules_are_refused(make):
    with pytest.raises(ValueError):
        make()


# ---- the KL weight -----------------------------------------------------------------------
def _case(latent_dim=2):
    model, x, loc, scale = make_case(num_data=8, data_dim=4, latent_dim=latent_dim)
    return model, ShiftedGuide(loc + 0.3, scale * 1.5), x


def _loss_and_grads(objective, model, guide, x, seed=0):
    params = list(model.parameters()) + list(guide.parameters())
    pyro.set_rng_seed(seed)
    loss = objective.differentiable_loss(model.model, guide, x)
    return loss.detach(), torch.autograd.grad(loss, params)


def _closed_form_terms(model, guide, x):
    """Sums over the data of E_q log p(x|z) and KL(q(z|x) || N(0, I)) (diagonal q)."""
    w, b, var = model.weight, model.bias, model.noise_scale ** 2
    m, s2 = guide.loc, guide.log_scale.exp() ** 2
    d = w.shape[0]
    resid = x - m @ w.T - b
    recon = -0.5 * d * torch.log(2 * math.pi * var) - 0.5 * ((resid ** 2).sum(-1) + (s2 @ (w ** 2).T).sum(-1)) / var
    kl = 0.5 * (s2 + m ** 2 - 1 - s2.log()).sum(-1)
    return recon.sum(), kl.sum()


def _assert_same(a, b, rtol=1e-12):
    (va, ga), (vb, gb) = a, b
    assert torch.allclose(va, vb, rtol=rtol, atol=1e-12), (va, vb)
    for x, y in zip(ga, gb):
        assert torch.allclose(x, y, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", ["elbo", "meanfield"])
def test_beta_one_is_the_plain_objective(float64, name):
    model, guide, x = _case()
    _assert_same(_loss_and_grads(get_objective(name, beta=1.0), model, guide, x),
                 _loss_and_grads(get_objective(name), model, guide, x))


def _reconstruction(model, guide, x, seed=0):
    """-E_q log p(x|z) at one guide draw, traced by hand with the objective's random stream."""
    pyro.set_rng_seed(seed)
    guide_trace = poutine.trace(guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x)
    site = model_trace.nodes["x"]
    return -site["fn"].log_prob(site["value"]).sum()


@pytest.mark.parametrize("name", ["elbo", "meanfield"])
def test_beta_zero_is_the_reconstruction_term(float64, name):
    model, guide, x = _case()
    params = list(model.parameters()) + list(guide.parameters())
    recon = _reconstruction(model, guide, x)
    _assert_same(_loss_and_grads(get_objective(name, beta=0.0), model, guide, x),
                 (recon.detach(), torch.autograd.grad(recon, params)))


def test_weighted_meanfield_in_closed_form(float64):
    """loss(beta) = -(E_q log p(x|z) - beta KL) with the closed-form KL, at the same draws."""
    model, guide, x = _case()
    recon_exact, kl_exact = _closed_form_terms(model, guide, x)
    k = 4000
    beta0, _ = _loss_and_grads(get_objective("meanfield", num_particles=k, beta=0.0), model, guide, x, seed=1)
    for beta in (0.25, 3.0):
        loss, _ = _loss_and_grads(get_objective("meanfield", num_particles=k, beta=beta), model, guide, x, seed=1)
        assert loss.item() == pytest.approx((beta0 + beta * kl_exact).item(), rel=1e-12)
    # the reconstruction term itself: within 4 standard errors of the closed form
    pyro.set_rng_seed(1)
    (model_trace, _), = get_objective("meanfield", num_particles=k).traces(model.model, guide, x)
    per_draw = model_trace.nodes["x"]["log_prob"].sum(-1)  # (K,)
    se = per_draw.std() / math.sqrt(k)
    assert abs(-beta0.item() - recon_exact.item()) < 4 * se.item()


def test_weighted_elbo_gradient_in_expectation(float64):
    """The elbo's weighted gradient matches the closed form's within Monte Carlo error."""
    model, guide, x = _case()
    beta = 0.4
    recon, kl = _closed_form_terms(model, guide, x)
    exact = torch.autograd.grad(-(recon - beta * kl), [guide.loc, guide.log_scale])
    draws = []
    objective = get_objective("elbo", beta=beta)
    for seed in range(200):
        _, grads = _loss_and_grads(objective, model, guide, x, seed)
        draws.append(torch.cat([g.flatten() for g in grads[-2:]]))
    draws = torch.stack(draws)
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - torch.cat([g.flatten() for g in exact])).abs() < 4.5 * se + 1e-9).all()


def _bernoulli_case():
    torch.manual_seed(3)
    model = BernoulliLatentModel(input_shape=(6,), latent_dim=3, decoder_hidden=(), encoder_hidden=(),
                                 baseline=None).double()
    x = torch.bernoulli(torch.full((5, 6), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    return model, x


def test_score_function_learning_signal_is_weighted(float64):
    """Discrete latents: -[log p(x|z) + beta log p(z) + log q(z) sg(log p(x|z) + beta (log p(z) - log q(z)))]."""
    model, x = _bernoulli_case()
    beta = 0.3
    params = [p for p in model.parameters() if p.requires_grad]
    pyro.set_rng_seed(5)
    loss = get_objective("elbo", beta=beta).differentiable_loss(model.model, model.guide, x)
    ours = torch.autograd.grad(loss, params, allow_unused=True)
    pyro.set_rng_seed(5)
    guide_trace = poutine.trace(model.guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x)
    z = guide_trace.nodes["z"]
    log_q = z["fn"].log_prob(z["value"])
    log_p = model_trace.nodes["z"]["fn"].log_prob(z["value"])
    obs = model_trace.nodes["x"]
    log_lik = obs["fn"].log_prob(obs["value"])
    signal = (log_lik + beta * (log_p - log_q)).detach()
    by_hand = -(log_lik + beta * log_p + log_q * signal).sum()
    assert loss.item() == pytest.approx(-(log_lik + beta * (log_p - log_q)).sum().item(), rel=1e-12)
    for a, b in zip(ours, torch.autograd.grad(by_hand, params, allow_unused=True)):
        assert (a is None and b is None) or torch.allclose(a, b, rtol=1e-12, atol=1e-12)


# ---- free bits --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["elbo", "meanfield"])
def test_free_bits_zero_is_the_elbo_with_analytic_kl(float64, name):
    model, guide, x = _case()
    _assert_same(_loss_and_grads(get_objective(name, free_bits=0.0), model, guide, x),
                 _loss_and_grads(get_objective("meanfield"), model, guide, x))


@pytest.mark.parametrize("name", ["elbo", "meanfield"])
def test_free_bits_above_every_kl_leave_no_kl_gradient(float64, name):
    model, guide, x = _case()
    lam = 50.0
    per_dim = 0.5 * (guide.log_scale.exp() ** 2 + guide.loc ** 2 - 1) - guide.log_scale
    assert (per_dim.mean(0) < lam).all()
    value, grads = _loss_and_grads(get_objective(name, free_bits=lam), model, guide, x)
    recon, recon_grads = _loss_and_grads(get_objective(name, beta=0.0), model, guide, x)
    assert value.item() == pytest.approx(recon.item() + len(x) * 2 * lam, rel=1e-12)
    for a, b in zip(grads, recon_grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_free_bits_floor_each_dimension_by_hand(float64):
    """Dimension 0 above the floor, dimension 1 below it: -recon + N (KL_0 + lambda), KL_0 its batch mean."""
    model, x = make_case(num_data=8, data_dim=4, latent_dim=2)[:2]
    loc = torch.stack([torch.linspace(-2, 2, 8), torch.full((8,), 0.1)], -1)
    scale = torch.stack([torch.full((8,), 0.5), torch.full((8,), 0.9)], -1)
    guide = ShiftedGuide(loc, scale)
    kl = 0.5 * (scale ** 2 + loc ** 2 - 1) - scale.log()
    mean_kl = kl.mean(0)
    lam = 0.1
    assert mean_kl[0] > lam > mean_kl[1]
    beta = 0.7
    value, grads = _loss_and_grads(get_objective("meanfield", free_bits=lam, beta=beta), model, guide, x)
    recon, recon_grads = _loss_and_grads(get_objective("meanfield", beta=0.0), model, guide, x)
    assert value.item() == pytest.approx(recon.item() + beta * 8 * (mean_kl[0].item() + lam), rel=1e-12)
    # gradient of beta * N * mean_i KL_i0 w.r.t. loc_i0 is beta * loc_i0, and nothing for dimension 1
    d_loc = grads[-2] - recon_grads[-2]
    assert torch.allclose(d_loc[:, 0], beta * loc[:, 0], rtol=1e-12, atol=1e-12)
    assert torch.equal(d_loc[:, 1], torch.zeros(8))
    d_log_scale = grads[-1] - recon_grads[-1]
    assert torch.allclose(d_log_scale[:, 0], beta * (scale[:, 0] ** 2 - 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("vectorize", [True, False])
def test_free_bits_average_over_particles(float64, vectorize):
    model, guide, x = _case()
    options = {"num_particles": 3, "vectorize_particles": vectorize}
    _assert_same(_loss_and_grads(get_objective("meanfield", free_bits=0.0, **options), model, guide, x),
                 _loss_and_grads(get_objective("meanfield", **options), model, guide, x))


def test_free_bits_weigh_each_datum_by_its_scale(float64):
    """Data scaled by N/B = 2.5 (as a subsampled plate is): the floored term scales like the ELBO."""
    model, guide, x = _case()
    plain, _ = _loss_and_grads(get_objective("meanfield", free_bits=0.0), model, guide, x)
    pyro.set_rng_seed(0)
    scaled = get_objective("meanfield", free_bits=0.0).differentiable_loss(
        poutine.scale(model.model, scale=2.5), poutine.scale(guide, scale=2.5), x)
    assert scaled.item() == pytest.approx(2.5 * plain.item(), rel=1e-12)


def test_group_kl_per_dimension_and_whole_site(float64):
    model, x, loc, scale = make_case(num_data=5, data_dim=4, latent_dim=3)
    z = model.posterior(x).sample()
    prior = dist.Normal(torch.zeros(3), torch.ones(3)).to_event(1)

    def site(fn, value=z):
        return {"fn": fn, "value": value, "name": "z"}
    # analytic per dimension: Independent(Normal) against Independent(Normal)
    q = dist.Normal(loc, scale).to_event(1)
    per_dim = group_kl(site(q), site(prior))
    assert per_dim.shape == (5, 3)
    assert torch.allclose(per_dim, 0.5 * (scale ** 2 + loc ** 2 - 1) - scale.log(), rtol=1e-12)
    # Monte Carlo per dimension where no KL is registered (StudentT against Normal)
    t = dist.StudentT(4.0, loc, scale).to_event(1)
    mc = group_kl(site(t), site(prior))
    assert torch.allclose(mc, dist.StudentT(4.0, loc, scale).log_prob(z) - dist.Normal(0.0, 1.0).log_prob(z))
    # a full-covariance guide: the whole site is one group (log q - log p at the draw)
    full = model.posterior(x)
    whole = group_kl(site(full), site(prior))
    assert whole.shape == (5, 1)
    assert torch.allclose(whole.squeeze(-1), full.log_prob(z) - prior.log_prob(z))


# ---- where KL control does not apply ---------------------------------------------------
@pytest.mark.parametrize("name", ["iwae", "renyi"])
def test_bounds_refuse_a_kl_weight(name):
    for options in ({"beta": 0.5}, {"free_bits": 0.1}, {"beta": LinearWarmup(10)}):
        with pytest.raises(UsageError, match="no bound on log p"):
            get_objective(name, **options)


def test_free_bits_need_the_model_site(float64):
    model, guide, x = _case()

    def guide_with_extra(x):
        guide(x)
        pyro.sample("aux", dist.Normal(torch.zeros(()), 1.0), infer={"is_auxiliary": True})
    with pytest.raises(ValueError, match="no site 'aux'"):
        get_objective("elbo", free_bits=0.1).differentiable_loss(model.model, guide_with_extra, x)


def test_schedule_follows_the_step():
    objective = get_objective("elbo", beta=LinearWarmup(steps=4))
    assert objective.kl_weight == 0.0
    objective.set_step(3)
    assert objective.kl_weight == 0.75
    assert get_objective("elbo").kl_weight is None
