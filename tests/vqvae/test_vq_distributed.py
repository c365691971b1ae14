"""The VQ-VAE package under two gloo processes (``torchrun``-like environment, one thread each).

* ``fit_vqvae`` ends with one codebook: EMA statistics, k-means start and dead-code restarts
  synchronized (and, with them, every weight), without Pyro.
* ``fit_prior`` with each process on its share of every global batch equals one process with the
  same global batch. Tolerance: the two differ only in how each step's per-datum log-losses are
  summed (two half-batch sums added by the all-reduce, against one sum), a few ulp per step in
  float64; after 6 Adam steps (lr 1e-2) on weights of scale ~0.1-1 they agree to 1e-12.
* A loss that is not finite on one process stops both, with a message on each.
* ``pyro-lvm train vqvae`` under two processes writes its run folder from rank 0 alone, ends with
  the same model and prior on both processes, and a run continued from its folder ends where an
  uninterrupted one does, bit for bit; continuing it with one process is refused.
"""
import json
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_helpers import fails  # noqa: E402
from distributed_launch import launch  # noqa: E402
from vq_distributed_worker import CLI_OPTIONS, prior_case  # noqa: E402

from pyro_lvm.vqvae.checkpoint import load_checkpoint  # noqa: E402
from pyro_lvm.vqvae.train import fit_prior  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vq_distributed_worker.py")


def _ranks(out, mode):
    launch([WORKER, mode, str(out)], nproc=2)
    return [torch.load(out / f"{mode}_rank{r}.pt", weights_only=True) for r in range(2)]


def _equal(first, second):
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_codebooks_identical_across_processes(tmp_path):
    ranks = _ranks(tmp_path, "fit")
    assert not ranks[0]["pyro"]
    assert sum(ranks[0]["restarts"]) > 0  # the restart path ran (on both: same dead codes)
    assert ranks[0]["restarts"] == ranks[1]["restarts"]
    assert ranks[0]["train_loss"] == ranks[1]["train_loss"]  # metrics of the whole epoch, on every process
    assert bool(ranks[0]["state"]["quantizers.0.initialized"])
    _equal(ranks[0]["state"], ranks[1]["state"])  # codebook, moving averages, counters, weights: bit for bit


def test_prior_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    ranks = _ranks(tmp_path, "prior")
    prior, train, options = prior_case()
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    single = fit_prior(prior, train, **options)
    after = prior.state_dict()
    assert max(float((after[k] - before[k]).abs().max()) for k in after) > 1e-2  # training moved them
    for rank in ranks:
        assert rank["state"].keys() == after.keys()
        for k in after:
            assert torch.allclose(rank["state"][k], after[k], rtol=0, atol=1e-12), (k, (rank["state"][k] - after[k])
                                                                                    .abs().max())
        for row, expected in zip(rank["history"], single):  # bits of the whole epoch and of the test set
            assert row["train_bits_per_code"] == pytest.approx(expected["train_bits_per_code"], rel=1e-12)
            assert row["test_bits_per_code"] == pytest.approx(expected["test_bits_per_code"], rel=1e-12)
    _equal(ranks[0]["state"], ranks[1]["state"])


def test_a_non_finite_loss_on_one_process_stops_both(tmp_path):
    ranks = _ranks(tmp_path, "nan")  # returns: neither process hung in the gradient all-reduce
    assert "loss became nan (epoch 1, after 0 images)" in ranks[1]["error"]
    assert "non-finite on another training process (epoch 1, after 0 images)" in ranks[0]["error"]


def test_cli_under_two_processes_writes_from_rank_0_and_resumes_exactly(tmp_path, capsys):
    ranks = _ranks(tmp_path, "cli")
    assert ranks[1]["written"] == []  # rank 1 opened no file in the run folders for writing
    names = {os.path.basename(path) for path in ranks[0]["written"]}
    assert {"checkpoint.pt", "metrics.json", "config.json", "samples.png", "reconstructions.png"} <= {
        name.split(".pyro-lvm-tmp")[0] for name in names}
    # one model and one prior on both processes at the end of every run
    assert set(ranks[0]["ends"]) == {f"{run}/{stage}" for run in ("a", "b", "b2") for stage in ("vqvae", "prior")}
    for key, state in ranks[0]["ends"].items():
        _equal(state, ranks[1]["ends"][key])
    # continued (1 epoch, then 2) against straight (2 epochs): bit for bit
    straight, continued = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in "ab")
    _equal(straight.model.state_dict(), continued.model.state_dict())
    _equal(straight.prior.state_dict(), continued.prior.state_dict())
    _equal(continued.model.state_dict(), ranks[0]["ends"]["b2/vqvae"])
    assert straight.metadata["world_size"] == 2
    assert [r["epoch"] for r in continued.metadata["history"]["vqvae"]] == [1, 2]
    a, b = (json.loads((tmp_path / name / "evaluation_synthetic_images32_seed0.json").read_text()) for name in "ab")
    assert a["test_mse"] == b["test_mse"] and a["prior_test_bits_per_code"] == b["prior_test_bits_per_code"]
    # one process may not continue what two wrote
    fails(CLI_OPTIONS + ["--epochs", "3", "--out", str(tmp_path / "b")], capsys,
          "written by 2 training process(es)", "nproc_per_node 2")
