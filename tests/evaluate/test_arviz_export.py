"""The amortized posterior as an ArviZ InferenceData: groups, dims, coords, and the numbers behind them."""
import math

import pytest
import torch

from pyro_lvm.evaluate import log_likelihood, pareto_khat
from pyro_lvm.evaluate.arviz_export import _arviz, to_inference_data
from pyro_lvm.models import VAE

S, N, D = 40, 5, 3


@pytest.fixture
def vae_and_data(float64):
    vae = VAE(input_shape=(1, 4, 4), latent_dim=D, hidden=(8,)).eval()
    return vae, (torch.rand(N, 1, 4, 4) < 0.4).double()


def test_groups_dims_and_coords(vae_and_data, tmp_path):
    vae, x = vae_and_data
    idata = to_inference_data(vae.model, vae.guide, x, num_samples=S, site="z")
    assert set(idata.groups()) == {"posterior", "log_likelihood", "sample_stats", "observed_data"}
    assert idata.posterior["z"].dims == ("chain", "draw", "datum", "z_dim_0")
    assert idata.posterior["z"].shape == (1, S, N, D)
    assert idata.log_likelihood["x"].dims == ("chain", "draw", "datum")
    assert idata.sample_stats["log_weight"].shape == (1, S, N)
    assert idata.sample_stats["pareto_k"].dims == ("datum",)
    assert idata.observed_data["x"].shape == (N, 1, 4, 4)
    assert list(idata.posterior.coords["draw"].values) == list(range(S))
    assert list(idata.posterior.coords["datum"].values) == list(range(N))
    assert list(idata.posterior.coords["chain"].values) == [0]
    path = str(tmp_path / "posterior.nc")
    idata.to_netcdf(path)
    back = _arviz().from_netcdf(path)
    assert set(back.groups()) == set(idata.groups())
    assert (back.log_likelihood["x"].values == idata.log_likelihood["x"].values).all()


def test_log_likelihood_log_weights_and_khat_at_the_stored_draws(vae_and_data):
    vae, x = vae_and_data
    idata = to_inference_data(vae.model, vae.guide, x, num_samples=S, seed=3)
    z = torch.as_tensor(idata.posterior["z"].values[0])  # (S, N, D)
    stored = torch.as_tensor(idata.log_likelihood["x"].values[0])
    with torch.no_grad():
        expected = vae.likelihood(vae.decoder(z.reshape(S * N, D)), 3).log_prob(x.repeat(S, 1, 1, 1)).reshape(S, N)
        prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(stored, expected, rtol=0, atol=1e-10)
    # log w = log p(x|z) + log p(z) - log q(z|x), with q the guide's own density
    import pyro.poutine as poutine

    q = poutine.trace(vae.guide).get_trace(x).nodes["z"]["fn"]
    log_q = q.log_prob(z)
    log_w = torch.as_tensor(idata.sample_stats["log_weight"].values[0])
    assert torch.allclose(log_w, expected + prior - log_q, rtol=0, atol=1e-10)
    khat = torch.as_tensor(idata.sample_stats["pareto_k"].values)
    assert torch.equal(khat, pareto_khat(log_w, dim=0))
    # the draws are the importance sampler's: the same seed gives log_likelihood's estimate
    estimate = log_likelihood(vae.model, vae.guide, x, num_samples=S, seed=3, progress=False)
    assert torch.allclose(torch.logsumexp(log_w, 0) - math.log(S), estimate.per_datum, atol=1e-10)


def test_unknown_site_is_named(vae_and_data):
    vae, x = vae_and_data
    with pytest.raises(ValueError, match="no latent site"):
        to_inference_data(vae.model, vae.guide, x, num_samples=4, site="w")
