"""The discretized logistic / Normal (PixelCNN++ eq. 2) against exact CDF differences."""
import math

import pytest
import torch

from pyro_lvm.nn.discretized import discretized_log_prob, discretized_mixture_log_prob, levels_of

LEVELS = torch.arange(256, dtype=torch.float64)
CASES = [(0.0, math.log(0.01)), (0.5, math.log(0.2)), (0.93, math.log(1e-3)), (1.4, math.log(0.05)),
         (-0.3, math.log(0.5)), (0.2, math.log(1e-4))]


@pytest.mark.parametrize("family", ["logistic", "normal"])
@pytest.mark.parametrize("loc,log_scale", CASES)
def test_probabilities_of_the_256_values_sum_to_one_with_the_edge_bins(family, loc, log_scale):
    log_p = discretized_log_prob(LEVELS, torch.full((256,), loc, dtype=torch.float64), log_scale, family)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.isfinite(log_p).all()


def test_logistic_bins_are_sigmoid_differences_and_edges_reach_infinity():
    loc, scale = torch.tensor(0.4, dtype=torch.float64), 0.07
    p = discretized_log_prob(LEVELS, loc, math.log(scale)).exp()
    c = LEVELS / 255
    expected = torch.sigmoid((c + 0.5 / 255 - loc) / scale) - torch.sigmoid((c - 0.5 / 255 - loc) / scale)
    expected[0] = torch.sigmoid((0.5 / 255 - loc) / scale)           # (-inf, half a step]
    expected[255] = 1 - torch.sigmoid((1 - 0.5 / 255 - loc) / scale)  # [1 - half a step, inf)
    assert torch.allclose(p, expected, rtol=1e-9, atol=1e-15)


def test_mixture_is_the_weighted_sum_of_its_components():
    logits = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    loc = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    log_scale = torch.log(torch.tensor([0.05, 0.2, 0.01], dtype=torch.float64))
    x = LEVELS
    mix = discretized_mixture_log_prob(x, logits.expand(256, 3), loc.expand(256, 3), log_scale.expand(256, 3)).exp()
    weights = torch.softmax(logits, 0)
    by_hand = sum(weights[m] * discretized_log_prob(x, loc[m], log_scale[m]).exp() for m in range(3))
    assert torch.allclose(mix, by_hand, rtol=1e-10)
    assert mix.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_levels_round_unit_intensities_to_integers():
    assert levels_of(torch.tensor([0.0, 1 / 255, 0.5, 1.0])).tolist() == [0.0, 1.0, 128.0, 255.0]
