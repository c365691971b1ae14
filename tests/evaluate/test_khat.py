r"""Pareto k-hat of the importance weights: exact Pareto tails, and the log-likelihood's flags.

With two latent dimensions and the guide :math:`q = \mathcal N(\mu_{post}, c^2 \Sigma_{post})`,
:math:`\log w = \mathrm{const} + (1 - c^2) E` with :math:`E = \tfrac12 \chi^2_2 \sim \mathrm{Exp}(1)`,
so for :math:`c < 1` the weights are exactly Pareto with shape :math:`k = 1 - c^2`. The GPD fit to
the :math:`M` largest of :math:`S` draws has standard error about :math:`(1 + k)/\sqrt M`.
"""
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from linear_gaussian_cases import make_case
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.evaluate.loglik import _log_weights
from pyro_lvm.evaluate.psis import KHAT_THRESHOLD, khat_summary, pareto_khat
from pyro_lvm.runs.fitted import format_evaluation


class ScaledPosterior(torch.nn.Module):
    """The exact posterior of the linear-Gaussian model with its covariance scaled by ``c^2``."""

    def __init__(self, model, c):
        super().__init__()
        self.model, self.c = model, c

    def forward(self, x):
        post = self.model.posterior(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(post.loc.detach(), scale_tril=self.c * post.scale_tril.detach()))


def _tail_se(k, draws):
    tail = math.ceil(min(draws / 5, 3 * math.sqrt(draws)))
    return (1 + k) / math.sqrt(tail)


def test_pareto_khat_recovers_the_shape_of_exact_pareto_weights(float64):
    g = torch.Generator().manual_seed(3)
    draws, columns = 2000, 40
    for k in (0.3, 0.9):
        log_w = k * torch.empty(draws, columns).exponential_(generator=g)  # w = U^(-k): Pareto, shape k
        khat = pareto_khat(log_w, dim=0)
        assert khat.shape == (columns,)
        # the prior towards 1/2 biases by (1/2 - k) * 10 / (M + 10): under 0.04 here
        assert abs(khat.mean().item() - k) < 4 * _tail_se(k, draws) / math.sqrt(columns) + 0.04, khat.mean()
    # the draws' dimension is honoured: the transposed layout gives the same answer
    assert torch.equal(pareto_khat(log_w.T, dim=1), khat)


def test_pareto_khat_names_what_it_cannot_fit(float64):
    khat = pareto_khat(torch.tensor([0.0, 1e-7]).repeat(50).unsqueeze(-1).expand(100, 3))
    assert torch.equal(khat, torch.full((3,), -math.inf))  # all weights equal: the guide is the posterior
    assert pareto_khat(torch.randn(20, 4)).isnan().all()  # fewer than 21 draws: no tail to fit
    ties = torch.tensor([0.0] * 97 + [1.0] * 3).unsqueeze(-1)  # a discrete latent's few distinct weights
    assert pareto_khat(ties).isnan().all()
    s = khat_summary(torch.tensor([0.2, 0.9, math.nan, -math.inf, 0.75]))
    assert s == {"khat_max": 0.9, "khat_mean": pytest.approx((0.2 + 0.9 + 0.75) / 3), "unreliable": 2,
                 "khat_unknown": 1}


def test_narrow_guide_is_flagged_unreliable(float64):
    model, x, _, _ = make_case()
    ll = log_likelihood(model.model, ScaledPosterior(model, 0.4), x, num_samples=5000, progress=False, seed=0)
    k = 1 - 0.4 ** 2  # 0.84: infinite variance, and beyond the 0.7 threshold
    assert abs(ll.khat.mean().item() - k) < 4 * _tail_se(k, 5000) / math.sqrt(len(x)) + 0.02, ll.khat
    summary = ll.summary()
    assert summary["unreliable"] == int((ll.khat > KHAT_THRESHOLD).sum()) >= len(x) // 2, ll.khat
    assert summary["khat_max"] == ll.khat.max().item() > KHAT_THRESHOLD
    assert torch.equal(ll.unreliable, ll.khat > KHAT_THRESHOLD)
    table = format_evaluation({**summary, "elbo": 0.0, "reconstruction": 0.0, "kl": 0.0})
    row = next(line for line in table.splitlines() if "unreliable: k-hat > 0.7" in line)
    assert row.endswith(f"{summary['unreliable']} of {len(x)}, whose standard errors understate the error"), row


def test_wide_and_exact_guides_are_reliable_and_calibrated(float64):
    model, x, _, _ = make_case()
    exact = model.log_prob(x).detach()
    exact_guide = log_likelihood(model.model, model.exact_guide, x, num_samples=100, progress=False)
    assert torch.equal(exact_guide.khat, torch.full((len(x),), -math.inf))  # equal weights, up to rounding
    wide = ScaledPosterior(model, 1.6)  # bounded weights (k = -1 at their maximum)
    ll = log_likelihood(model.model, wide, x, num_samples=2000, progress=False, seed=1)
    assert (ll.khat < 0.5).all(), ll.khat
    assert ll.summary()["unreliable"] == 0
    # calibrated: errors in units of the reported standard error are ~N(0, 1) over 10 repeats x 8 data
    z = torch.stack([(r.per_datum - exact) / r.per_datum_se for r in (
        log_likelihood(model.model, wide, x, num_samples=500, progress=False, seed=s) for s in range(10))])
    assert z.abs().max() < 4.5, z
    assert 0.75 < z.pow(2).mean().sqrt() < 1.25, z  # rms of 80 standard normals: 1 +- 0.08


def test_khat_is_fitted_to_each_datums_kept_draws(float64):
    model, x, _, _ = make_case()
    guide = ScaledPosterior(model, 0.6)
    # chunks of 7 draws over batches of 8 data; k-hat from the first 40 of 100 draws
    ll = log_likelihood(model.model, guide, x, num_samples=100, batch_size=8, max_elements=7 * 8 * 4,
                        progress=False, seed=5, khat_samples=40)
    torch.manual_seed(5)
    draws = torch.cat([_log_weights(model.model, guide, x, min(7, 100 - d), 1) for d in range(0, 100, 7)])
    assert torch.equal(ll.khat, pareto_khat(draws[:40]))
    assert torch.allclose(ll.per_datum, draws.logsumexp(0) - math.log(100))
    skipped = log_likelihood(model.model, guide, x, num_samples=30, progress=False, khat_samples=0)
    assert skipped.khat.isnan().all() and math.isnan(skipped.summary()["khat_max"])
    assert "not estimated (too few draws in the tail" in format_evaluation(
        {**skipped.summary(), "elbo": 0.0, "reconstruction": 0.0, "kl": 0.0})
