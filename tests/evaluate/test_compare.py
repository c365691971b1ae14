"""compare_likelihood_estimators: the harness's values-only rows, the same numbers log_likelihood gives."""
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from linear_gaussian_cases import ShiftedGuide, make_case
from pyro_lvm.evaluate import compare_likelihood_estimators, log_likelihood


def test_rows_are_the_importance_sampled_log_likelihoods(float64):
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc + 0.2, 1.3 * scale)

    def prior(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))

    exact = model.log_prob(x).mean().item()
    rows = compare_likelihood_estimators(model.model, {"guide": guide, "prior": prior}, x, [1, 40], exact=exact,
                                         seed=2)
    assert [(r["estimator"], r["K"]) for r in rows] == [("guide", 1), ("guide", 40), ("prior", 1), ("prior", 40)]
    for row, proposal in zip(rows, (guide, guide, prior, prior)):
        ll = log_likelihood(model.model, proposal, x, num_samples=row["K"], batch_size=len(x), seed=2,
                            progress=False)
        assert row["log_likelihood"] == ll.mean
        assert row["se_mc"] == ll.se_mc or (math.isnan(row["se_mc"]) and row["K"] == 1)
        assert row["gap"] == pytest.approx(exact - ll.mean)
        assert row["khat_max"] == ll.summary()["khat_max"] or row["K"] == 1
    # the prior is a much worse proposal: its k-hat flags it
    assert rows[3]["khat_max"] > rows[1]["khat_max"]
    assert all(r["gap"] is None for r in compare_likelihood_estimators(model.model, {"g": guide}, x, [3]))
