import math

import pytest
import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.serialization import load_state, save_state
from pyro_lvm.vqvae import (VQVAE, CodePrior, PlainAutoencoder, VQVAEConfig, load_checkpoint,
                            save_checkpoint)
from pyro_lvm.vqvae.evaluate import bits_per_dim, discretized_gaussian_log_prob
from pyro_lvm.vqvae.train import encode_dataset, fit_prior, fit_vqvae

SMALL = dict(hidden_channels=16, residual_channels=8, num_residual_layers=1, embedding_dim=4,
             num_codes=32)


def test_forward_gives_named_outputs_on_28x28():
    model = VQVAE(**SMALL)
    x = torch.rand(5, 1, 28, 28)
    out = model(x)
    assert out.reconstruction.shape == x.shape
    (q,) = out.quantizer_outputs
    assert q.indices.shape == (5, 7, 7) and q.quantized.shape == (5, 4, 7, 7)
    assert torch.allclose(out.reconstruction_loss, ((out.reconstruction - x) ** 2).mean())
    assert torch.allclose(out.loss, out.reconstruction_loss + q.loss)


def test_works_on_32x32_rgb():
    model = VQVAE(in_channels=3, image_size=(32, 32), **SMALL)
    assert model.grid_shapes == [(8, 8)]
    x = torch.rand(2, 3, 32, 32)
    assert model(x).reconstruction.shape == x.shape
    assert model.decode(model.encode(x)).shape == x.shape


def test_two_levels_decode_their_own_codes():
    model = VQVAE(levels=2, num_downsamples=1, **SMALL)
    assert model.grid_shapes == [(7, 7), (14, 14)]
    x = torch.rand(3, 1, 28, 28)
    model.train()
    model(x)  # k-means start of both codebooks
    model.eval()
    top, bottom = model.encode(x)
    assert top.shape == (3, 7, 7) and bottom.shape == (3, 14, 14)
    with torch.no_grad():
        assert torch.allclose(model.decode([top, bottom]), model(x).reconstruction, atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    model = VQVAE(**SMALL)
    for bad in (torch.rand(2, 3, 28, 28), torch.rand(2, 1, 32, 32), torch.rand(1, 28, 28)):
        with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\)"):
            model(bad)
    with pytest.raises(ValueError, match="code maps of shape"):
        model.decode([torch.zeros(2, 5, 5, dtype=torch.long)])
    with pytest.raises(ValueError, match="not divisible by 4"):
        VQVAEConfig(image_size=(30, 30))
    with pytest.raises(ValueError, match="levels must be 1 or 2"):
        VQVAEConfig(levels=3)


def test_plain_autoencoder_has_the_same_nets_and_no_quantizer():
    config = VQVAEConfig(**SMALL)
    ae, vq = PlainAutoencoder(config), VQVAE(config)
    assert sum(p.numel() for p in ae.parameters()) == sum(
        p.numel() for name, p in vq.named_parameters() if "quantizers" not in name)
    out = ae(torch.rand(2, 1, 28, 28))
    assert out.quantizer_outputs == () and torch.equal(out.loss, out.reconstruction_loss)


def _trained(tmp_images, levels=1):
    torch.manual_seed(0)
    model = VQVAE(levels=levels, num_downsamples=3 - levels, **SMALL)
    history = fit_vqvae(model, [tmp_images[:16], tmp_images[16:]], epochs=2, progress=False)
    prior = CodePrior(model.num_codes, model.grid_shapes, channels=8, num_layers=2)
    fit_prior(prior, encode_dataset(model, [tmp_images]), epochs=1, progress=False)
    return model, prior, history


def test_training_history_reports_epoch_codebook_health():
    images = torch.rand(32, 1, 28, 28)
    _, _, history = _trained(images)
    assert [row["epoch"] for row in history] == [1, 2]
    for key in ("train_mse", "train_codes_used", "train_dead_codes", "train_perplexity", "restarts"):
        assert key in history[-1]
    assert history[-1]["train_codes_used"] + history[-1]["train_dead_codes"] == 32
    histogram = history[-1]["train_histogram"]  # every vector of the epoch, not one batch
    assert len(histogram) == 32 and sum(histogram) == 32 * 7 * 7
    assert sum(c > 0 for c in histogram) == history[-1]["train_codes_used"]


@pytest.mark.parametrize("levels", [1, 2])
def test_checkpoint_round_trip_reproduces_reconstruction_exactly(tmp_path, levels):
    images = torch.rand(32, 1, 28, 28)
    model, prior, history = _trained(images, levels)
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", model, prior, {"history": history})
    loaded = load_checkpoint(path)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(images).reconstruction, model(images).reconstruction)
        codes = model.encode(images)
        assert all(torch.equal(a, b) for a, b in zip(loaded.model.encode(images), codes))
        assert all(torch.equal(a, b) for a, b in zip(loaded.prior(codes), prior.eval()(codes)))
    assert loaded.metadata["history"] == history
    for a, b in zip(loaded.model.quantizers, model.quantizers):
        assert torch.equal(a.codebook, b.codebook) and torch.equal(a.unused_steps, b.unused_steps)


def test_checkpoint_errors_name_the_file_and_the_problem(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(CheckpointError, match="no checkpoint at .*nowhere.pt"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage\.pt (is corrupt or truncated|: it is damaged)"):
        load_checkpoint(garbage)
    good = save_checkpoint(tmp_path / "good.pt", VQVAE(**SMALL))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(open(good, "rb").read()[:2000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt is corrupt or truncated"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt is not a pyro-lvm checkpoint"):
        load_checkpoint(foreign)
    kind, state = load_state(good)
    state["model_config"]["num_codes"] = 64
    save_state(tmp_path / "mismatch.pt", kind, state)
    with pytest.raises(CheckpointError, match=r"mismatch\.pt: the model weights do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_discretized_gaussian_sums_to_one_over_the_256_levels():
    levels = torch.arange(256, dtype=torch.float64) / 255
    for mean, log_scale in ((0.0, math.log(0.01)), (0.5, math.log(0.2)), (0.93, math.log(1e-3)),
                            (1.4, math.log(0.05))):
        probs = discretized_gaussian_log_prob(levels, torch.full((256,), mean, dtype=torch.float64),
                                              log_scale).exp()
        assert probs.sum().item() == pytest.approx(1.0, abs=1e-9)
        assert (probs >= 0).all()


def test_bits_per_dim_adds_prior_and_decoder_terms():
    images = torch.rand(32, 1, 28, 28)
    model, prior, _ = _trained(images)
    result = bits_per_dim(model, prior, [images], log_scale=math.log(0.3))
    prior_bits = sum(b.sum() for b in prior.nll_bits(model.encode(images))).item()
    assert result["prior_bits_per_dim"] == pytest.approx(prior_bits / images.numel(), rel=1e-5)
    assert result["bits_per_dim_bound"] == pytest.approx(
        result["prior_bits_per_dim"] + result["decoder_bits_per_dim"])


def test_package_docstring_example_runs():
    import textwrap

    import pyro_lvm.vqvae

    doc = pyro_lvm.vqvae.__doc__
    block = doc[doc.index("Example::") + len("Example::"):doc.index("Training, the prior")]
    namespace = {}
    exec(textwrap.dedent(block), namespace)
    assert namespace["samples"].shape == (4, 1, 28, 28)
    assert namespace["codes"][0].shape == (8, 7, 7)


def test_a_non_finite_loss_is_named():
    from pyro_lvm.errors import NonFiniteLossError

    images = torch.rand(8, 1, 28, 28)
    images[3, 0, 5, 5] = float("nan")
    with pytest.raises(NonFiniteLossError, match="loss became nan"):
        fit_vqvae(VQVAE(**SMALL), [images], epochs=1, progress=False)
