"""The conditional VAE against exact answers: the VAE it reduces to, a conditional linear-Gaussian
model whose log p(x|y) is Gaussian in closed form, and the masked-quadrant likelihood."""
import math

import pyro
import pytest
import torch
from pyro.distributions import Bernoulli, MultivariateNormal

from pyro_lvm.data.quadrants import MISSING, given_quadrants, mask_quadrants, missing_pixels
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.models import CVAE, VAE, CVAEConfig, DeterministicBaseline
from pyro_lvm.objectives import get_objective


def _binary(n, seed=0):
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(seed))


def _with_zero_columns(weight, extra):
    return torch.cat([weight, weight.new_zeros(weight.shape[0], extra)], 1)


def _cvae_ignoring_y(vae, num_classes=10):
    """A CVAE with the VAE's weights and zero weights on every input that carries y."""
    cfg = vae.config
    cvae = CVAE(input_shape=cfg.input_shape, condition_shape=(num_classes,), latent_dim=cfg.latent_dim,
                hidden=cfg.hidden, activation=cfg.activation, prior="standard")
    state = {k: v.clone() for k, v in vae.state_dict().items()}
    state["encoder.body.0.weight"] = _with_zero_columns(state["encoder.body.0.weight"], num_classes)
    state["decoder.net.0.weight"] = _with_zero_columns(state["decoder.net.0.weight"], num_classes)
    renamed = {k.replace("encoder.", "recognition_net.").replace("decoder.", "generation_net."): v
               for k, v in state.items()}
    cvae.load_state_dict(renamed)
    return cvae


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_with_y_ignored_it_is_the_vae(objective, float64):
    vae = VAE(latent_dim=3, hidden=(16,), activation="tanh")
    cvae = _cvae_ignoring_y(vae)
    x, labels = _binary(5).double(), torch.tensor([0, 3, 9, 3, 1])
    losses, grads = [], []
    for model, guide, args, net in ((vae.model, vae.guide, (x,), vae.decoder.net[-1]),
                                    (cvae.model, cvae.guide, (x, labels), cvae.generation_net.net[-1])):
        pyro.set_rng_seed(7)
        loss = get_objective(objective, num_particles=4).differentiable_loss(model, guide, *args)
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, net.weight)[0])
    assert abs(losses[0] - losses[1]) < 1e-10 * abs(losses[0])
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)
    ll_vae = log_likelihood(vae.model, vae.guide, x, num_samples=50, seed=3, progress=False)
    ll_cvae = log_likelihood(cvae.model, cvae.guide, x, num_samples=50, seed=3, progress=False, condition=labels)
    assert torch.allclose(ll_vae.per_datum, ll_cvae.per_datum, rtol=1e-12)


def test_integer_labels_are_one_hot_conditions():
    cvae = CVAE(latent_dim=2, hidden=(8,))
    x, labels = _binary(4), torch.tensor([2, 0, 7, 7])
    values = []
    for y in (labels, torch.nn.functional.one_hot(labels, 10).float()):
        pyro.set_rng_seed(1)
        values.append(get_objective("elbo").differentiable_loss(cvae.model, cvae.guide, x, y).item())
    assert values[0] == values[1]
    with pytest.raises(ValueError, match="conditions of shape"):
        cvae.model(x, torch.zeros(4, 3))


# ---- a conditional linear-Gaussian model: z ~ N(A y, t^2 I), x | z, y ~ N(W z + B y + b, s^2 I) ----

def _linear_gaussian_cvae(prior, seed=0, x_dim=5, y_dim=3, z_dim=2, s=0.7):
    g = torch.Generator().manual_seed(seed)
    cvae = CVAE(input_shape=(x_dim,), condition_shape=(y_dim,), latent_dim=z_dim, hidden=(), prior=prior,
                likelihood="gaussian", gaussian_scale=s, learn_scale=False)
    A, W, B, b = (torch.randn(*shape, generator=g, dtype=torch.float64)
                  for shape in ((z_dim, y_dim), (x_dim, z_dim), (x_dim, y_dim), (x_dim,)))
    with torch.no_grad():
        if prior == "learned":
            head = cvae.prior_net.head
            head.loc.weight.copy_(A), head.loc.bias.zero_()
            head.log_scale.weight.zero_(), head.log_scale.bias.fill_(math.log(0.8))
            t = 0.8 + head.min_scale
        else:
            A, t = torch.zeros_like(A), 1.0
        layer = cvae.generation_net.net[0]
        layer.weight.copy_(torch.cat([W, B], 1)), layer.bias.copy_(b)
    return cvae, (A, W, B, b, t, s)


def _exact_log_p(params, x, y):
    r"""log p(x|y) = log N(x; W A y + B y + b, t^2 W W^T + s^2 I)."""
    A, W, B, b, t, s = params
    mean = y @ (W @ A + B).T + b
    cov = t ** 2 * W @ W.T + s ** 2 * torch.eye(len(b), dtype=torch.float64)
    return MultivariateNormal(mean, cov).log_prob(x)


def _set_guide_near_posterior(cvae, params):
    """q(z|x,y): the exact posterior mean, a diagonal scale 1.2 times the posterior's widest axis."""
    A, W, B, b, t, s = params
    z_dim = W.shape[1]
    cov = torch.linalg.inv(torch.eye(z_dim, dtype=torch.float64) / t ** 2 + W.T @ W / s ** 2)
    head = cvae.recognition_net.head
    with torch.no_grad():  # mean = cov (A y / t^2 + W^T (x - B y - b) / s^2), linear in [x, y]
        head.loc.weight.copy_(torch.cat([cov @ W.T / s ** 2, cov @ (A / t ** 2 - W.T @ B / s ** 2)], 1))
        head.loc.bias.copy_(-cov @ W.T @ b / s ** 2)
        head.log_scale.weight.zero_()
        head.log_scale.bias.fill_(math.log(1.2 * torch.linalg.eigvalsh(cov).max().sqrt().item()))


@pytest.mark.parametrize("prior", ["learned", "standard"])
def test_importance_sampled_log_p_x_given_y_matches_the_closed_form(prior, float64):
    cvae, params = _linear_gaussian_cvae(prior)
    _set_guide_near_posterior(cvae, params)
    g = torch.Generator().manual_seed(1)
    y = torch.randn(6, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():  # data drawn from the model itself
        x = pyro.infer.Predictive(cvae.model, num_samples=1)(None, y)["x"][0]
    exact = _exact_log_p(params, x, y)
    ll = log_likelihood(cvae.model, cvae.guide, x, num_samples=4000, seed=0, progress=False, condition=y)
    assert (ll.per_datum_se > 0).all() and (ll.per_datum_se < 0.05).all()
    assert ((ll.per_datum - exact).abs() <= 4 * ll.per_datum_se + 1e-9).all(), (ll.per_datum, exact)
    # the prior as proposal is the plain Monte Carlo estimate of the same number
    mc = log_likelihood(cvae.model, cvae.prior_guide, x, num_samples=4000, seed=0, progress=False, condition=y)
    assert ((mc.per_datum - exact).abs() <= 4 * mc.per_datum_se + 1e-9).all()


# ---- quadrants ----------------------------------------------------------------------------------

@pytest.mark.parametrize("given", [1, 2, 3])
def test_quadrant_masks_give_the_right_pixels(given):
    mask = given_quadrants(given)
    assert mask.sum() == given * 14 * 14
    assert mask[14:, :14].all()  # the bottom-left quadrant is always given
    assert not mask[14:, 14:].any()  # the bottom-right quadrant is never given
    assert mask[:14, :14].all() == (given >= 2) and mask[:14, 14:].all() == (given == 3)
    x = _binary(3)
    condition = mask_quadrants(x, given)
    assert missing_pixels(condition).sum() == 3 * (4 - given) * 196
    assert torch.equal(condition[:, :, mask], x[:, :, mask])
    assert (condition[:, :, ~mask] == MISSING).all()


def test_quadrant_masks_refuse_other_counts():
    with pytest.raises(ValueError, match="1, 2 or 3"):
        given_quadrants(4)


@pytest.mark.parametrize("given", [1, 2, 3])
def test_the_baseline_log_likelihood_counts_only_the_missing_pixels(given, float64):
    baseline = DeterministicBaseline(CVAEConfig.quadrants(hidden=(8,)))
    x = _binary(4).double()
    y = mask_quadrants(x, given)
    logits = baseline.predict_params(y)
    missing = missing_pixels(y)
    by_hand = (Bernoulli(logits=logits).log_prob(x) * missing).flatten(1).sum(1)
    ll = log_likelihood(baseline.model, baseline.guide, x, num_samples=2, progress=False, condition=y)
    assert torch.allclose(ll.per_datum, by_hand, rtol=1e-12)
    assert (ll.per_datum_se == 0).all()  # no latent variable: every weight is log p(x|y)
    assert by_hand.mean() < 0 and missing.flatten(1).sum(1).eq((4 - given) * 196).all()


def test_the_cvae_likelihood_ignores_the_given_pixels_of_x(float64):
    cvae = CVAE(CVAEConfig.quadrants(hidden=(8,), latent_dim=2))
    x = _binary(3).double()
    y = mask_quadrants(x, 2)
    flipped = torch.where(missing_pixels(y), x, 1 - x)  # other given pixels in x, same condition
    weights = []
    for data in (x, flipped):
        pyro.set_rng_seed(0)
        trace = pyro.poutine.trace(pyro.poutine.replay(cvae.model, trace=pyro.poutine.trace(cvae.prior_guide)
                                                       .get_trace(data, y))).get_trace(data, y)
        weights.append(trace.nodes["x"]["fn"].log_prob(data))
    assert torch.equal(weights[0], weights[1])
    flipped_missing = torch.where(missing_pixels(y), 1 - x, x)
    assert not torch.equal(trace.nodes["x"]["fn"].log_prob(flipped_missing), weights[1])


def test_samples_keep_the_given_pixels_and_predictive_generates():
    cvae = CVAE(CVAEConfig.quadrants(hidden=(8,), latent_dim=2))
    y = mask_quadrants(_binary(4), 1)
    completed = cvae.sample(y)
    given = ~missing_pixels(y)
    assert torch.equal(completed[given], y[given]) and ((completed >= 0) & (completed <= 1)).all()
    draws = pyro.infer.Predictive(CVAE(latent_dim=2, hidden=(8,)).model, num_samples=2)(None, torch.arange(3))["x"]
    assert draws.shape == (2, 3, 1, 28, 28)
