"""``pyro-lvm diagnose`` on smoke runs, and the per-epoch diagnostics in a run's metrics."""
import csv
import json
import os

from pyro_lvm.cli import run
from cli_helpers import fails


def _train(kind, out, *options):
    run(["train", kind, "--smoke", "--no-progress", "--data", "embedded", "--epochs", "2", "--out", str(out),
         *options])
    return str(out)


def test_diagnose_a_vae_run_prints_the_table_and_writes_json_and_pngs(tmp_path, capsys):
    run_dir = _train("vae", tmp_path / "vae", "--latent-dim", "4", "--hidden", "32")
    with open(os.path.join(run_dir, "metrics.json")) as f:
        history = json.load(f)
    assert len(history) == 2
    for record in history:  # every epoch records the diagnostics of the same test subset
        assert len(record["kl_per_dim"]) == 4
        assert abs(sum(record["kl_per_dim"]) - record["rate"]) < 1e-4
        assert 0 <= record["mutual_information"] <= record["rate"] + 4 * record["mi_se"]
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        columns = next(csv.reader(f))
    assert {"rate", "distortion", "active_units", "mutual_information"} <= set(columns)
    assert "kl_per_dim" not in columns  # lists stay in metrics.json
    capsys.readouterr()

    result = run(["diagnose", run_dir, "--images", "200"])
    printed = capsys.readouterr().out
    for row in ("rate R", "distortion D", "active units", "KL per dimension", "I_q(x; z)", "lower bound"):
        assert row in printed
    with open(os.path.join(run_dir, "diagnostics.json")) as f:
        written = json.load(f)
    d = result["diagnostics"]
    assert written["num_data"] == 200 and len(written["kl_per_dim"]) == 4
    assert written["active_units"] == sum(written["active_mask"]) == d.active_units
    assert abs(written["elbo"] + written["rate"] + written["distortion"]) < 1e-9
    assert written["mutual_information"] <= written["log_num_data"]
    for name in ("kl_per_dim.png", "traversal.png"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 1000


def test_diagnose_an_sbn_run_flips_bits_in_the_traversal(tmp_path, capsys):
    run_dir = _train("sbn", tmp_path / "sbn", "--latent-dim", "4")
    out = tmp_path / "out"
    result = run(["diagnose", run_dir, "--images", "100", "--out", str(out)])
    d = result["diagnostics"]
    assert d.kl_analytic and len(d.kl_per_dim) == 4
    assert abs(d.kl_per_dim.sum().item() - d.rate) < 1e-4
    assert os.path.isfile(out / "diagnostics.json") and os.path.isfile(out / "kl_per_dim.png")
    assert os.path.isfile(out / "traversal.png") == (d.active_units > 0)


def test_diagnose_refuses_what_is_not_a_vae_or_sbn_run(tmp_path, capsys):
    fails(["diagnose", str(tmp_path)], capsys, "is not a run folder", "pyro-lvm train vae or sbn")
    fails(["diagnose", str(tmp_path / "missing")], capsys, "no run folder at")
    for kind in ("gmm", "vqvae"):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"run_kind": kind}))
        (folder / "checkpoint.pt").write_bytes(b"")
        fails(["diagnose", str(folder)], capsys, f"is a {kind} run", "diagnose reads vae and sbn runs")
