"""Dequantization bounds on a one-dimensional discrete distribution with a known probability table.

Four levels (B = 4), data of shape (1, 1, 1). The model density is p(y) on [0, 1); the exact
probability of level x is the mass of p on [x/4, (x+1)/4).
"""
import math

import pyro.distributions as dist
import pytest
import torch

from pyro_lvm.guides.dequantization import UniformDequantizer, VariationalDequantizer
from pyro_lvm.models import VAE
from pyro_lvm.models.discretized import Dequantized
from pyro_lvm.objectives import get_objective

B = 4
LEVELS = torch.arange(B, dtype=torch.float64).reshape(B, 1, 1, 1)
LOC, SCALE = 0.4, 0.1


def normal_base(n):
    return dist.Normal(torch.full((n, 1, 1, 1), LOC, dtype=torch.float64), SCALE).to_event(3)


def exact_log_prob():
    cdf = torch.distributions.Normal(torch.tensor(LOC, dtype=torch.float64), SCALE).cdf
    edges = torch.arange(B + 1, dtype=torch.float64) / B
    return (cdf(edges[1:]) - cdf(edges[:-1])).log()


def bound(q, draws=10000, seed=0):
    """Per level: mean and standard error of log p(x|u) - log q(u|x), u ~ q(u|x)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        x = LEVELS.expand(B, 1, 1, 1)
        qx = q(x)
        u = qx.sample((draws,))
        terms = Dequantized(normal_base(B).expand((draws, B)), u, B).log_prob(x) - qx.log_prob(u)
    return terms.mean(0), terms.std(0) / math.sqrt(draws)


def test_uniform_bound_is_below_the_exact_log_probability():
    uniform, se = bound(UniformDequantizer((1, 1, 1)))
    # E_u log p((x+u)/4) - log 4 by the midpoint rule on 100000 points, independently of the sampler
    u = (torch.arange(100000, dtype=torch.float64) + 0.5) / 100000
    quadrature = torch.stack([torch.distributions.Normal(torch.tensor(LOC, dtype=torch.float64), SCALE)
                              .log_prob((k + u) / B).mean() - math.log(B) for k in range(B)])
    assert torch.allclose(uniform, quadrature, atol=float(4 * se.max()))
    gap = exact_log_prob() - quadrature
    assert (gap > 0.01).all(), gap  # Jensen's gap: the density varies within each bin


def test_uniform_bound_is_exact_for_a_density_constant_within_each_bin():
    table = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    edges = torch.arange(B + 1, dtype=torch.float64) / B
    steps = dist.MixtureSameFamily(dist.Categorical(probs=table),
                                   dist.Uniform(edges[:-1], edges[1:], validate_args=False), validate_args=False)
    base = dist.Independent(steps.expand((B, 1, 1, 1)), 3)
    q = UniformDequantizer((1, 1, 1))(LEVELS)
    torch.manual_seed(0)
    u = q.sample((50,))
    log_p = Dequantized(base.expand((50, B)), u, B).log_prob(LEVELS)
    assert torch.allclose(log_p, table.log().expand(50, B), atol=1e-12)


def test_variational_bound_beats_uniform_and_approaches_the_exact_value():
    torch.manual_seed(0)
    q = VariationalDequantizer((1, 1, 1), flows=1, count_bins=8, hidden=16, num_bins=B).double()
    optimizer = torch.optim.Adam(q.parameters(), lr=0.02)
    for _ in range(300):
        qx = q(LEVELS)
        u = qx.rsample((64,))
        elbo = Dequantized(normal_base(B).expand((64, B)), u, B).log_prob(LEVELS) - qx.log_prob(u)
        optimizer.zero_grad()
        (-elbo.mean(0).sum()).backward()
        optimizer.step()
    variational, se_v = bound(q, seed=1)
    uniform, se_u = bound(UniformDequantizer((1, 1, 1)), seed=1)
    exact = exact_log_prob()
    se = torch.sqrt(se_v ** 2 + se_u ** 2)
    assert (variational > uniform + 3 * se).all(), (variational, uniform)
    assert (variational <= exact + 4 * se_v).all(), (variational, exact)           # still a lower bound
    # measured: gaps of about 0.01 nats where uniform's are 0.04 to 3.2
    assert ((exact - variational) < 0.03).all(), exact - variational
    assert ((exact - variational) < 0.3 * (exact - uniform)).all(), (exact - variational, exact - uniform)


@pytest.mark.parametrize("dequantize", ["uniform", "variational"])
def test_vae_samples_the_noise_in_its_guide_and_both_bounds_train_it(dequantize):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (5, 1, 4, 4)).double()
    vae = VAE(input_shape=(1, 4, 4), latent_dim=2, hidden=(8,), likelihood="gaussian", dequantize=dequantize).double()
    for name in ("elbo", "iwae"):
        vae.zero_grad()
        loss = get_objective(name, num_particles=3, max_plate_nesting=1).differentiable_loss(vae.model, vae.guide, x)
        loss.backward()
        assert torch.isfinite(loss)
        if dequantize == "variational":
            grads = [p.grad for p in vae.dequantizer.parameters()]
            assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # the bound is on 8-bit probabilities: at most log P(x) <= 0, so at least 0 bits per dimension
    assert vae.reports_probability and vae.eight_bit
