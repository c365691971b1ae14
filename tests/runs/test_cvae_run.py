"""``pyro-lvm train cvae`` / ``pyro-lvm evaluate``: the conditional VAE run kind, on the embedded digits."""
import json
import os

import numpy as np
import pytest
import torch

import pyro_lvm.runs.cvae as cvae_run
from cli_helpers import fails
from pyro_lvm.cli import run
from pyro_lvm.models import CVAE
from pyro_lvm.runs import load_model


def _train(out, *argv):
    return run(["train", "cvae", "--smoke", "--no-progress", "--out", str(out), *argv])


def test_quadrants_train_then_evaluate(tmp_path):
    summary = _train(tmp_path, "--condition", "quadrants", "--given", "3")
    for name in ("checkpoint.pt", "baseline.pt", "config.json", "completions.png", "loss.png", "nll_table.csv",
                 "metrics.json"):
        assert os.path.isfile(tmp_path / name), name
    rows = summary["evaluation"]["rows"]
    assert [r["model"] for r in rows] == ["NN baseline", "CVAE", "CVAE", "CVAE"]
    baseline, importance, prior, elbo = (r["nll"] for r in rows)
    # one quadrant missing (196 pixels): a negative log-likelihood of binary pixels, at most 196 log 2
    # for anything better than a coin, and the bound: -ELBO >= the importance-sampled NLL (up to its se)
    assert 0 < importance < 196 * 1.5 and 0 < baseline
    assert elbo >= importance - 4 * rows[1]["se_mc"]
    again = run(["evaluate", str(tmp_path), "--samples", "7", "--images", "9", "--no-progress"])
    assert again["num_samples"] == 7 and again["num_data"] == 9 and again["given"] == 3
    assert abs(again["rows"][0]["nll"] - json.loads(open(again["file"]).read())["rows"][0]["nll"]) == 0
    # the baseline's exact value does not depend on K: the same on the first 9 images either way
    first = run(["evaluate", str(tmp_path), "--samples", "3", "--images", "9", "--no-progress"])
    assert first["rows"][0]["nll"] == pytest.approx(again["rows"][0]["nll"], rel=1e-6)


def test_label_condition_draws_one_row_per_class(tmp_path, monkeypatch):
    grids, conditions = [], []
    save, sample = cvae_run.save_class_grid, CVAE.sample
    monkeypatch.setattr(cvae_run, "save_class_grid", lambda samples, path: grids.append(samples) or save(samples, path))
    monkeypatch.setattr(CVAE, "sample", lambda self, y: conditions.append(y) or sample(self, y))
    summary = _train(tmp_path, "--condition", "label")
    assert os.path.isfile(tmp_path / "samples.png") and not os.path.exists(tmp_path / "baseline.pt")
    (samples,), (labels,) = grids, conditions
    assert samples.shape == (10, 8, 1, 28, 28)
    # row r holds the samples drawn for class r
    assert torch.equal(labels.reshape(10, 8), torch.arange(10)[:, None].expand(10, 8))
    assert load_model(tmp_path).config.condition_shape == (10,)
    assert [r["estimator"].split(",")[0] for r in summary["evaluation"]["rows"]] == [
        "importance sampling", "prior sampling", f"-ELBO ({cvae_run.ELBO_PARTICLES} draws; Pyro tutorial's measure)"]


def test_label_condition_needs_labels(tmp_path, capsys):
    data = tmp_path / "mine.npy"
    np.save(data, np.random.default_rng(0).random((64, 1, 8, 8)).astype("float32"))
    fails(["train", "cvae", "--condition", "label", "--data", str(data), "--epochs", "1", "--no-progress",
           "--out", str(tmp_path / "out")], capsys, "has no class labels", "--condition label")
