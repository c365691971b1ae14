"""Degenerate and shared cases where our objectives must equal Pyro's own, value and gradient."""
import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO

from pyro_lvm.objectives import get_objective


def _linear_pair(data_dim=3, latent_dim=2):
    """Linear-Gaussian model and an amortised linear guide written with pyro.param."""

    def model(x):
        w = pyro.param("w", torch.linspace(-1, 1, data_dim * latent_dim).reshape(data_dim, latent_dim))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([latent_dim]).to_event(1))
            pyro.sample("x", dist.Normal(z @ w.T, 0.7).to_event(1), obs=x)

    def guide(x):
        a = pyro.param("a", 0.3 * torch.ones(data_dim, latent_dim))
        log_s = pyro.param("log_s", -0.5 * torch.ones(latent_dim))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x @ a, log_s.exp()).to_event(1))

    return model, guide


def _value_and_grads(loss_fn):
    pyro.set_rng_seed(123)
    loss = loss_fn()
    params = [pyro.param(n).unconstrained() for n in ("w", "a", "log_s")]
    value = loss if isinstance(loss, float) else loss.item()
    grads = torch.autograd.grad(loss, params) if torch.is_tensor(loss) else [p.grad.clone() for p in params]
    return value, grads


@pytest.mark.parametrize("ours, theirs, k", [
    ("elbo", lambda k: Trace_ELBO(num_particles=k, vectorize_particles=True, max_plate_nesting=1), 1),
    ("elbo", lambda k: Trace_ELBO(num_particles=k, vectorize_particles=True, max_plate_nesting=1), 4),
    ("meanfield", lambda k: TraceMeanField_ELBO(num_particles=k, vectorize_particles=True, max_plate_nesting=1), 3),
])
def test_matches_pyro_differentiable_loss(float64, ours, theirs, k):
    model, guide = _linear_pair()
    x = torch.randn(5, 3)
    ours_value, ours_grads = _value_and_grads(
        lambda: get_objective(ours, num_particles=k).differentiable_loss(model, guide, x))
    pyro_value, pyro_grads = _value_and_grads(
        lambda: theirs(k).differentiable_loss(model, guide, x))
    assert ours_value == pytest.approx(pyro_value, rel=1e-12, abs=1e-12)
    for g1, g2 in zip(ours_grads, pyro_grads):
        assert torch.allclose(g1, g2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha, k", [(0.0, 6), (0.5, 4), (-1.0, 3)])
def test_renyi_matches_pyro(float64, alpha, k):
    model, guide = _linear_pair()
    x = torch.randn(5, 3)
    objective = get_objective("renyi", alpha=alpha, num_particles=k)
    ours_value, ours_grads = _value_and_grads(lambda: objective.differentiable_loss(model, guide, x))

    def pyro_loss():
        for n in ("w", "a", "log_s"):
            p = pyro.param(n).unconstrained()
            p.grad = None
        return RenyiELBO(alpha=alpha, num_particles=k, vectorize_particles=True, max_plate_nesting=1).loss_and_grads(model, guide, x)

    pyro_value, pyro_grads = _value_and_grads(pyro_loss)
    assert ours_value == pytest.approx(pyro_value, rel=1e-12)
    for g1, g2 in zip(ours_grads, pyro_grads):
        assert torch.allclose(g1, g2, rtol=1e-10, atol=1e-12)


def test_renyi_with_one_particle_equals_elbo(float64):
    model, guide = _linear_pair()
    x = torch.randn(5, 3)
    elbo_value, elbo_grads = _value_and_grads(
        lambda: get_objective("elbo").differentiable_loss(model, guide, x))
    for alpha in (0.0, 0.3):
        renyi_value, renyi_grads = _value_and_grads(
            lambda: get_objective("renyi", alpha=alpha, num_particles=1).differentiable_loss(model, guide, x))
        assert renyi_value == pytest.approx(elbo_value, rel=1e-12)
        for g1, g2 in zip(elbo_grads, renyi_grads):
            assert torch.allclose(g1, g2, rtol=1e-10)


def test_unvectorized_particles_agree_with_vectorized_in_expectation(float64):
    model, guide = _linear_pair()
    x = torch.randn(5, 3)
    estimates = {}
    for vectorize in (True, False):
        objective = get_objective("iwae", num_particles=4, vectorize_particles=vectorize)
        assert objective.log_weights(model, guide, x).shape == (4, 5)
        values = torch.tensor([objective.loss(model, guide, x) for _ in range(300)])
        estimates[vectorize] = (values.mean().item(), values.std().item() / 300 ** 0.5)
    (m1, s1), (m2, s2) = estimates[True], estimates[False]
    assert abs(m1 - m2) < 4 * (s1 ** 2 + s2 ** 2) ** 0.5


def _discrete_pair(scale):
    """A Bernoulli latent per datum, with learnable prior, likelihood and guide; scaled by ``scale``."""

    def model(x):
        p = pyro.param("p_logit", torch.tensor(0.3))
        w = pyro.param("w", torch.tensor([1.5, -0.5]))
        with poutine.scale(scale=scale), pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Bernoulli(logits=p))
            pyro.sample("x", dist.Normal(w[0] * z + w[1], 1.0), obs=x)

    def guide(x):
        a = pyro.param("a", torch.tensor([0.2, -0.1]))
        with poutine.scale(scale=scale), pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Bernoulli(logits=a[0] * x + a[1]))

    return model, guide


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_discrete_site_gradients_match_pyro_trace_elbo(float64, scale):
    model, guide = _discrete_pair(scale)
    x = torch.randn(6)
    names = ("p_logit", "w", "a")

    def value_and_grads(fn):
        pyro.set_rng_seed(7)
        loss = fn()
        return loss.item(), torch.autograd.grad(loss, [pyro.param(n).unconstrained() for n in names])

    ours = value_and_grads(lambda: get_objective("elbo", num_particles=4).differentiable_loss(model, guide, x))
    theirs = value_and_grads(lambda: Trace_ELBO(num_particles=4, vectorize_particles=True,
                                                max_plate_nesting=1).differentiable_loss(model, guide, x))
    assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
    for g1, g2 in zip(ours[1], theirs[1]):
        assert torch.allclose(g1, g2, rtol=1e-10, atol=1e-12)
