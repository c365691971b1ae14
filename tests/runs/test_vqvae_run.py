"""``pyro-lvm train vqvae`` / ``pyro-lvm evaluate``: the VQ-VAE run kind."""
import argparse
import json
import os
import runpy

import pytest
import torch

from conftest import REPO as ROOT
from pyro_lvm.cli import build_parser, run
from tests.cli_helpers import fails
from pyro_lvm.errors import CheckpointError
from pyro_lvm.vqvae.checkpoint import load_checkpoint


def parse(argv):
    return build_parser().parse_args(["train", "vqvae", *argv])


def run_train(argv):
    return run(["train", "vqvae", *argv])


def run_evaluate(run_dir, *options):
    return run(["evaluate", run_dir, "--no-progress", *options])


def test_arguments_have_the_documented_switches():
    args = parse(["--no-ema", "--no-restarts", "--codebook-size", "64", "--out", "somewhere"])
    assert (args.ema, args.restarts, args.codebook_size, args.out) == (False, False, 64, "somewhere")
    defaults = parse(["--out", "x"])
    assert defaults.ema and defaults.kmeans_init and not defaults.restarts
    assert defaults.dead_code_threshold == 2.0 and defaults.quantizer == "vq" and defaults.residual_depth == 1
    assert defaults.codebook_size == 512 and defaults.commitment_cost == 0.25


def test_prior_epochs_follow_the_run_length():
    from pyro_lvm.runs import get_run_kind

    kind = get_run_kind("vqvae")
    assert kind.settings(parse(["--epochs", "1", "--out", "x"]))["prior_epochs"] == 1
    assert kind.settings(parse(["--epochs", "3", "--out", "x"]))["prior_epochs"] == 3
    assert kind.settings(parse(["--out", "x"]))["prior_epochs"] == 10
    assert kind.settings(parse(["--epochs", "3", "--prior-epochs", "0", "--out", "x"]))["prior_epochs"] == 0


def test_run_train_smoke_writes_metrics_checkpoint_and_figures(tmp_path):
    out = tmp_path / "run"
    summary = run_train(["--data", "synthetic", "--smoke", "--out", str(out), "--no-progress",
                         "--codebook-size", "64", "--prior-layers", "2", "--prior-channels", "16", "--threads", "1"])
    for name in ("metrics.json", "checkpoint.pt", "evaluation_synthetic_images128_seed0.json", "reconstructions.png",
                 "samples.png", "codebook_usage.png", "loss.png", "config.json"):
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
    assert json.loads((out / "evaluation_synthetic_images128_seed0.json").read_text())["test_mse"] == evaluation["test_mse"]
    # another setting, another file; the training's own evaluation stays as it was
    fewer = run_evaluate(str(out / "checkpoint.pt"), "--images", "16")
    assert fewer["test_images"] == 16 and (out / "evaluation_synthetic_images16_seed0.json").exists()
    assert json.loads((out / "evaluation_synthetic_images128_seed0.json").read_text())["test_mse"] == evaluation["test_mse"]


def test_vqvae_loader_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*checkpoint.pt"):
        load_checkpoint(tmp_path / "checkpoint.pt")


TINY = ["--data", "synthetic", "--train-subset", "96", "--test-subset", "32", "--batch-size", "32",
        "--codebook-size", "16", "--embedding-dim", "4", "--hidden-channels", "8",
        "--residual-channels", "4", "--residual-layers", "1", "--restart-after", "2",
        "--prior-layers", "2", "--prior-channels", "8", "--num-samples", "4", "--no-progress"]


def test_continued_run_matches_an_uninterrupted_one(tmp_path):
    straight = run_train(TINY + ["--epochs", "3", "--prior-epochs", "2", "--out", str(tmp_path / "a")])
    run_train(TINY + ["--epochs", "2", "--prior-epochs", "1", "--out", str(tmp_path / "b")])
    continued = run_train(TINY + ["--epochs", "3", "--prior-epochs", "2", "--out", str(tmp_path / "b")])
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in "ab")
    for module_a, module_b in ((a.model, b.model), (a.prior, b.prior)):
        state_a, state_b = module_a.state_dict(), module_b.state_dict()
        assert state_a.keys() == state_b.keys()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), "continuing changed the result"
    assert continued["test_mse"] == straight["test_mse"]
    assert [r["epoch"] for r in b.metadata["history"]["vqvae"]] == [1, 2, 3]
    assert [r["epoch"] for r in b.metadata["history"]["prior"]] == [1, 2]


def test_continuing_with_other_settings_is_refused(tmp_path, capsys):
    run_train(TINY + ["--epochs", "1", "--prior-epochs", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as info:
        run_train(TINY + ["--codebook-size", "8", "--epochs", "1", "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings" in err and "codebook_size" in err


def test_example_smoke_writes_its_pngs(tmp_path):
    example = runpy.run_path(os.path.join(ROOT, "examples", "vqvae.py"))
    args = argparse.Namespace(data="synthetic", data_root=None, train_subset=None, epochs=1,
                              prior_epochs=1, batch_size=64, lr=1e-3, codebook_size=64, levels=1,
                              out=str(tmp_path), seed=0, threads=None, smoke=True)
    result = example["main"](args)
    assert result["prior_bits_per_code"] > 0
    for name in ("vqvae_reconstructions.png", "vqvae_samples.png", "vqvae_codebook_usage.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_device_and_bf16_through_the_command_line(tmp_path):
    """``--device cpu`` places and records the run; ``--precision bf16`` reaches the networks (the
    numbers change) while the losses stay within 1% of float32 (measured: 0.06% for the training
    MSE, 0.1% for the prior's test bits; bfloat16 rounds to 2^-8 relative inside the layers only)."""
    options = TINY + ["--epochs", "1", "--prior-epochs", "1", "--device", "cpu"]
    fp32 = run_train(options + ["--out", str(tmp_path / "fp32")])
    bf16 = run_train(options + ["--precision", "bf16", "--out", str(tmp_path / "bf16")])
    checkpoint = load_checkpoint(tmp_path / "bf16" / "checkpoint.pt")
    settings = json.loads((tmp_path / "bf16" / "config.json").read_text())["settings"]
    assert (settings["device"], settings["precision"]) == ("cpu", "bf16")
    assert checkpoint.metadata["settings"]["precision"] == "bf16" and checkpoint.metadata["world_size"] == 1
    assert all(v.dtype == torch.float32 for v in checkpoint.model.state_dict().values() if v.is_floating_point())
    assert bf16["train_mse"] != fp32["train_mse"]
    for key in ("train_mse", "test_mse", "prior_test_bits_per_code"):
        assert bf16[key] == pytest.approx(fp32[key], rel=1e-2), key


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_that_is_not_there_is_a_one_line_error(tmp_path, capsys):
    fails(["train", "vqvae", *TINY, "--device", "cuda", "--out", str(tmp_path)], capsys,
          "no usable CUDA GPU", "--device cpu")


def test_a_run_saved_before_every_process_states_were_kept_continues_exactly(tmp_path):
    """Older checkpoints hold ``[torch state, loader state]`` per stage and no process count."""
    from pyro_lvm.vqvae.checkpoint import save_checkpoint

    options = TINY + ["--prior-epochs", "0"]
    run_train(options + ["--epochs", "2", "--out", str(tmp_path / "straight")])
    run_train(options + ["--epochs", "1", "--out", str(tmp_path / "old")])
    path = tmp_path / "old" / "checkpoint.pt"
    old = load_checkpoint(path)
    metadata = {k: v for k, v in old.metadata.items() if k != "world_size"}
    metadata["rng"] = {"vqvae": [old.metadata["rng"]["vqvae"]["torch"], old.metadata["rng"]["vqvae"]["loader"]],
                       "prior": None}
    save_checkpoint(path, old.model, None, metadata)
    run_train(options + ["--epochs", "2", "--out", str(tmp_path / "old")])
    straight, continued = (load_checkpoint(tmp_path / name / "checkpoint.pt").model.state_dict()
                           for name in ("straight", "old"))
    assert all(torch.equal(straight[k], continued[k]) for k in straight)


@pytest.mark.parametrize("options, message", [
    (["--residual-depth", "2", "--prior-epochs", "1"], "--prior-epochs 0 or --residual-depth 1"),
    (["--quantizer", "fsq"], "--fsq-levels"),
    (["--quantizer", "fsq", "--fsq-levels", "4", "4", "--codebook-dim", "2"], "takes no --residual-depth or --codebook-dim"),
    (["--quantizer", "fsq", "--fsq-levels", "4", "1"], "at least 2"),
    (["--fsq-levels", "4", "4"], "only with --quantizer fsq"),
])
def test_quantizer_options_that_do_not_fit_get_one_line(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as info:
        run_train(TINY + ["--epochs", "1", "--out", str(tmp_path), *options])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not os.path.exists(tmp_path / "checkpoint.pt")


@pytest.mark.parametrize("options, index_shape", [
    (["--quantizer", "cosine", "--codebook-dim", "2"], ()),
    (["--residual-depth", "2"], (2,)),
    (["--quantizer", "fsq", "--fsq-levels", "4", "3"], ()),
])
def test_every_quantizer_trains_saves_and_evaluates_from_the_command_line(tmp_path, options, index_shape):
    summary = run_train(TINY + ["--epochs", "1", "--out", str(tmp_path), *options])
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    quantizer = checkpoint.model.quantizers[0]
    assert tuple(quantizer.index_shape) == index_shape
    assert (checkpoint.prior is None) == (index_shape != ())  # residual codes get no PixelCNN prior
    evaluation = run_evaluate(str(tmp_path))
    assert evaluation["test_mse"] == pytest.approx(summary["test_mse"], rel=1e-6)


def test_a_run_saved_before_the_new_quantizer_options_continues(tmp_path):
    from pyro_lvm.runs.vqvae import _LEGACY_SETTINGS
    from pyro_lvm.vqvae.checkpoint import save_checkpoint

    old_options = TINY + ["--restarts", "--dead-code-threshold", "0", "--out", str(tmp_path)]
    run_train(old_options + ["--epochs", "1", "--prior-epochs", "0"])
    path = tmp_path / "checkpoint.pt"
    checkpoint = load_checkpoint(path)  # rewrite it as the previous release did: no new settings
    metadata = dict(checkpoint.metadata)
    metadata["settings"] = {k: v for k, v in metadata["settings"].items() if k not in _LEGACY_SETTINGS}
    save_checkpoint(path, checkpoint.model, checkpoint.prior, metadata)
    summary = run_train(old_options + ["--epochs", "2", "--prior-epochs", "0"])
    assert load_checkpoint(path).metadata["history"]["vqvae"][-1]["epoch"] == 2
    assert summary["test_mse"] > 0
