"""Stock Pyro trains our models: ``pyro.infer.SVI`` with Pyro's own ELBOs and optimizers.

SVI optimises only what appears as ``param`` sites, so every model and guide registers its
networks with ``pyro.module``; ``fit`` switches that off and must give the same numbers.
"""
import pyro
import pyro.optim
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, TraceGraph_ELBO

from pyro_lvm.guides import AmortizedNormalGuide
from pyro_lvm.models import (VAE, BayesianGaussianMixture, BernoulliLatentModel, GaussianMixture, LinearGaussian,
                             registration_enabled)
from pyro_lvm.models.gmm_em import random_params, sample_mixture
from pyro_lvm.nn import MLPEncoder
from pyro_lvm.train import fit


def _binary(n=64, seed=0):
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(seed))


def _fixed_seed_loss(elbo, model, guide, x, repeats=5):
    """The ELBO loss averaged over a few draws at a fixed seed, so before and after compare."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(123)
        return sum(elbo.loss(model, guide, x) for _ in range(repeats)) / repeats


def _vae():
    vae = VAE(latent_dim=2, hidden=(16,))
    return vae.model, vae.guide, Trace_ELBO(), _binary(), 0.05, {"decoder$$$", "encoder$$$"}


def _bernoulli_score_function():
    m = BernoulliLatentModel(latent_dim=3, decoder_hidden=(8,))
    return m.model, m.guide, TraceGraph_ELBO(), _binary(), 0.05, {"bernoulli_latent$$$"}


def _bernoulli_enumerated():
    m = BernoulliLatentModel(latent_dim=3, decoder_hidden=(8,))
    return (m.enum_model, m.enum_guide, TraceEnum_ELBO(max_plate_nesting=1), _binary(), 0.05,
            {"bernoulli_latent$$$"})


def _linear_gaussian():
    truth = LinearGaussian(4, 2, noise_scale=0.3, dtype=torch.float64)
    x, _ = truth.sample(256, generator=torch.Generator().manual_seed(0))
    model = LinearGaussian(4, 2, dtype=torch.float64)
    guide = AmortizedNormalGuide(MLPEncoder((4,), hidden=(), latent_dim=2).double())
    return model.model, guide, Trace_ELBO(), x, 0.05, {"linear_gaussian$$$", "amortized_normal_guide$$$"}


def _gaussian_mixture():
    x, _ = sample_mixture(random_params(3, 2, "full", generator=torch.Generator().manual_seed(1)), 300,
                          torch.Generator().manual_seed(2))
    mixture = GaussianMixture(3, 2, "full")
    return mixture.model, mixture.guide, TraceEnum_ELBO(max_plate_nesting=1), x.float(), 0.05, {"gaussian_mixture$$$"}


def _bayesian_mixture():
    x, _ = sample_mixture(random_params(2, 2, "diag", generator=torch.Generator().manual_seed(1)), 200,
                          torch.Generator().manual_seed(2))
    bayes = BayesianGaussianMixture(2, 2, "diag")
    return bayes.model, bayes.variational_guide(), TraceEnum_ELBO(max_plate_nesting=1), x.float(), 0.05, {"AutoNormal"}


PAIRS = {"vae": _vae, "bernoulli-score-function": _bernoulli_score_function,
         "bernoulli-enumerated": _bernoulli_enumerated, "linear-gaussian": _linear_gaussian,
         "gaussian-mixture": _gaussian_mixture, "bayesian-gaussian-mixture": _bayesian_mixture}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_stock_svi_lowers_the_loss_and_fills_the_param_store(name):
    torch.manual_seed(0)
    model, guide, elbo, x, lr, prefixes = PAIRS[name]()
    before = _fixed_seed_loss(elbo, model, guide, x)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), elbo)
    for _ in range(60):
        svi.step(x)
    after = _fixed_seed_loss(elbo, model, guide, x)
    names = list(pyro.get_param_store().keys())
    assert names, "nothing registered: SVI has nothing to optimise"
    for prefix in prefixes:
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    # per datum, training improves the loss by a clear margin (initial losses are far from optimal)
    assert (before - after) / len(x) > 0.5, (before / len(x), after / len(x))


def test_stock_svi_updates_every_network_of_the_vae():
    vae = VAE(latent_dim=2, hidden=(8,), likelihood="gaussian")
    x = 0.5 + 0.1 * torch.randn(16, 1, 28, 28)
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    before = {n: p.detach().clone() for n, p in vae.named_parameters()}
    svi.step(x)
    unchanged = [n for n, p in vae.named_parameters() if torch.equal(before[n], p)]
    assert not unchanged
    assert {n.split("$$$")[0] for n in pyro.get_param_store().keys()} == {"encoder", "decoder", "likelihood"}


def test_a_second_model_trains_under_the_same_names_without_clearing_the_store():
    # pyro.module returns the stored tensor for a known name: without taking it over, SVI would
    # optimise the first VAE's parameters while the second computes with its own
    x = _binary(16)
    first = VAE(latent_dim=2, hidden=(8,))
    SVI(first.model, first.guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO()).step(x)
    second = VAE(latent_dim=2, hidden=(8,))
    before = second.decoder.net[0].weight.detach().clone()
    SVI(second.model, second.guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO()).step(x)
    assert not torch.equal(before, second.decoder.net[0].weight)
    assert pyro.get_param_store()["decoder$$$net.0.weight"] is second.decoder.net[0].weight


def test_registration_can_be_switched_off_and_comes_back():
    vae = VAE(latent_dim=2, hidden=(8,))
    x = _binary(4)
    with registration_enabled(False):
        Trace_ELBO().loss(vae.model, vae.guide, x)
        assert len(pyro.get_param_store()) == 0
    Trace_ELBO().loss(vae.model, vae.guide, x)
    assert len(pyro.get_param_store()) > 0


def test_register_params_is_deprecated():
    with pytest.warns(FutureWarning, match="register_params"):
        vae = VAE(latent_dim=2, hidden=(8,), register_params=False)
    Trace_ELBO().loss(vae.model, vae.guide, _binary(4))
    assert len(pyro.get_param_store()) == 0  # an explicit False still opts out


def _fit_vae(**kwargs):
    torch.manual_seed(3)
    vae = VAE(latent_dim=3, hidden=(16,), **kwargs)
    result = fit(vae.model, vae.guide, "iwae", _binary(96), _binary(32, seed=1), epochs=3, batch_size=32,
                 progress=False, seed=5)
    return vae, result


def test_fit_skips_registration_and_gives_the_same_numbers(monkeypatch):
    import pyro_lvm.models.registration as registration

    calls = []
    real_module = registration.pyro.module
    monkeypatch.setattr(registration.pyro, "module", lambda *a, **k: calls.append(a[0]) or real_module(*a, **k))
    vae, result = _fit_vae()
    assert calls == [] and len(pyro.get_param_store()) == 0  # no pyro.module call at any step
    with pytest.warns(FutureWarning):
        opted_out, reference = _fit_vae(register_params=False)
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in reference.history]
    assert [r["test_loss"] for r in result.history] == [r["test_loss"] for r in reference.history]
    for p, q in zip(vae.parameters(), opted_out.parameters()):
        assert torch.equal(p, q)
    # and registration is on again once fit returns, even for a model fit trained
    Trace_ELBO().loss(vae.model, vae.guide, _binary(4))
    assert calls
