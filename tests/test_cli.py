"""The ``pyro-lvm`` command: run kinds through one registry, and one-line errors that lose nothing."""
import errno
import json
import os

import pytest
import torch

from cli_helpers import fails as _fails
from pyro_lvm.cli import build_parser, main, run
from pyro_lvm.runs import RunKind, get_run_kind, load_model, register, run_kinds
from pyro_lvm.runs.base import _REGISTRY

TINY = ["--smoke", "--no-progress", "--latent-dim", "3", "--hidden", "16"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))


def test_train_then_evaluate(tmp_path, capsys):
    out = str(tmp_path / "run")
    summary = run(["train", "vae", *TINY, "--objective", "iwae", "--particles", "3", "--out", out])
    for name in ("checkpoint.pt", "config.json", "metrics.json", "metrics.csv", "evaluation_embedded_K20_images50_seed0.json",
                 "samples.png", "reconstructions.png", "loss.png"):
        assert os.path.exists(os.path.join(out, name)), name
    history = json.load(open(os.path.join(out, "metrics.json")))
    assert history[0]["epoch"] == 1 and "test_loss" in history[0]
    printed = capsys.readouterr().out
    assert "log p(x), importance sampled" in printed
    assert "final evaluation: K=20 importance samples per image on 50 of 1000 test images, about" in printed
    evaluation = run(["evaluate", out, "--samples", "20", "--images", "50", "--no-progress"])
    # same seed, same K, same images: the evaluation is reproduced from the run folder exactly
    assert evaluation["log_likelihood"] == summary["evaluation"]["log_likelihood"]
    assert evaluation["elbo"] <= evaluation["log_likelihood"] + 3 * evaluation["se_mc"] * 50 ** 0.5
    # evaluate also understands being given the checkpoint file; other settings go to their own file
    assert main(["evaluate", os.path.join(out, "checkpoint.pt"), "--samples", "5", "--images", "10",
                 "--no-progress"]) == 0
    assert json.load(open(os.path.join(out, "evaluation_embedded_K5_images10_seed0.json")))["num_data"] == 10
    assert json.load(open(os.path.join(out, "evaluation_embedded_K20_images50_seed0.json")))["log_likelihood"] == \
        summary["evaluation"]["log_likelihood"]


def test_resume_says_so_and_extends_training(tmp_path, capsys):
    out = str(tmp_path / "run")
    run(["train", "vae", *TINY, "--out", out])
    assert "resuming" not in capsys.readouterr().out
    summary = run(["train", "vae", *TINY, "--epochs", "2", "--out", out])
    assert f"resuming from epoch 1 ({os.path.join(out, 'checkpoint.pt')})" in capsys.readouterr().out
    assert [row["epoch"] for row in summary["history"]] == [1, 2]


@pytest.mark.parametrize("argv, fragment", [
    (["train", "vae", "--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    (["train", "vae", "--epochs", "-3"], "argument --epochs: must be a positive integer, got '-3'"),
    (["train", "vae", "--eval-samples", "0"], "argument --eval-samples: must be a positive integer"),
    (["train", "vae", "--batch-size", "-1"], "argument --batch-size: must be a positive integer"),
    (["train", "sbn", "--latent-dim", "0"], "argument --latent-dim: must be a positive integer"),
    (["train", "vqvae", "--codebook-size", "0"], "argument --codebook-size: must be a positive integer"),
    (["train", "gmm", "--components", "0"], "argument --components: must be a positive integer"),
    (["train", "gmm", "--points", "0"], "argument --points: must be a positive integer"),
    (["train", "gmm", "--dim", "1"], "argument --dim: must be at least 2"),
    (["evaluate", "RUN", "--samples", "-5"], "argument --samples: must be a positive integer, got '-5'"),
    (["evaluate", "RUN", "--images", "0"], "argument --images: must be a positive integer"),
    (["evaluate", "RUN", "--batch-size", "-1"], "argument --batch-size: must be a positive integer"),
])
def test_bad_numbers_are_one_line_errors(argv, fragment, tmp_path, capsys):
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and "--help" in err, err
    assert not (tmp_path / "run").exists()


def test_missing_and_broken_runs_are_named(tmp_path, capsys):
    _fails(["evaluate", str(tmp_path / "missing")], capsys, "no run folder at")
    (tmp_path / "empty").mkdir()
    _fails(["evaluate", str(tmp_path / "empty")], capsys, "no checkpoint at")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    _fails(["evaluate", str(tmp_path / "bad")], capsys, "checkpoint.pt", "damaged")


def test_a_data_root_that_does_not_exist(tmp_path, capsys):
    _fails(["train", "vae", "--data", "mnist", "--data-root", str(tmp_path / "nowhere"), "--no-progress",
            "--out", str(tmp_path / "run")], capsys, str(tmp_path / "nowhere"))


def test_gmm_divergence_is_one_line(tmp_path, capsys):
    _fails(["train", "gmm", "--smoke", "--no-progress", "--optimizer", "adam", "--lr", "1e6", "--max-iter", "20",
            "--out", str(tmp_path / "gmm")], capsys, "diverged", "lower --lr")


def test_disk_full_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    import pyro_lvm.train.checkpoint as checkpoint_module
    from pyro_lvm.files import atomic_write

    out = tmp_path / "run"
    run(["train", "vae", *TINY, "--out", str(out)])
    before = (out / "checkpoint.pt").read_bytes()

    def full_disk(path, kind, state):
        def write(f):
            f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return atomic_write(path, write)

    monkeypatch.setattr(checkpoint_module, "save_state", full_disk)
    _fails(["train", "vae", *TINY, "--epochs", "2", "--out", str(out)], capsys,
           "No space left on device", "checkpoint.pt", "intact")
    assert (out / "checkpoint.pt").read_bytes() == before
    assert not [f for f in os.listdir(out) if "-tmp-" in f]
    assert (out / ".lock").read_text() == ""  # released


def test_a_read_only_run_folder_still_prints_the_evaluation(tmp_path, capsys, monkeypatch):
    import pyro_lvm.runs.fitted as fitted
    from pyro_lvm.runs import RunFolder
    from pyro_lvm.runs.folder import RunFolderNotWritable

    out = tmp_path / "run"
    run(["train", "vae", *TINY, "--out", str(out)])
    capsys.readouterr()

    def read_only(self):
        raise RunFolderNotWritable(f"run folder {self.path} is not writable (Read-only file system)")

    def refuse(path, value):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(RunFolder, "_lock", read_only)
    monkeypatch.setattr(fitted, "write_json", refuse)
    with pytest.raises(SystemExit) as info:
        run(["evaluate", str(out), "--samples", "5", "--images", "10", "--no-progress"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "log p(x), importance sampled (K=5)" in captured.out
    assert "Read-only file system" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_every_kind_is_in_the_registry_and_has_smoke():
    kinds = run_kinds()
    assert {"vae", "sbn", "gmm", "vqvae"} <= set(kinds)
    for name, kind in kinds.items():
        args = build_parser().parse_args(["train", name, "--smoke", "--out", "x"])
        assert kind.settings(args)["smoke"] is True


def test_a_new_kind_is_one_registered_class(tmp_path, capsys):
    @register
    class EchoRun(RunKind):
        name = "echo-test"
        help = "prints its setting"

        def add_arguments(self, parser):
            parser.add_argument("--word", default="hello")

        def train(self, folder, settings, progress=True):
            folder.write_config(settings)
            print(settings["word"])
            return settings

    try:
        assert run(["train", "echo-test", "--word", "hi", "--out", str(tmp_path / "echo")])["word"] == "hi"
        assert get_run_kind("echo-test").name == "echo-test"
        assert json.load(open(tmp_path / "echo" / "config.json"))["run_kind"] == "echo-test"
        _fails(["evaluate", str(tmp_path / "echo")], capsys, "has no separate evaluation")
    finally:
        _REGISTRY.pop("echo-test")


@pytest.mark.parametrize("kind, extra", [("sbn", ["--latent-dim", "4"]), ("gmm", []), ("vae", ["--arch", "conv"])])
def test_every_kind_runs_its_smoke(kind, extra, tmp_path):
    out = tmp_path / kind
    run(["train", kind, "--smoke", "--no-progress", "--out", str(out), *extra])
    config = json.load(open(out / "config.json"))
    assert config["run_kind"] == kind and (out / "checkpoint.pt").exists()
    if kind != "gmm":
        model = load_model(out)
        assert type(model) is get_run_kind(kind).model_class and not model.training
        run(["evaluate", str(out), "--samples", "4", "--images", "8", "--no-progress"])
        assert (out / "evaluation_embedded_K4_images8_seed0.json").exists()


def test_sbn_trains_with_vimco_through_the_command(tmp_path):
    summary = run(["train", "sbn", "--smoke", "--no-progress", "--latent-dim", "4", "--objective", "iwae",
                   "--particles", "3", "--out", str(tmp_path / "sbn")])
    assert summary["config"]["objective"] == "iwae" and summary["config"]["particles"] == 3
    assert torch.isfinite(torch.tensor(summary["evaluation"]["log_likelihood"]))


def test_training_on_your_own_tensors(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    images = (rng.random((80, 12, 12)) * 255).astype(np.uint8)
    np.savez(tmp_path / "mine.npz", train=images[:64], test=images[64:])
    out = tmp_path / "run"
    summary = run(["train", "vae", "--data", str(tmp_path / "mine.npz"), "--epochs", "1", "--latent-dim", "2",
                   "--hidden", "8", "--eval-samples", "3", "--no-progress", "--out", str(out)])
    config = json.load(open(out / "config.json"))
    assert config["data"]["train_size"] == 64 and config["data"]["test_size"] == 16
    assert config["data"]["input_shape"] == [1, 12, 12]
    assert summary["evaluation"]["num_data"] == 16
    run(["evaluate", str(out), "--samples", "3", "--no-progress"])  # finds the same file again
    np.save(tmp_path / "bad.npy", np.zeros((5, 2, 3, 4, 5)))
    _fails(["train", "vae", "--data", str(tmp_path / "bad.npy"), "--no-progress", "--out", str(tmp_path / "r2")],
           capsys, "bad.npy")


def test_evaluate_a_checkpoint_that_fit_wrote(tmp_path, capsys):
    from pyro_lvm.data import load_dataset
    from pyro_lvm.models import BernoulliLatentModel
    from pyro_lvm.train import fit

    data = load_dataset("embedded", binarize="static")
    model = BernoulliLatentModel(latent_dim=3)
    fit(model.model, model.guide, "elbo", data.train[:64], epochs=1, batch_size=32, progress=False,
        checkpoint=str(tmp_path / "checkpoint.pt"), modules={"sbn": model})
    _fails(["evaluate", str(tmp_path), "--no-progress"], capsys, "does not say which data", "--data")
    evaluation = run(["evaluate", str(tmp_path), "--data", "embedded", "--samples", "3", "--images", "5",
                      "--no-progress"])
    assert evaluation["num_data"] == 5 and "log p(x), importance sampled (K=3)" in capsys.readouterr().out
