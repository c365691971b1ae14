"""Pyro's validation, kept: site shapes, enumeration misuse, the mean-field order, masked KLs."""
import warnings

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.distributions.testing import fakes

from pyro_lvm.objectives import get_objective

OBJECTIVES = ["elbo", "tracegraph", "meanfield", "iwae", "renyi"]


@pytest.mark.parametrize("name", OBJECTIVES)
@pytest.mark.parametrize("k", [1, 3])
def test_a_batch_shape_outside_its_plates_is_an_error(name, k):
    def model():
        with pyro.plate("data", 5, dim=-1):
            # batch shape (5, 1) broadcast to (5, 5): a batch dim that no plate declares
            pyro.sample("x", dist.Normal(torch.zeros(1), 1.0).expand_by([5]))

    with pytest.raises(ValueError, match="invalid log_prob shape"):
        get_objective(name, num_particles=k).loss(model, model)


@pytest.mark.parametrize("name", ["elbo", "tracegraph", "iwae"])
def test_enumeration_configured_in_the_guide_warns(name):
    def model():
        pyro.sample("x", dist.Bernoulli(0.5))

    def guide():
        pyro.sample("x", dist.Bernoulli(pyro.param("p", torch.tensor(0.4))), infer={"enumerate": "parallel"})

    with pytest.warns(UserWarning, match="configured for enumeration.*TraceEnum_ELBO"):
        get_objective(name, num_particles=2).loss(model, guide)


def test_meanfield_warns_when_model_and_guide_orders_differ():
    def model():
        x = pyro.sample("x", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(x, 1.0))

    def guide():
        y = pyro.sample("y", dist.Normal(pyro.param("loc", torch.tensor(0.0)), 1.0))
        pyro.sample("x", dist.Normal(y, 1.0))

    def same_order_guide():
        x = pyro.sample("x", dist.Normal(pyro.param("loc", torch.tensor(0.0)), 1.0))
        pyro.sample("y", dist.Normal(x, 1.0))

    with pytest.warns(UserWarning, match="mean field restriction"):
        get_objective("meanfield").loss(model, guide)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_objective("meanfield").loss(model, same_order_guide)


@pytest.mark.parametrize("masked_by", ["poutine", "distribution"])
def test_meanfield_with_a_masked_site_has_zero_loss_and_gradient(masked_by):
    def masked(fn):
        return fn.mask(False) if masked_by == "distribution" else fn

    def model():
        with poutine.mask(mask=masked_by != "poutine"):
            pyro.sample("z", masked(dist.Normal(0.0, 1.0)))

    def guide():
        with poutine.mask(mask=masked_by != "poutine"):
            pyro.sample("z", masked(dist.Normal(pyro.param("loc", torch.tensor(0.3)), 1.0)))

    loss = get_objective("meanfield").differentiable_loss(model, guide)
    assert loss.item() == 0.0
    if loss.requires_grad:
        (grad,) = torch.autograd.grad(loss, [pyro.param("loc").unconstrained()], allow_unused=True)
        assert grad is None or grad.abs().item() == 0.0


def test_meanfield_refuses_score_function_sites_as_pyro_does():
    def model():
        pyro.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        pyro.sample("z", fakes.NonreparameterizedNormal(pyro.param("loc", torch.tensor(0.0)), 1.0))

    with pytest.raises(NotImplementedError, match="fully reparameterised"):
        get_objective("meanfield").loss(model, guide)
