"""The fit loop: learning, bit-for-bit resume, checkpoints and NaN handling."""
import hashlib

import pytest
import torch

from pyro_lvm.data import TensorLoader
from pyro_lvm.errors import CheckpointError, NonFiniteLossError
from pyro_lvm.guides import AmortizedNormalGuide
from pyro_lvm.models import VAE, BernoulliLatentModel, LinearGaussian
from pyro_lvm.nn import MLPEncoder
from pyro_lvm.objectives import get_objective
from pyro_lvm.train import EarlyStopping, ExponentialDecay, evaluate_loss, fit, load_checkpoint


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.2), generator=g)


def _vae():
    torch.manual_seed(1)
    return VAE(latent_dim=3, hidden=(16,))


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_fit_lowers_the_loss_of_ppca(float64):
    truth = LinearGaussian(5, 2, noise_scale=0.3)
    x, _ = truth.sample(512, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = LinearGaussian(5, 2)
    guide = AmortizedNormalGuide(MLPEncoder((5,), hidden=(), latent_dim=2))
    result = fit(model.model, guide, "elbo", x, x, epochs=30, batch_size=64, lr=3e-2, progress=False,
                 modules={"model": model, "guide": guide})
    exact_per_datum = -model.log_prob(x).mean().item()
    # the ELBO bounds -log p(x) from above and training closes most of the initial gap
    assert result.history[-1]["test_loss"] >= exact_per_datum - 0.05
    assert result.history[-1]["test_loss"] < result.history[0]["test_loss"] - 1.0
    assert -truth.log_prob(x).mean().item() == pytest.approx(exact_per_datum, abs=0.1)


def _bernoulli_latent():
    torch.manual_seed(1)
    return BernoulliLatentModel(input_shape=(1, 28, 28), latent_dim=4, decoder_hidden=(8,), baseline="both",
                                baseline_hidden=(4,))


RESUME_CASES = {
    # model factory, objective factory, binarize the loader on the fly, callbacks factory
    "vae-iwae": (_vae, lambda: "iwae", False, lambda: []),
    "vae-dynamic-binarization": (_vae, lambda: "elbo", True, lambda: []),
    "bernoulli-tracegraph-baselines": (_bernoulli_latent, lambda: get_objective("tracegraph"), False, lambda: []),
    "vae-early-stopping": (_vae, lambda: "elbo", False,
                           lambda: [EarlyStopping(monitor="train_loss", patience=2, min_delta=3.0)]),
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_is_bit_for_bit(tmp_path, case):
    make_model, make_objective, binarize, make_callbacks = RESUME_CASES[case]
    x = torch.rand(96, 1, 28, 28) if binarize else _data()
    test = _data(32, seed=1)

    def run(epochs, path, resume=False):
        module = make_model()  # fresh weights: on resume everything must come from the checkpoint
        result = fit(module.model, module.guide, make_objective(), TensorLoader(x, 32, binarize=binarize), test,
                     epochs=epochs, progress=False, seed=3, checkpoint=str(tmp_path / path), resume=resume,
                     callbacks=make_callbacks())
        return module, result

    straight, full = run(6, "a.pt")
    run(2, "b.pt")
    resumed, out = run(6, "b.pt", resume=True)
    for p, q in zip(_params(straight), _params(resumed)):
        assert torch.equal(p, q)
    assert len(out.history) == len(full.history)
    for ours, theirs in zip(out.history, full.history):
        for key in ("epoch", "train_loss", "test_loss", "test_elbo", "lr"):
            assert ours[key] == theirs[key], key


def test_reloaded_checkpoint_reproduces_the_test_loss(tmp_path):
    x, test = _data(), _data(32, seed=1)
    vae = _vae()
    result = fit(vae.model, vae.guide, "elbo", x, test, epochs=2, progress=False, checkpoint=str(tmp_path / "c.pt"))
    state = load_checkpoint(str(tmp_path / "c.pt"))
    again = _vae()
    again.load_state_dict(state["modules"]["model"])
    again.eval()
    loss = evaluate_loss(again.model, again.guide, get_objective("elbo"), TensorLoader(test, 500, shuffle=False),
                         seed=0)
    assert loss == result.history[-1]["test_loss"]


def test_corrupt_missing_and_mismatched_checkpoints(tmp_path):
    x = _data()
    path = str(tmp_path / "run.pt")
    vae = _vae()
    fit(vae.model, vae.guide, "elbo", x, epochs=1, progress=False, checkpoint=path, config={"latent_dim": 3})
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(str(tmp_path / "nothing.pt"))
    with pytest.raises(CheckpointError, match="different config"):
        fit(vae.model, vae.guide, "elbo", x, epochs=2, progress=False, checkpoint=path, resume=True,
            config={"latent_dim": 4})
    other = VAE(latent_dim=5, hidden=(16,))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        fit(other.model, other.guide, "elbo", x, epochs=2, progress=False, checkpoint=path, resume=True)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_nan_mid_training_names_the_site_and_keeps_the_checkpoint(tmp_path):
    x = _data()
    path = str(tmp_path / "nan.pt")
    vae = _vae()
    fit(vae.model, vae.guide, "elbo", x, epochs=1, batch_size=32, progress=False, checkpoint=path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    calls = {"n": 0}

    def poisoned_model(data):
        calls["n"] += 1
        if calls["n"] == 3:  # one param-discovery pass, then the second step of epoch 2
            with torch.no_grad():
                vae.decoder.net[-1].bias.fill_(float("nan"))
        vae.model(data)

    with pytest.raises(NonFiniteLossError, match=r"model site 'x'.*epoch 2, step 2.*epoch 1\) is untouched") as info:
        fit(poisoned_model, vae.guide, "elbo", x, epochs=3, batch_size=32, progress=False, checkpoint=path,
            resume=True, modules={"model": vae})
    assert "x" in info.value.sites
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == digest


def test_nan_in_the_guide_is_named_even_with_validation_on():
    vae = _vae()
    with torch.no_grad():
        vae.encoder.head.loc.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"guide site 'z'.*loc.*epoch 1, step 1"):
        fit(vae.model, vae.guide, "elbo", _data(), epochs=1, progress=False)


def test_nan_gradient_behind_a_finite_loss_never_reaches_the_checkpoint(tmp_path):
    x = _data(32)
    path = str(tmp_path / "grad.pt")
    vae = _vae()
    fit(vae.model, vae.guide, "elbo", x, epochs=1, batch_size=32, progress=False, checkpoint=path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    vae.decoder.net[-1].bias.register_hook(lambda grad: grad * float("nan"))
    with pytest.raises(NonFiniteLossError, match="parameters became non-finite.*untouched"):
        fit(vae.model, vae.guide, "elbo", x, epochs=2, batch_size=32, progress=False, checkpoint=path, resume=True)
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == digest


def test_callbacks_can_stop_training():
    vae = _vae()
    stop_after_two = lambda record, state: record["epoch"] >= 2  # noqa: E731
    result = fit(vae.model, vae.guide, "elbo", _data(), epochs=10, progress=False, callbacks=[stop_after_two])
    assert len(result.history) == 2
    early = EarlyStopping(monitor="train_loss", patience=2, min_delta=1e9)  # never improves enough
    assert len(fit(vae.model, vae.guide, "elbo", _data(), epochs=10, progress=False,
                   callbacks=[early]).history) == 3


def test_pyro_params_are_trained_too():
    import pyro
    import pyro.distributions as dist

    def model(x):
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    def guide(x):
        pass

    result = fit(model, guide, "elbo", torch.full((64,), 3.0), epochs=300, batch_size=64, lr=0.2, progress=False,
                 lr_schedule=ExponentialDecay(0.99))
    assert pyro.param("loc").item() == pytest.approx(3.0, abs=0.1)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_lbfgs_through_the_closure(float64):
    truth = LinearGaussian(3, 1, noise_scale=0.5)
    x, _ = truth.sample(256, generator=torch.Generator().manual_seed(0))
    import pyro
    import pyro.distributions as dist

    def model(data):
        loc = pyro.param("loc", torch.zeros(3))
        with pyro.plate("data", data.shape[0]):
            pyro.sample("x", dist.Normal(loc, 1.0).to_event(1), obs=data)

    def lbfgs(params, lr, betas, eps):
        return torch.optim.LBFGS(params, lr=lr, max_iter=50, line_search_fn="strong_wolfe")

    fit(model, lambda data: None, "elbo", x, epochs=2, batch_size=256, lr=1.0, optimizer=lbfgs, progress=False)
    assert torch.allclose(pyro.param("loc"), x.mean(0), atol=1e-6)  # the maximum-likelihood mean, exactly
