"""``pyro-lvm compare-elbos``: built-in exact models, trained run folders, and one-line errors."""
import json
import math
import os

import pytest

from cli_helpers import fails as _fails
from pyro_lvm.cli import run

FILES = ("estimators.csv", "estimators.json", "bound_vs_k.png", "snr_vs_k.png")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("model", ["linear-gaussian", "mixture", "bernoulli"])
def test_builtin_models(model, tmp_path, capsys):
    out = tmp_path / model
    result = run(["compare-elbos", "--model", model, "--smoke", "--out", str(out), "--no-progress"])
    for name in FILES:
        assert os.path.getsize(out / name) > 0, name
    printed = capsys.readouterr().out
    assert printed.splitlines()[1].startswith("exact log p(x) = ")
    rows = {r["label"]: r for r in result["rows"]}
    assert math.isfinite(result["exact"]) and set(FILES) == {os.path.basename(f) for f in result["files"]}
    if model == "linear-gaussian":
        assert {"elbo K=5", "meanfield K=5", "iwae K=5", "renyi alpha=0.5 K=5"} <= set(rows)
    else:  # discrete latents: score-function estimators and exact enumeration
        assert {"elbo K=5", "tracegraph K=5", "iwae K=5", "enumerated (TraceEnum_ELBO)"} <= set(rows)
        assert "meanfield K=1" not in rows
    stored = json.load(open(out / "estimators.json"))
    assert [r["label"] for r in stored["rows"]] == list(rows)


def test_trained_run_folder(tmp_path, capsys):
    run_dir = str(tmp_path / "sbn")
    run(["train", "sbn", "--smoke", "--no-progress", "--latent-dim", "4", "--data", "embedded", "--out", run_dir])
    out = tmp_path / "compare"
    result = run(["compare-elbos", run_dir, "--smoke", "--ks", "2", "--images", "8", "--out", str(out),
                  "--no-progress"])
    rows = {r["label"]: r for r in result["rows"]}
    # four Bernoulli latents: exact log p(x) by enumeration, and the enumerated ELBO is offered
    assert math.isfinite(result["exact"]) and "enumerated (TraceEnum_ELBO)" in rows
    assert rows["iwae K=2"]["value"] <= result["exact"] + 4 * rows["iwae K=2"]["value_se"]
    assert "8 test images" in capsys.readouterr().out
    assert all(os.path.exists(out / name) for name in FILES)


def test_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "out")
    _fails(["compare-elbos", "--out", out], capsys, "give either a run folder or --model", "neither")
    _fails(["compare-elbos", str(tmp_path), "--model", "mixture", "--out", out], capsys, "not both")
    _fails(["compare-elbos", str(tmp_path / "missing"), "--out", out], capsys, "no run folder at")
    _fails(["compare-elbos", "--model", "bernoulli", "--repeats", "1", "--out", out], capsys,
           "--repeats: must be an integer >= 2")
    _fails(["compare-elbos", "--model", "nonlinear", "--out", out], capsys, "invalid choice: 'nonlinear'")
    (tmp_path / "file").write_text("x")
    _fails(["compare-elbos", "--model", "mixture", "--smoke", "--out", str(tmp_path / "file")], capsys,
           "is a file")
    _fails(["compare-elbos", str(tmp_path), "--out", out], capsys, "no checkpoint.pt in", "train vae or sbn run")
    _fails(["compare-elbos", str(tmp_path / "file"), "--out", out], capsys, "is not a checkpoint")
