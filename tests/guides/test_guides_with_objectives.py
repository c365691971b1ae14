"""Every guide with every objective on a small VAE, the meanfield warning, and checkpoints read back bit for bit."""
import os
import subprocess
import sys
import warnings

import pyro
import pytest
import torch

from cli_helpers import fails
from conftest import REPO
from pyro_lvm.cli import run
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.runs import load_model, save_model
from pyro_lvm.train import fit

GUIDES = [{"guide": "diag"}, {"guide": "fullcov"}, {"guide": "iaf", "flows": 2, "flow_update": "affine"},
          {"guide": "iaf", "flows": 2, "flow_update": "gated"}]
OBJECTIVES = [("elbo", {}), ("meanfield", {}), ("iwae", {"num_particles": 5}), ("renyi", {"num_particles": 5})]


def _vae(**guide):
    return VAE(input_shape=(1, 4, 4), latent_dim=3, hidden=(8,), **guide)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda g: f"{g['guide']}-{g.get('flow_update', '')}")
@pytest.mark.parametrize("objective, kwargs", OBJECTIVES, ids=[o for o, _ in OBJECTIVES])
def test_every_guide_trains_with_every_objective(guide, objective, kwargs):
    vae = _vae(**guide)
    x = torch.bernoulli(torch.full((6, 1, 4, 4), 0.4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # meanfield's sampled-KL note (tested below)
        loss = get_objective(objective, max_plate_nesting=1, **kwargs).differentiable_loss(vae.model, vae.guide, x)
    loss.backward()
    assert torch.isfinite(loss)
    guide_params = [p for name, p in vae.named_parameters() if name.startswith(("encoder", "guide_head"))]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in guide_params)
    assert any(p.grad.abs().sum() > 0 for p in guide_params if p.grad is not None)
    if guide["guide"] != "diag":
        head_grads = [p.grad for p in vae.guide_head.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in head_grads)


@pytest.mark.parametrize("guide", ["fullcov", "iaf"])
def test_meanfield_says_once_where_it_samples_the_kl(guide):
    vae, x = _vae(guide=guide), torch.bernoulli(torch.full((4, 1, 4, 4), 0.4))
    objective = get_objective("meanfield", max_plate_nesting=1)
    with pytest.warns(UserWarning) as record:
        for _ in range(3):
            objective.loss(vae.model, vae.guide, x)
    notes = [str(w.message) for w in record if "closed-form KL" in str(w.message)]
    name = "MultivariateNormal" if guide == "fullcov" else "FlowDistribution(Independent(Normal))"
    assert len(notes) == 1 and "site 'z'" in notes[0] and name in notes[0] and "Independent(Normal)" in notes[0]
    with warnings.catch_warnings():  # the diagonal guide has its closed form: nothing to say
        warnings.simplefilter("error")
        get_objective("meanfield", max_plate_nesting=1).loss(*_pair(_vae()), x)


def _pair(vae):
    return vae.model, vae.guide


_LOG_WEIGHTS = """
import sys, torch, pyro
from pyro_lvm.objectives import get_objective
from pyro_lvm.runs import load_model
torch.set_default_dtype(torch.float64)
vae = load_model(sys.argv[1])
x = torch.load(sys.argv[2])
pyro.set_rng_seed(5)
with torch.no_grad():
    torch.save(get_objective("iwae", num_particles=5, max_plate_nesting=1).log_weights(vae.model, vae.guide, x),
               sys.argv[3])
"""


@pytest.mark.parametrize("guide", GUIDES[1:3], ids=["fullcov", "iaf"])
def test_a_saved_guide_is_the_same_function_in_a_fresh_process(guide, tmp_path, float64):
    vae, x = _vae(**guide), torch.bernoulli(torch.full((8, 1, 4, 4), 0.4))
    fit(vae.model, vae.guide, "iwae", x, epochs=2, batch_size=4, lr=1e-2, progress=False)
    save_model(vae, tmp_path / "run")
    torch.save(x, tmp_path / "x.pt")
    subprocess.run([sys.executable, "-c", _LOG_WEIGHTS, str(tmp_path / "run"), str(tmp_path / "x.pt"),
                    str(tmp_path / "w.pt")], check=True, cwd=REPO, env={**os.environ, "PYTHONHASHSEED": "0"})
    vae.eval()
    pyro.set_rng_seed(5)
    with torch.no_grad():
        here = get_objective("iwae", num_particles=5, max_plate_nesting=1).log_weights(vae.model, vae.guide, x)
    there = torch.load(tmp_path / "w.pt")
    assert there.shape == (5, 8) and torch.equal(here, there)
    assert load_model(tmp_path / "run").config.guide == guide["guide"]


def test_the_command_trains_and_evaluates_an_iaf_guide(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "run")
    run(["train", "vae", "--smoke", "--no-progress", "--latent-dim", "3", "--hidden", "16", "--guide", "iaf",
         "--flows", "2", "--out", out])
    evaluation = run(["evaluate", out, "--samples", "5", "--images", "10", "--no-progress"])
    assert torch.isfinite(torch.tensor(evaluation["log_likelihood"]))
    vae = load_model(out)
    assert (vae.config.guide, vae.config.flows, vae.config.flow_update) == ("iaf", 2, "gated")


@pytest.mark.parametrize("argv, fragment", [
    (["--guide", "iaf", "--flows", "-1"], "argument --flows: must be a non-negative integer, got '-1'"),
    (["--guide", "iaf", "--flows", "two"], "argument --flows: must be a non-negative integer, got 'two'"),
    (["--flows", "2"], "--flows applies to --guide iaf only"),
    (["--guide", "fullcov", "--flow-update", "affine"], "--flow-update applies to --guide iaf only"),
])
def test_bad_flow_options_are_one_line_errors(argv, fragment, tmp_path, capsys):
    fails(["train", "vae", "--smoke", *argv, "--out", str(tmp_path / "run")], capsys, fragment)
    assert not (tmp_path / "run").exists()
