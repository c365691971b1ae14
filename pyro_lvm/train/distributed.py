"""What :func:`~pyro_lvm.train.fit` does under ``torchrun`` (see :mod:`pyro_lvm.distributed`).

Each of W processes holds whole data points: its contiguous part of every global batch of the
shared permutation (:meth:`~pyro_lvm.data.TensorLoader.shard`), so the objectives' per-datum
bounds are computed exactly as in one process. One step is then

1. the objective's loss of the local part and its gradient (``backward``), on every process;
2. one all-reduce summing every parameter's ``.grad`` -- module parameters *and* ``pyro.param``
   sites outside modules, all in ``fit``'s parameter list -- together with the loss and the
   number of data points (:func:`~pyro_lvm.distributed.sum_gradients`); since the loss is a sum
   over data points, the result is the gradient of the global batch's loss;
3. the same optimizer step on every process, which keeps the parameters identical.

We chose this all-reduce over ``DistributedDataParallel`` because DDP synchronizes only the
parameters of the module it wraps and would leave ``pyro.param`` sites drifting apart, and
because wrapping would change the modules that Pyro models call and checkpoints name. What DDP
gains by overlapping communication with ``backward`` matters little for these small networks.

Every process draws its own latent samples (torch is seeded with ``seed + rank``); the states
of all processes go into the checkpoint, which only rank 0 writes.
"""
import math

import torch

from pyro_lvm import distributed
from pyro_lvm.distributed import all_reduce_sum, is_main, rank, shard_bounds, world_size
from pyro_lvm.errors import NonFiniteLossError

__all__ = ["all_reduce_mean", "is_main", "rank", "shard_rows", "synchronize_start", "synchronized_step",
           "world_size"]


def synchronize_start(modules, params):
    """Give every process rank 0's parameters and module buffers (a no-op in one process)."""
    tensors = list(params) + [b for m in modules for b in m.buffers()]
    distributed.broadcast_tensors(tensors)


def synchronized_step(step, params):
    """``*args -> global loss`` running ``step`` (loss and ``backward``) on this process's rows,
    then summing gradients and losses over processes.

    A process with no rows (a final batch smaller than the number of processes) adds zero. A
    non-finite loss on any process is raised on every process, so none waits for the others.
    """
    def synchronized(*args):
        rows, error = args[0].shape[0], None
        loss = torch.zeros(())
        if rows:
            try:
                loss = step(*args)
            except NonFiniteLossError as e:
                error, loss = e, torch.tensor(math.nan)
        total, failed = distributed.sum_gradients(params, loss.detach(), error is not None)
        if error is not None:
            raise error
        if failed or not math.isfinite(total):
            raise NonFiniteLossError(f"the loss became {total} on another training process")
        return torch.tensor(total)
    return synchronized


def shard_rows(data):
    """This process's contiguous share of ``data``'s rows (all of them in one process)."""
    start, stop = shard_bounds(len(data))
    return data[start:stop]


def all_reduce_mean(mean, count):
    """The mean over all processes of per-process means ``mean`` of ``count`` items each."""
    if world_size() == 1:
        return mean
    total, n = all_reduce_sum(torch.tensor([mean * count, float(count)], dtype=torch.float64)).tolist()
    return total / n
