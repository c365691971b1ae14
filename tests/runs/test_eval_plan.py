"""The final evaluation's planner: its timed pilot grows only while it is cheap next to the evaluation.

A fake clock stands in for the wall clock: the model below charges it ``per_weight`` seconds for
every log-weight it computes (and ``per_call`` for every call), so the pilot's cost and the plan
are exact numbers, whatever else the machine is doing.
"""
import math
import types

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_lvm.runs import fitted
from pyro_lvm.runs.fitted import EVAL_FLOOR, PILOT_SHARE, PILOT_STAGES, plan_evaluation


class _Charged:
    """One latent per datum, whose log-weights cost fake seconds; records the ``(images, samples)`` of each call."""

    def __init__(self, clock, per_weight, per_call=0.0):
        self.clock, self.per_weight, self.per_call, self.calls = clock, per_weight, per_call, []

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z.unsqueeze(-1), 1.0).to_event(1), obs=x)
        self.clock.now += self.per_call + self.per_weight * z.numel()
        self.calls.append((z.shape[-1], z.numel() // z.shape[-1]))

    def guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.mean(-1), 1.0))


@pytest.fixture
def clock(monkeypatch):
    fake = types.SimpleNamespace(now=0.0)
    fake.perf_counter = lambda: fake.now
    monkeypatch.setattr(fitted, "time", fake)  # the planner's clock only
    return fake


TEST = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))


def test_a_slow_model_gets_a_small_pilot_and_an_exact_plan(clock):
    # 5 ms per log-weight: a PixelCNN decoder at 28x28 on a CPU; the old 100 x 100 pilot took 50 s
    model = _Charged(clock, per_weight=5e-3)
    samples, images, expected, full = plan_evaluation(model, TEST, None, None, EVAL_FLOOR)
    assert model.calls == [PILOT_STAGES[0]]  # 4 images x 4 samples, then the next stage would cost too much
    assert clock.now == pytest.approx(16 * 5e-3) and clock.now <= PILOT_SHARE * EVAL_FLOOR
    assert (samples, images) == (100, 100)  # the planner's floor, and the time it really takes
    assert expected == pytest.approx(5e-3 * 100 * 100, rel=1e-12)
    assert full == pytest.approx(5e-3 * 5000 * len(TEST), rel=1e-12)


def test_a_fast_model_times_the_whole_pilot(clock):
    # 1 us per log-weight and 10 ms per call: the larger stages spread the overhead over more samples
    model = _Charged(clock, per_weight=1e-6, per_call=1e-2)
    samples, images, expected, _ = plan_evaluation(model, TEST, None, None, EVAL_FLOOR)
    assert model.calls == list(PILOT_STAGES)
    assert clock.now <= PILOT_SHARE * EVAL_FLOOR
    cost = (1e-2 + 1e-6 * 100 * 100) / (100 * 100)  # seconds per sample, from the 100 x 100 stage
    assert samples == 1000 and images == min(len(TEST), int(EVAL_FLOOR / (cost * 1000)))
    assert expected == pytest.approx(cost * samples * images, rel=1e-12)


@pytest.mark.parametrize("asked, stages", [((2, 4), 1), ((5000, 1000), len(PILOT_STAGES))])
def test_the_pilot_is_sized_to_an_evaluation_asked_for(clock, asked, stages):
    # a finished run's evaluation has no budget: the pilot follows the evaluation's own expected time
    model = _Charged(clock, per_weight=5e-3)
    samples, images, expected, _ = plan_evaluation(model, TEST, *asked, math.inf)
    assert (samples, images) == asked and expected == pytest.approx(5e-3 * samples * images, rel=1e-12)
    assert model.calls == list(PILOT_STAGES[:stages])
    assert clock.now <= max(16 * 5e-3, PILOT_SHARE * expected)
