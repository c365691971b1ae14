"""Objectives by name and Pyro ELBO instances: defaults, the adapter, and its messages."""
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO, TraceGraph_ELBO

from pyro_lvm.models import LinearGaussian
from pyro_lvm.objectives import PyroELBO, get_objective
from linear_gaussian_cases import ShiftedGuide, make_case


def test_renyi_defaults_to_the_command_lines_alpha():
    from pyro_lvm.cli import build_parser

    cli = build_parser().parse_args(["train", "vae", "--out", "unused"])
    assert get_objective("renyi").alpha == cli.alpha == 0.5


def test_default_renyi_is_not_iwae(float64):
    # alpha = 0.5 lies strictly between the IWAE bound (alpha = 0) and the ELBO: on the same
    # draws, log mean w^(1-a) / (1-a) is below log mean w unless all weights are equal
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc + 0.4, 1.6 * scale)
    losses = {}
    for name in ("renyi", "iwae"):
        torch.manual_seed(0)
        losses[name] = get_objective(name, num_particles=5).loss(model.model, guide, x)
    assert losses["renyi"] > losses["iwae"] + 1e-3


@pytest.mark.parametrize("elbo, hint", [(TraceGraph_ELBO(), "get_objective('tracegraph')"),
                                        (RenyiELBO(), "get_objective('renyi', alpha=...)")])
def test_pyro_elbos_without_differentiable_loss_are_accepted_and_name_the_nearest_objective(elbo, hint):
    objective = get_objective(elbo)
    assert isinstance(objective, PyroELBO)
    model = LinearGaussian(3, 1)
    with pytest.raises(TypeError, match="has no differentiable_loss") as info:
        objective.differentiable_loss(model.model, model.exact_guide, torch.zeros(4, 3))
    assert hint in str(info.value)


def test_loss_and_grads_fills_gradients_and_returns_the_loss():
    model = LinearGaussian(3, 1)
    x = torch.randn(8, 3)
    for elbo in (Trace_ELBO(), RenyiELBO()):
        model.zero_grad()
        torch.manual_seed(0)
        value = PyroELBO(elbo).loss_and_grads(model.model, model.exact_guide, x)
        torch.manual_seed(0)
        assert value == pytest.approx(elbo.loss(model.model, model.exact_guide, x), rel=1e-5)
        assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0


def test_a_wrong_objective_is_named_by_type_not_printed():
    with pytest.raises(TypeError, match="got Tensor$"):
        get_objective(torch.zeros(100, 100))
