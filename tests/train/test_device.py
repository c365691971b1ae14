"""Devices on the CPU through the same code paths as a GPU, checkpoints from another device, bf16.

bf16 tolerance: the networks' layers round to bfloat16 (unit roundoff 2^-8 = 3.9e-3); the loss
sums ~2e5 float32 log-densities of those outputs, whose rounding errors largely cancel. We allow
a relative difference of 1e-3 from float32 (measured: 4e-6 for the ELBO, 8e-7 for IWAE-10 here).
"""
import io

import pytest
import torch

from cli_helpers import fails
from pyro_lvm.cli import run
from pyro_lvm.device import network_autocast, resolve_device
from pyro_lvm.errors import UsageError
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.runs.saved import load_model
from pyro_lvm.serialization import load_state, save_state


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no usable CUDA GPU; use --device cpu"):
            resolve_device("cuda:0")


def test_train_with_device_cpu_and_load_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    summary = run(["train", "vae", "--smoke", "--device", "cpu", "--eval-samples", "5", "--eval-images", "10",
                   "--no-progress", "--out", str(out)])
    assert summary["history"] and summary["evaluation"]["num_data"] == 10
    assert next(load_model(out).parameters()).device == torch.device("cpu")
    fails(["train", "vae", "--smoke", "--device", "tpu", "--out", str(tmp_path / "other")], capsys, "device 'tpu'")


def test_checkpoint_written_on_another_device_loads_on_the_cpu(tmp_path, monkeypatch):
    """The storages are tagged ``cuda:0`` as a GPU run writes them; loading maps them to the CPU."""
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 7}
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_state(tmp_path / "gpu.pt", "fit", state)
    raw = (tmp_path / "gpu.pt").read_bytes()
    assert b"cuda:0" in raw
    if not torch.cuda.is_available():  # without map_location the file wants a GPU
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(io.BytesIO(raw), weights_only=True)
    kind, loaded = load_state(tmp_path / "gpu.pt")
    assert kind == "fit" and loaded["w"].device.type == "cpu" and torch.equal(loaded["w"], state["w"])


@pytest.mark.parametrize("name,k", [("elbo", 1), ("iwae", 10)])
def test_bf16_loss_within_tolerance_of_float32(name, k):
    torch.manual_seed(0)
    vae = VAE(hidden=(64,), latent_dim=8)
    x = torch.bernoulli(torch.rand(256, 1, 28, 28))
    objective = get_objective(name, num_particles=k, max_plate_nesting=1)
    torch.manual_seed(1)
    exact = objective.differentiable_loss(vae.model, vae.guide, x)
    seen = []
    first_layer = next(m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear))
    first_layer.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    torch.manual_seed(1)
    with network_autocast([vae], "cpu", "bf16"):
        reduced = objective.differentiable_loss(vae.model, vae.guide, x)
    assert torch.bfloat16 in seen  # the layers ran in bf16 ...
    assert reduced.dtype == torch.float32  # ... the loss, log-weights and logsumexp in float32
    assert reduced.item() != exact.item()
    assert abs(reduced.item() - exact.item()) < 1e-3 * abs(exact.item())
