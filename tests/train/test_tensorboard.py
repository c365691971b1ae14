"""The TensorBoard callback: per-step and per-epoch scalars, image grids, and training left unchanged."""
import pytest
import torch

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from pyro_lvm.models import VAE  # noqa: E402
from pyro_lvm.objectives import get_objective  # noqa: E402
from pyro_lvm.train import fit  # noqa: E402
from pyro_lvm.train.tensorboard import TensorBoardCallback  # noqa: E402


def _fit(callbacks):
    torch.manual_seed(0)
    x = (torch.rand(48, 1, 6, 6) < 0.3).double()
    vae = VAE(input_shape=(1, 6, 6), latent_dim=2, hidden=(8,))
    result = fit(vae.model, vae.guide, get_objective("elbo"), x[:32], x[32:], epochs=2, batch_size=16, lr=1e-2,
                 seed=0, progress=False, callbacks=callbacks(vae, x[32:]))
    return vae, result


def test_scalars_per_step_and_epoch_and_grids_per_epoch(float64, tmp_path):
    plain, plain_result = _fit(lambda vae, test: [])
    logged, result = _fit(lambda vae, test: [TensorBoardCallback(str(tmp_path), model=vae, test=test, num_images=4)])
    # logging draws under a forked stream: the same parameters and losses as without it
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in plain_result.history]
    for a, b in zip(plain.parameters(), logged.parameters()):
        assert torch.equal(a, b)
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0}).Reload()
    steps = events.Scalars("step/loss")
    assert [e.step for e in steps] == [1, 2, 3, 4]  # 2 batches x 2 epochs
    per_epoch = events.Scalars("epoch/train_loss")
    assert [e.step for e in per_epoch] == [1, 2]
    assert [e.value for e in per_epoch] == pytest.approx([r["train_loss"] for r in result.history], rel=1e-6)
    # the epoch's loss per datum is the mean of its steps' (equal batches)
    assert per_epoch[0].value == pytest.approx((steps[0].value + steps[1].value) / 2, rel=1e-6)
    assert [e.step for e in events.Scalars("epoch/test_loss")] == [1, 2]
    for tag in ("samples", "reconstructions"):
        assert [e.step for e in events.Images(tag)] == [1, 2]
    image = events.Images("reconstructions")[0]
    assert (image.width, image.height) == (2 + 8 * 8, 2 + 8)  # 4 pairs of 6-pixel images, 2-pixel padding


def test_the_vqvae_trainer_logs_each_stage_and_its_reconstructions(tmp_path):
    from pyro_lvm.cli import run

    run(["train", "vqvae", "--smoke", "--no-progress", "--epochs", "1", "--prior-epochs", "1",
         "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")])
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert any(t.startswith("vqvae/") for t in scalars) and any(t.startswith("prior/") for t in scalars)
    assert [e.step for e in events.Images("reconstructions")] == [1]
