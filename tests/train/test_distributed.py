"""Data parallelism under two gloo processes against one process (float64, fixed seeds).

Tolerance: the two runs differ only in the order in which each step's per-datum gradients are
summed (two half-batch sums added by the all-reduce, against one sum), an error of a few ulp
per step; after 8 Adam steps the parameters agree to 1e-12 in float64 (their scale is ~1).
"""
import os
import sys

import pyro
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distributed_cases import deterministic_case  # noqa: E402

from distributed_launch import launch  # noqa: E402
from pyro_lvm.data import TensorLoader  # noqa: E402
from pyro_lvm.errors import CheckpointError  # noqa: E402
from pyro_lvm.train import fit  # noqa: E402
from pyro_lvm.train.distributed import synchronized_step  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    launch([WORKER, str(out)], nproc=2)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)], out


def _close(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=atol), (k, (a[k] - b[k]).abs().max())


def test_two_processes_equal_one_process_with_the_same_global_batch(two_processes, float64):
    ranks, _ = two_processes
    case = deterministic_case()
    before = case.parameters()
    fit(*case.pair, "elbo", case.data, **case.options)
    single = case.parameters()
    assert max((single[k] - before[k]).abs().max() for k in single) > 1e-2  # training moved them
    _close(ranks[0]["deterministic"], single, 1e-12)
    _close(ranks[1]["deterministic"], single, 1e-12)


def test_processes_hold_identical_parameters_and_resume_exactly(two_processes):
    ranks, _ = two_processes
    _close(ranks[0]["straight"], ranks[1]["straight"], 0)
    _close(ranks[0]["resumed"], ranks[0]["straight"], 0)
    _close(ranks[1]["resumed"], ranks[1]["straight"], 0)


def test_resume_with_another_number_of_processes_says_so(two_processes, float64):
    _, out = two_processes
    case = deterministic_case()
    with pytest.raises(CheckpointError, match="written by 2 training process.*this run has 1.*nproc_per_node 2"):
        fit(*case.pair, "elbo", case.data, checkpoint=str(out / "straight.pt"), resume=True,
            **{**case.options, "epochs": 3})


def test_shards_of_an_epoch_are_disjoint_and_make_the_single_process_batches():
    data = torch.rand(23, 3)
    whole = list(TensorLoader(data, 8, binarize=True, generator=torch.Generator().manual_seed(5)))
    shards = [list(TensorLoader(data, 8, binarize=True, generator=torch.Generator().manual_seed(5)).shard(r, 3))
              for r in range(3)]
    assert all(len(s) == len(whole) for s in shards)
    for i, batch in enumerate(whole):
        parts = [s[i] for s in shards]
        assert [p.shape[0] for p in parts] == [3, 3, 2] if batch.shape[0] == 8 else [3, 2, 2]
        assert torch.equal(torch.cat(parts), batch)  # same rows and the same binary draws


def test_step_without_process_group_is_the_plain_step():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))

    def step(x):
        loss = (p * x).sum()
        loss.backward()
        return loss

    loss = synchronized_step(step, [p])(torch.ones(3, 2))
    assert float(loss) == 9.0 and torch.equal(p.grad, torch.tensor([3.0, 3.0]))
    assert pyro.get_param_store().keys() == set()
