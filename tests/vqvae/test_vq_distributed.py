"""A VQ-VAE trained by two gloo processes ends with one codebook: EMA statistics, k-means start and
dead-code restarts synchronized (and, with them, every weight), without Pyro."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from distributed_launch import launch  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vq_distributed_worker.py")


def test_codebooks_identical_across_processes(tmp_path):
    launch([WORKER, str(tmp_path)], nproc=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert not ranks[0]["pyro"]
    assert sum(ranks[0]["restarts"]) > 0  # the restart path ran (on both: same dead codes)
    assert ranks[0]["restarts"] == ranks[1]["restarts"]
    assert ranks[0]["train_loss"] == ranks[1]["train_loss"]  # metrics of the whole epoch, on every process
    first, second = ranks[0]["state"], ranks[1]["state"]
    assert bool(first["quantizers.0.initialized"])
    for name in first:  # codebook, moving averages, counters and network weights: bit for bit
        assert torch.equal(first[name], second[name]), name
