"""pyro_lvm.testing: each assertion passes on right answers and fails, saying why, on wrong ones."""
import textwrap

import pytest
import torch

import pyro_lvm.testing
from linear_gaussian_cases import ShiftedGuide, analytic_elbo, make_case
from pyro_lvm.objectives import get_objective
from pyro_lvm.testing import assert_bound_sandwich, assert_monotone_in_k, assert_unbiased_gradient, assert_within_se


def test_within_se():
    assert_within_se(1.03, 1.0, se=0.01)
    with pytest.raises(AssertionError, match=r"differs from the exact 1 by \+0\.05, 5\.0 standard errors"):
        assert_within_se(1.05, 1.0, se=0.01)
    with pytest.raises(AssertionError, match="with a standard error of 0"):
        assert_within_se(1.0 + 1e-9, 1.0, se=0.0)
    with pytest.raises(ValueError, match="non-negative"):
        assert_within_se(1.0, 1.0, se=float("nan"))


def test_bound_sandwich():
    iwae = {1: -10.02, 10: -9.5, 100: -9.31}
    assert_bound_sandwich(-10.0, iwae, -9.3, se=0.01)  # within error everywhere
    assert_bound_sandwich(-10.0, [-10.02, -9.5], -9.3, se=(0.01, [0.01, 0.02]))
    with pytest.raises(AssertionError, match=r"ELBO -9\.8 exceeds the IWAE bound at K = 1, -10\.02, by 15\.6 standard"):
        assert_bound_sandwich(-9.8, iwae, -9.3, se=0.01)
    with pytest.raises(AssertionError, match=r"IWAE bound at K = 100, -9\.31, exceeds log p\(x\) = -9\.4 by 9\.0"):
        assert_bound_sandwich(-10.0, iwae, -9.4, se=0.01)
    with pytest.raises(AssertionError, match=r"ELBO 1 exceeds log p\(x\) = 0"):
        assert_bound_sandwich(1.0, {1: 0.0}, 0.0, se=(0.01, 1.0))
    with pytest.raises(ValueError, match="2 standard errors for 3 values"):
        assert_bound_sandwich(-10.0, iwae, -9.3, se=(0.01, [0.01, 0.02]))


def test_monotone_in_k():
    assert_monotone_in_k({1: -10.0, 10: -9.5, 100: -9.51}, {1: 0.01, 10: 0.01, 100: 0.01})  # a dip within error
    assert_monotone_in_k([-10.0, -9.5], 0.0)
    with pytest.raises(AssertionError, match=r"decreases from K = 10 \(-9\.5\) to K = 100 \(-9\.7\) by 14\.1 standard"):
        assert_monotone_in_k({100: -9.7, 1: -10.0, 10: -9.5}, 0.01)  # compared in order of K
    with pytest.raises(ValueError, match=r"no standard error for K = \[100\]"):
        assert_monotone_in_k({1: -10.0, 100: -9.5}, {1: 0.01})


def test_unbiased_gradient(float64):
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc + 0.3, 0.8 * scale)
    params = list(guide.parameters()) + [model.weight]
    exact = torch.autograd.grad(-analytic_elbo(model, guide, x), params)

    def draw(objective):
        return lambda: torch.autograd.grad(objective.differentiable_loss(model.model, guide, x), params)

    assert_unbiased_gradient(draw(get_objective("elbo")), exact, num_draws=200)
    # the IWAE gradient is the gradient of another bound: caught, with the coordinate named
    with pytest.raises(AssertionError, match=r"gradient coordinate \d+ of 40: mean of 200 draws .* coordinates fail"):
        assert_unbiased_gradient(draw(get_objective("iwae", num_particles=5)), exact, num_draws=200)
    with pytest.raises(ValueError, match="40 coordinates, the reference 32"):
        assert_unbiased_gradient(draw(get_objective("elbo")), exact[:2], num_draws=2)


def test_the_docstring_example_runs(float64):
    doc = pyro_lvm.testing.__doc__
    code = textwrap.dedent(doc[doc.index("    from pyro_lvm.evaluate"):doc.index("**References**")])
    namespace = {}
    exec(compile(code, "pyro_lvm.testing docstring", "exec"), namespace)
    namespace["test_iwae_tightens_towards_log_px"]()
