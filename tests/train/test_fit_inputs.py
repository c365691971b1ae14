"""What ``fit`` accepts: every Pyro ELBO, ``(x, y)`` batches, and data it must refuse in one sentence."""
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import JitTrace_ELBO, RenyiELBO, Trace_ELBO, TraceEnum_ELBO, TraceGraph_ELBO, TraceMeanField_ELBO

from pyro_lvm.data import TensorLoader, load_dataset
from pyro_lvm.errors import DataError, NonFiniteLossError
from pyro_lvm.guides import AmortizedNormalGuide
from pyro_lvm.models import VAE, BernoulliLatentModel, GaussianMixture, LinearGaussian
from pyro_lvm.models.gmm_em import random_params, sample_mixture
from pyro_lvm.nn import MLPEncoder
from pyro_lvm.train import evaluate_loss, fit


def _binary(n, seed=0):
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(seed))


def _vae_case():
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden=(16,))
    return vae, vae.model, vae.guide, _binary(128), _binary(32, seed=1)


def _mixture_case():
    x, _ = sample_mixture(random_params(3, 2, "diag", generator=torch.Generator().manual_seed(1)), 512,
                          torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    mixture = GaussianMixture(3, 2, "diag")
    return mixture, mixture.model, mixture.guide, x.float(), x[:64].float()


ELBOS = {
    "Trace_ELBO": (Trace_ELBO, _vae_case),
    "TraceMeanField_ELBO": (TraceMeanField_ELBO, _vae_case),
    "TraceGraph_ELBO": (TraceGraph_ELBO, _vae_case),
    "RenyiELBO": (lambda: RenyiELBO(alpha=0.5, num_particles=3), _vae_case),
    "JitTrace_ELBO": (lambda: JitTrace_ELBO(ignore_jit_warnings=True), _vae_case),
    "TraceEnum_ELBO": (lambda: TraceEnum_ELBO(max_plate_nesting=1), _mixture_case),
}


@pytest.mark.parametrize("name", sorted(ELBOS))
def test_every_pyro_elbo_trains_through_fit(name):
    make_elbo, make_case = ELBOS[name]
    module, model, guide, train, test = make_case()
    before = [p.detach().clone() for p in module.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated upstream
        result = fit(model, guide, make_elbo(), train, test, epochs=4, batch_size=32, lr=3e-2, progress=False)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0] - 1.0, losses  # nats per datum; the starts are far from optimal
    assert result.history[-1]["test_loss"] < result.history[0]["test_loss"], result.history
    assert all(not torch.equal(b, p) for b, p in zip(before, module.parameters()))
    assert len(pyro.get_param_store()) > 0  # registration stays on for Pyro's ELBOs


def test_our_objectives_leave_the_param_store_alone():
    module, model, guide, train, test = _vae_case()
    fit(model, guide, "elbo", train, test, epochs=1, batch_size=32, progress=False)
    assert len(pyro.get_param_store()) == 0


def _nan_guide_pair():
    model = LinearGaussian(3, 1)
    guide = AmortizedNormalGuide(MLPEncoder((3,), hidden=(), latent_dim=1))
    with torch.no_grad():
        guide.encoder.head.loc.weight.fill_(float("nan"))
    return model.model, guide, {"model": model, "guide": guide}


@pytest.mark.filterwarnings("ignore:Encountered NaN")
def test_a_nan_under_a_pyro_elbo_is_one_short_line():
    model, guide, modules = _nan_guide_pair()
    # validation on: torch's support check, whose message ends in the tensor, is cut to its first line
    with pytest.raises(ValueError) as info:
        fit(model, guide, RenyiELBO(), torch.randn(16, 3), epochs=1, progress=False, modules=modules)
    message = str(info.value)
    assert "loc" in message and "tensor(" not in message and "\n" not in message, message
    # validation off: the NaN loss stops training as it does for our objectives
    with pyro.validation_enabled(False), pytest.raises(NonFiniteLossError, match="RenyiELBO loss is nan"):
        fit(model, guide, RenyiELBO(), torch.randn(16, 3), epochs=1, progress=False, modules=modules)


# ---- dynamic binarization: the loader, not the grayscale tensor ----------------------------------
@pytest.fixture(scope="module")
def dynamic():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the embedded-data notice
        return load_dataset("embedded", binarize="dynamic")


def _custom_bernoulli_pair():
    decoder = torch.nn.Linear(2, 784)

    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=decoder(z).reshape(-1, 1, 28, 28)).to_event(3), obs=x)

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))

    return model, guide, {"decoder": decoder}


@pytest.mark.parametrize("which", ["vae", "bernoulli-latent", "custom"])
def test_grayscale_tensor_for_a_bernoulli_likelihood_says_which_loader_to_pass(dynamic, which):
    if which == "vae":
        vae = VAE(latent_dim=2, hidden=(8,))
        model, guide, modules = vae.model, vae.guide, None
    elif which == "bernoulli-latent":
        sbn = BernoulliLatentModel(latent_dim=2)
        model, guide, modules = sbn.model, sbn.guide, None
    else:
        model, guide, modules = _custom_bernoulli_pair()
    with pytest.raises(DataError) as info:
        fit(model, guide, "elbo", dynamic.train, epochs=1, progress=False, modules=modules)
    message = str(info.value)
    assert "data.train_loader(batch_size)" in message
    assert "\n" not in message and "tensor(" not in message and message.count(". ") == 0, message


def test_the_loader_trains(dynamic):
    vae = VAE(latent_dim=2, hidden=(8,))
    loader = dynamic.train_loader(500)
    result = fit(vae.model, vae.guide, "elbo", loader, epochs=1, progress=False)
    assert result.history[0]["train_loss"] > 0


def test_a_gaussian_likelihood_takes_grayscale_tensors(dynamic):
    vae = VAE(latent_dim=2, hidden=(8,), likelihood="gaussian")
    fit(vae.model, vae.guide, "elbo", dynamic.train[:64], epochs=1, batch_size=32, progress=False)


# ---- (x, y) batches -------------------------------------------------------------------------
def _labelled(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    means = torch.tensor([[-2.0, 0.0], [0.0, 3.0], [4.0, 1.0]])
    return means[y] + 0.5 * torch.randn(n, 2, generator=g), y


class ClassMeans(torch.nn.Module):
    """A conditional model with a closed-form optimum: x | y ~ N(mu_y, 1), no latents."""

    def __init__(self):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.zeros(3, 2))

    def model(self, x, y):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(self.mu[y], 1.0).to_event(1), obs=x)

    def guide(self, x, y):
        pass


def test_a_conditional_model_gets_the_labels():
    x, y = _labelled()
    cm = ClassMeans()
    loader = TensorLoader(x, 100, labels=y)
    result = fit(cm.model, cm.guide, "elbo", loader, TensorLoader(x, 300, shuffle=False, labels=y), epochs=300,
                 lr=0.05, progress=False)
    expected = torch.stack([x[y == k].mean(0) for k in range(3)])  # the maximum-likelihood means
    assert torch.allclose(cm.mu.detach(), expected, atol=0.02)
    # losses are per datum (counted from x, not from the (x, y) pair)
    exact = -dist.Normal(expected[y], 1.0).log_prob(x).sum(-1).mean().item()
    assert result.history[-1]["test_loss"] == pytest.approx(exact, abs=1e-3)
    assert result.history[-1]["train_loss"] == pytest.approx(exact, abs=0.01)


def test_an_unconditional_model_ignores_the_labels_and_trains_the_same(dynamic):
    runs = []
    for with_labels in (False, True):
        torch.manual_seed(0)
        vae = VAE(latent_dim=2, hidden=(8,))
        loader = TensorLoader(dynamic.train[:256], 64, binarize=True, labels=dynamic.train_labels[:256]
                              if with_labels else None)
        test = TensorLoader(dynamic.test[:100], 50, shuffle=False, labels=dynamic.test_labels[:100]
                            if with_labels else None)
        runs.append(fit(vae.model, vae.guide, "elbo", loader, test, epochs=2, progress=False, seed=1).history)
    for without, with_ in zip(*runs):
        assert without["train_loss"] == with_["train_loss"] and without["test_loss"] == with_["test_loss"]


def test_the_batch_rule_is_worked_out_once_not_per_step(monkeypatch):
    import inspect

    calls = []
    real = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda fn, *a, **k: calls.append(fn) or real(fn, *a, **k))
    x, y = _labelled(400)
    counts = []
    for batch_size in (200, 20):  # 2 and 20 steps
        calls.clear()
        cm = ClassMeans()
        fit(cm.model, cm.guide, "elbo", TensorLoader(x, batch_size, labels=y), epochs=1, progress=False)
        counts.append(len(calls))
    assert counts[0] == counts[1] == 1


def test_evaluate_loss_takes_labelled_batches_names_and_pyro_elbos():
    x, y = _labelled(300)
    cm = ClassMeans()
    loader = TensorLoader(x, 100, shuffle=False, labels=y)
    exact = -dist.Normal(torch.zeros(3, 2)[y], 1.0).log_prob(x).sum(-1).mean().item()
    assert evaluate_loss(cm.model, cm.guide, "elbo", loader) == pytest.approx(exact, rel=1e-6)
    assert evaluate_loss(cm.model, cm.guide, Trace_ELBO(), loader) == pytest.approx(exact, rel=1e-6)
