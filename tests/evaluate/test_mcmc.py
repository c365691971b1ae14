"""NUTS on the Bayesian mixture, ArviZ export, relabelling, R-hat, ESS and the trace plot."""
import warnings

import numpy as np
import pytest
import torch

from pyro_lvm.evaluate.mcmc import convergence_summary, relabel_components, sample_gmm_posterior
from pyro_lvm.models.gmm import match_components
from pyro_lvm.models.gmm_em import MixtureParams, sample_mixture

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az


def _two_chains(swap_second):
    """Draws from a 'posterior' with components at -2 and 3; chain 1 optionally labels them the other way."""
    rng = np.random.default_rng(0)
    locs = np.array([-2.0, 3.0])[None, None, :, None] + 0.05 * rng.standard_normal((2, 200, 2, 1))
    weights = np.array([0.3, 0.7])[None, None, :] + 0.01 * rng.standard_normal((2, 200, 2))
    scales = np.array([0.5, 1.5])[None, None, :, None] + 0.02 * rng.standard_normal((2, 200, 2, 1))
    if swap_second:
        locs[1], weights[1], scales[1] = locs[1, :, ::-1], weights[1, :, ::-1], scales[1, :, ::-1]
    return az.from_dict(posterior={"locs": locs, "weights": weights, "scales": scales})


def test_relabelling_removes_label_switching_between_chains():
    switched = _two_chains(swap_second=True)
    assert convergence_summary(switched)["max_rhat"] > 1.5  # R-hat flags the permutation, not a real problem
    relabel_components(switched)
    summary = convergence_summary(switched)
    assert summary["max_rhat"] < 1.02 and summary["min_ess_bulk"] > 100
    clean = _two_chains(swap_second=False)
    for name in ("locs", "weights", "scales"):  # every site is permuted with the means, draw by draw
        assert np.array_equal(switched.posterior[name].values, clean.posterior[name].values)


def test_nuts_samples_the_enumerated_model(tmp_path, float64):
    truth = MixtureParams(torch.tensor([0.4, 0.6]), torch.tensor([[-3.0], [3.0]]), torch.tensor([[1.0], [1.0]]))
    x, _ = sample_mixture(truth, 80, torch.Generator().manual_seed(0))
    result = sample_gmm_posterior(x, 2, num_samples=30, warmup_steps=50, num_chains=2, seed=0, max_tree_depth=5,
                                  trace_plot=str(tmp_path / "trace.png"))
    posterior = result.idata.posterior
    assert posterior.sizes["chain"] == 2 and posterior.sizes["draw"] == 30
    assert set(posterior.data_vars) == {"weights", "locs", "scales"}
    summary = result.summary
    assert summary["max_rhat"] < 1.15
    assert summary["min_ess_bulk"] > 20 and summary["divergences"] == 0
    with open(summary["trace_plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # posterior medians within a few posterior standard deviations (sigma / sqrt(N_k)) of the truth
    median = result.median.permute(match_components(result.median.locs, truth.locs))
    counts = 80 * truth.weights
    assert ((median.locs - truth.locs).abs() <= 4 * truth.scale / counts.sqrt()[:, None]).all()
    assert ((median.scale - truth.scale).abs() <= 4 * truth.scale / (2 * counts).sqrt()[:, None]).all()


def test_nuts_rejects_an_empty_run():
    with pytest.raises(ValueError, match="at least one chain"):
        sample_gmm_posterior(torch.randn(10, 1), 2, num_samples=0)
