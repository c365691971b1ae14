"""The importance-sampled log-likelihood against the exact log p(x) of the linear-Gaussian model."""
import math

import pytest
import torch

from linear_gaussian_cases import ShiftedGuide, make_case
from pyro_lvm.evaluate import elbo_terms, log_likelihood


def test_exact_with_the_exact_posterior(float64):
    model, x, _, _ = make_case()
    ll = log_likelihood(model.model, model.exact_guide, x, num_samples=50, progress=False)
    assert torch.allclose(ll.per_datum, model.log_prob(x), atol=1e-10)
    assert ll.se_mc < 1e-6


def test_matches_exact_within_its_standard_error_chunked(float64):
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc + 0.4, 1.6 * scale)
    exact = model.log_prob(x)
    # max_elements forces chunks of 7 samples, so chunk accumulation is exercised
    ll = log_likelihood(model.model, guide, x, num_samples=3000, batch_size=8, max_elements=7 * 8 * 4,
                        progress=False, seed=1)
    z = (ll.per_datum - exact).abs() / ll.per_datum_se
    assert z.max() < 4.5, z
    assert abs(ll.mean - exact.mean().item()) < 4 * ll.se_mc
    # the reported standard error is calibrated: spread over repeats ~ se (within 40% at 30 repeats)
    repeats = torch.stack([log_likelihood(model.model, guide, x, num_samples=300, progress=False).per_datum
                           for _ in range(40)])
    se_one = log_likelihood(model.model, guide, x, num_samples=300, progress=False).per_datum_se
    ratio = repeats.std(0) / se_one
    assert 0.8 < ratio.mean() < 1.2, ratio  # the std of a 40-sample std is ~11%; averaged over 8 data


def test_summary_units(float64):
    model, x, _, _ = make_case()
    ll = log_likelihood(model.model, model.exact_guide, x, num_samples=5, progress=False)
    s = ll.summary()
    assert s["nll"] == pytest.approx(-s["log_likelihood"])
    assert s["bits_per_dim"] == pytest.approx(-s["log_likelihood"] / (x.shape[1] * math.log(2)))
    assert s["num_data"] == x.shape[0]


def test_elbo_terms_split(float64):
    model, x, loc, scale = make_case()
    guide = ShiftedGuide(loc, scale)
    terms = elbo_terms(model.model, guide, x, num_samples=2000)
    assert terms["elbo"] == pytest.approx(terms["reconstruction"] - terms["kl"])
    # KL of two diagonal Gaussians, exactly
    q = torch.distributions.Normal(guide.loc, guide.log_scale.exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1).mean().item()
    assert terms["kl"] == pytest.approx(kl, rel=1e-9)
    assert terms["kl_by_site"] == {"z": pytest.approx(kl, rel=1e-9)}


def test_elbo_terms_name_the_dequantization_noise_apart_from_z():
    from pyro_lvm.models import VAE

    torch.manual_seed(0)
    vae = VAE(input_shape=(1, 4, 4), hidden=(8,), latent_dim=2, likelihood="gaussian", dequantize="variational")
    x = torch.randint(0, 256, (5, 1, 4, 4)).float()
    terms = elbo_terms(vae.model, vae.guide, x)
    assert set(terms["kl_by_site"]) == {"z", "u"}
    assert sum(terms["kl_by_site"].values()) == pytest.approx(terms["kl"], rel=1e-9)
    assert terms["kl_by_site"]["z"] >= 0
    from pyro_lvm.runs.fitted import format_evaluation

    summary = log_likelihood(vae.model, vae.guide, x, num_samples=4).summary()
    table = format_evaluation({**summary, **terms}).splitlines()
    assert any(line.startswith("  KL(q(z|x) || p(z))") and f"{terms['kl_by_site']['z']:.3f}" in line for line in table)
    assert any("dequantization noise" in line and f"{terms['kl_by_site']['u']:.3f}" in line for line in table)


def test_needs_per_datum_sites(float64):
    import pyro
    import pyro.distributions as dist

    def model(x):
        g = pyro.sample("g", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(g, 1.0), obs=x)

    def guide(x):
        pyro.sample("g", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="every site inside a plate"):
        log_likelihood(model, guide, torch.zeros(3), num_samples=4, progress=False)
