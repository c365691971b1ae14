import argparse
import json
import os
import runpy
import subprocess
import sys

import pytest
import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.vqvae.cli import add_train_arguments, run_evaluate, run_train
from pyro_lvm.vqvae.checkpoint import load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_package_does_not_import_pyro():
    code = ("import sys\n"
            "import pyro_lvm.vqvae, pyro_lvm.vqvae.cli, pyro_lvm.vqvae.train, pyro_lvm.vqvae.figures\n"
            "loaded = sorted(m for m in sys.modules if m == 'pyro' or m.startswith('pyro.'))\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def parse(argv):
    return add_train_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_arguments_have_the_documented_switches():
    args = parse(["--no-ema", "--no-restarts", "--codebook-size", "64", "--out", "somewhere"])
    assert (args.ema, args.restarts, args.codebook_size, args.out) == (False, False, 64, "somewhere")
    defaults = parse([])
    assert defaults.ema and defaults.restarts and defaults.kmeans_init
    assert defaults.codebook_size == 512 and defaults.commitment_cost == 0.25


def test_run_train_smoke_writes_metrics_checkpoint_and_figures(tmp_path):
    out = tmp_path / "run"
    summary = run_train(parse(["--data", "synthetic", "--smoke", "--out", str(out), "--no-progress",
                               "--codebook-size", "64", "--prior-layers", "2",
                               "--prior-channels", "16", "--threads", "1"]))
    for name in ("metrics.json", "checkpoint.pt", "evaluation.json", "reconstructions.png",
                 "samples.png", "codebook_usage.png", "loss.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["vqvae"]) == 1 and len(metrics["prior"]) == 1
    row = metrics["vqvae"][0]
    assert row["train_codes_used"] + row["train_dead_codes"] == 64
    for key in ("test_mse", "test_perplexity", "test_codes_used", "prior_test_bits_per_code",
                "bits_per_dim_bound", "seconds_per_epoch"):
        assert key in summary, key
    assert 0 < summary["prior_test_bits_per_code"] < 20
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.prior is not None and checkpoint.metadata["settings"]["smoke"]

    evaluation = run_evaluate(str(out))
    assert evaluation["test_mse"] == pytest.approx(summary["test_mse"], rel=1e-6)
    assert evaluation["prior_test_bits_per_code"] == pytest.approx(summary["prior_test_bits_per_code"],
                                                                   rel=1e-5)
    assert evaluation["seconds_per_epoch"] == summary["seconds_per_epoch"]
    assert json.loads((out / "evaluation.json").read_text())["test_mse"] == evaluation["test_mse"]


def test_run_evaluate_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no VQ-VAE checkpoint at .*checkpoint.pt"):
        run_evaluate(str(tmp_path))


TINY = ["--data", "synthetic", "--train-subset", "96", "--test-subset", "32", "--batch-size", "32",
        "--codebook-size", "16", "--embedding-dim", "4", "--hidden-channels", "8",
        "--residual-channels", "4", "--residual-layers", "1", "--restart-after", "2",
        "--prior-layers", "2", "--prior-channels", "8", "--num-samples", "4", "--no-progress"]


def test_continued_run_matches_an_uninterrupted_one(tmp_path):
    straight = run_train(parse(TINY + ["--epochs", "3", "--prior-epochs", "2", "--out", str(tmp_path / "a")]))
    run_train(parse(TINY + ["--epochs", "2", "--prior-epochs", "1", "--out", str(tmp_path / "b")]))
    continued = run_train(parse(TINY + ["--epochs", "3", "--prior-epochs", "2", "--out", str(tmp_path / "b")]))
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in "ab")
    for module_a, module_b in ((a.model, b.model), (a.prior, b.prior)):
        state_a, state_b = module_a.state_dict(), module_b.state_dict()
        assert state_a.keys() == state_b.keys()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), "continuing changed the result"
    assert continued["test_mse"] == straight["test_mse"]
    assert [r["epoch"] for r in b.metadata["history"]["vqvae"]] == [1, 2, 3]
    assert [r["epoch"] for r in b.metadata["history"]["prior"]] == [1, 2]


def test_continuing_with_other_settings_is_refused(tmp_path):
    run_train(parse(TINY + ["--epochs", "1", "--prior-epochs", "0", "--out", str(tmp_path)]))
    with pytest.raises(CheckpointError, match="other settings .*codebook_size"):
        run_train(parse(TINY + ["--codebook-size", "8", "--epochs", "1", "--out", str(tmp_path)]))


def test_example_smoke_writes_its_pngs(tmp_path):
    example = runpy.run_path(os.path.join(ROOT, "examples", "vqvae.py"))
    args = argparse.Namespace(data="synthetic", data_root=None, train_subset=None, epochs=1,
                              prior_epochs=1, batch_size=64, lr=1e-3, codebook_size=64, levels=1,
                              out=str(tmp_path), seed=0, threads=None, smoke=True)
    result = example["main"](args)
    assert result["prior_bits_per_code"] > 0
    for name in ("vqvae_reconstructions.png", "vqvae_samples.png", "vqvae_codebook_usage.png"):
        assert (tmp_path / name).stat().st_size > 0
