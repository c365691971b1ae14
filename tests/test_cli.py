"""The ``pyro-lvm`` command: train into a run folder, evaluate it, and fail with named errors."""
import json
import os

import pytest

from pyro_lvm.cli import main, run


def test_train_then_evaluate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "run")
    summary = run(["train", "vae", "--smoke", "--objective", "iwae", "--particles", "3", "--latent-dim", "4",
                   "--hidden", "32", "--out", out, "--no-progress"])
    for name in ("checkpoint.pt", "metrics.json", "metrics.csv", "evaluation.json", "samples.png",
                 "reconstructions.png", "loss.png"):
        assert os.path.exists(os.path.join(out, name)), name
    history = json.load(open(os.path.join(out, "metrics.json")))
    assert history[0]["epoch"] == 1 and "test_loss" in history[0]
    assert "log p(x), importance sampled" in capsys.readouterr().out
    evaluation = run(["evaluate", out, "--samples", "20", "--images", "50", "--no-progress"])
    # same seed, same K, same images: the evaluation is reproduced from the run folder exactly
    assert evaluation["log_likelihood"] == summary["evaluation"]["log_likelihood"]
    assert evaluation["elbo"] <= evaluation["log_likelihood"] + 3 * evaluation["se_mc"] * 50 ** 0.5
    assert main(["evaluate", out, "--samples", "5", "--images", "10", "--no-progress"]) == 0


def test_resume_extends_training(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "run")
    args = ["train", "vae", "--smoke", "--latent-dim", "2", "--hidden", "16", "--out", out, "--no-progress"]
    run(args)
    summary = run(args[:-1] + ["--epochs", "2", "--no-progress"])
    assert [row["epoch"] for row in summary["history"]] == [1, 2]


def test_named_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tmp_path / "missing")])
    assert info.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err
    os.makedirs(tmp_path / "bad")
    with open(tmp_path / "bad" / "checkpoint.pt", "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(SystemExit):
        main(["evaluate", str(tmp_path / "bad")])
    assert "corrupt" in capsys.readouterr().err


def test_vqvae_through_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "vq")
    run(["train", "vqvae", "--smoke", "--out", out])
    for name in ("checkpoint.pt", "metrics.json", "reconstructions.png", "samples.png", "codebook_usage.png"):
        assert os.path.exists(os.path.join(out, name)), name
    evaluation = run(["evaluate", out])
    assert "mse" in json.dumps(evaluation).lower()
