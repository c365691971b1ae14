"""Discrete likelihoods of 8-bit pixels, bits per dimension by hand, and honest reporting."""
import math

import numpy as np
import pytest
import torch

from pyro_lvm.data import load_dataset
from pyro_lvm.errors import DataError
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.evaluate.loglik import LogLikelihood
from pyro_lvm.models import VAE
from pyro_lvm.models.discretized import Dequantized
from pyro_lvm.models.likelihoods import make_likelihood

X = torch.tensor([[[[0.0, 255.0], [17.0, 128.0]]]], dtype=torch.float64)  # one 1x2x2 image
D = 4


def bits(log_p):
    """The conversion by hand: -log2 P(x) / D."""
    return -log_p / (D * math.log(2))


def by_hand_logistic(x, loc, scale):
    c, h = x / 255, 0.5 / 255
    upper, lower = torch.sigmoid((c + h - loc) / scale), torch.sigmoid((c - h - loc) / scale)
    return torch.where(x == 0, upper, torch.where(x == 255, 1 - lower, upper - lower)).log()


def check_bits(log_p_model, log_p_hand):
    assert log_p_model.item() == pytest.approx(log_p_hand, rel=1e-9)
    ll = LogLikelihood(log_p_model.reshape(1), torch.zeros(1), 1, D)
    assert ll.bits_per_dim == pytest.approx(bits(log_p_hand), rel=1e-9)
    assert ll.bits_per_dim > 0


def test_discretized_logistic_bits_by_hand():
    loc = torch.tensor([[[[0.1, 0.9], [0.2, 0.5]]]], dtype=torch.float64)
    log_scale = torch.full_like(loc, math.log(0.05))
    lik = make_likelihood("discretized-logistic")
    log_p = lik(torch.cat([loc, log_scale], 1), 3).log_prob(X)
    check_bits(log_p, by_hand_logistic(X, loc, 0.05).sum().item())


def test_logistic_mixture_bits_by_hand():
    torch.manual_seed(0)
    lik = make_likelihood("logistic-mixture", components=2)
    params = torch.randn(1, 6, 2, 2, dtype=torch.float64) * 0.3
    logits, loc, log_scale = params[:, 0:2], params[:, 2:4], params[:, 4:6]  # blocks of C = 1 channel
    w = torch.softmax(logits, 1)
    p = sum(w[:, m:m + 1] * by_hand_logistic(X, loc[:, m:m + 1], log_scale[:, m:m + 1].exp()).exp() for m in range(2))
    check_bits(lik(params, 3).log_prob(X), p.log().sum().item())


def test_categorical_bits_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(1, 256, 2, 2, dtype=torch.float64)
    lik = make_likelihood("categorical")
    hand = torch.log_softmax(logits, 1).gather(1, X.long()).sum().item()
    check_bits(lik(logits, 3).log_prob(X), hand)


def test_bernoulli_bits_by_hand():
    logits = torch.tensor([[[[0.3, -1.0], [2.0, 0.0]]]], dtype=torch.float64)
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]], dtype=torch.float64)
    p = torch.sigmoid(logits)
    hand = (x * p.log() + (1 - x) * (1 - p).log()).sum().item()
    check_bits(make_likelihood("bernoulli")(logits, 3).log_prob(x), hand)


def test_dequantized_gaussian_bits_by_hand():
    loc = torch.tensor([[[[0.1, 0.9], [0.2, 0.5]]]], dtype=torch.float64)
    u = torch.tensor([[[[0.5, 0.25], [0.75, 0.1]]]], dtype=torch.float64)
    gaussian = make_likelihood("gaussian", scale=0.2, learn_scale=False).double()
    log_p = Dequantized(gaussian(loc, 3), u).log_prob(X)
    y, sigma = (X + u) / 256, gaussian.scale.item()  # 0.2 as its float32 log-scale holds it
    hand = (-0.5 * ((y - loc) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)).sum().item() \
        - D * math.log(256)
    check_bits(log_p, hand)


def test_a_density_of_undequantized_data_reports_no_bits_per_dimension():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 4, 4)
    vae = VAE(input_shape=(1, 4, 4), latent_dim=2, hidden=(8,), likelihood="gaussian", gaussian_scale=0.01)
    ll = log_likelihood(vae.model, vae.guide, x, num_samples=2, progress=False)
    assert not ll.probability and not vae.reports_probability
    with pytest.raises(ValueError, match="density .* bits per dimension are undefined"):
        ll.bits_per_dim
    summary = ll.summary()
    assert summary["bits_per_dim"] is None and summary["log_p_kind"] == "density"


def test_eight_bit_data_keep_integers_and_refuse_other_pixels(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "rgb.npz"
    np.savez(path, train=rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8),
             test=rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    data = load_dataset(str(path), eight_bit=True)
    raw = np.load(path)["train"]
    assert torch.equal(data.train, torch.from_numpy(raw).float())
    floats = tmp_path / "floats.npz"
    np.savez(floats, train=rng.random((4, 1, 4, 4)).astype(np.float32),
             test=rng.random((2, 1, 4, 4)).astype(np.float32))
    with pytest.raises(DataError, match="not 8-bit images"):
        load_dataset(str(floats), eight_bit=True)
    vae = VAE(input_shape=(1, 4, 4), latent_dim=2, hidden=(8,), likelihood="discretized-logistic")
    with pytest.raises(DataError, match="integer pixel values 0..255"):
        vae.validate_data(torch.rand(2, 1, 4, 4))


def test_cifar10_without_its_folder_says_where_to_unpack_it(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=str(tmp_path))
