"""Data parallelism over the processes ``torchrun`` starts (plain torch: no Pyro here).

``torchrun --nproc_per_node N`` starts N copies of a command with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and a rendezvous address in their environment. :func:`init_from_env` joins them
into one process group -- NCCL when the processes train on GPUs (each on ``cuda:LOCAL_RANK``),
gloo on CPUs -- and every helper below is the identity in a single process, so code written
against them runs unchanged without ``torchrun``.

Gradients are synchronized by one all-reduce of a flat buffer holding every parameter's
``.grad`` (:func:`sum_gradients`), not by wrapping modules in ``DistributedDataParallel``: the
training loop's parameters include ``pyro.param`` sites that live in Pyro's param store outside
any module, and an all-reduce over the parameter list covers both kinds the same way, with the
module objects (and their state dict keys) left as they are. Gradients are *summed*, not
averaged: the objectives' losses are sums over the data points of a batch, so the sum over
processes of the gradients of their shards is the gradient of the whole (global) batch.
"""
import os

import torch
import torch.distributed as dist

from pyro_lvm.data.loader import shard_bounds as _bounds
from pyro_lvm.device import resolve_device

__all__ = ["all_gather_rows", "all_reduce_sum", "barrier", "broadcast", "broadcast_tensors", "init_from_env",
           "is_main", "rank", "shard_bounds", "sum_gradients", "world_size"]


def _active():
    return dist.is_available() and dist.is_initialized()


def world_size():
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if _active() else 1


def rank():
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if _active() else 0


def is_main():
    """Whether this process writes files: rank 0, or the only process."""
    return rank() == 0


def init_from_env(device="auto"):
    """Join the process group that ``torchrun`` describes, and pick this process's device.

    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is joined and the device is
    :func:`~pyro_lvm.device.resolve_device` of ``device``. Under ``torchrun`` a GPU device becomes
    ``cuda:LOCAL_RANK`` with the NCCL backend, the CPU uses gloo.

    :returns: the :class:`torch.device` this process trains on.
    """
    device = resolve_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or _active():
        return device
    if device.type == "cuda":
        device = resolve_device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _wire(tensor):
    """``tensor`` on the device the backend communicates from (NCCL: the current GPU)."""
    if dist.get_backend() == "nccl":
        return tensor.to(torch.device("cuda", torch.cuda.current_device()))
    return tensor.cpu()


def all_reduce_sum(tensor):
    """The sum of ``tensor`` over processes (a new tensor on ``tensor``'s device)."""
    if not _active():
        return tensor
    wired = _wire(tensor.detach()).clone()
    dist.all_reduce(wired)
    return wired.to(tensor.device)


def broadcast(tensor, src=0):
    """Rank ``src``'s value of ``tensor`` (same shape and dtype on every process)."""
    if not _active():
        return tensor
    wired = _wire(tensor.detach()).clone()
    dist.broadcast(wired, src)
    return wired.to(tensor.device)


def broadcast_tensors(tensors, src=0):
    """Overwrite each tensor in place with rank ``src``'s value (parameters, buffers)."""
    if not _active():
        return
    tensors = [t for t in tensors if t.numel()]
    if not tensors:
        return
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    with torch.no_grad():
        for group in by_dtype.values():
            flat = broadcast(torch.cat([t.detach().reshape(-1).to(group[0].device) for t in group]), src)
            for t, part in zip(group, flat.split([t.numel() for t in group])):
                t.copy_(part.view_as(t).to(t.device))


def all_gather_rows(tensor):
    """Concatenate every process's ``tensor`` along dim 0, in rank order (the row counts may differ)."""
    if not _active():
        return tensor
    size = world_size()
    rows = _wire(torch.tensor([tensor.shape[0]]))
    counts = [torch.zeros_like(rows) for _ in range(size)]
    dist.all_gather(counts, rows)
    counts = [int(c) for c in counts]
    padded = torch.zeros((max(counts), *tensor.shape[1:]), dtype=tensor.dtype, device=rows.device)
    padded[: tensor.shape[0]] = _wire(tensor.detach())
    gathered = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:n] for g, n in zip(gathered, counts)]).to(tensor.device)


def barrier():
    if _active():
        dist.barrier()


def shard_bounds(n, index=None, size=None):
    """``(start, stop)`` of process ``index``'s contiguous share of ``n`` rows (sizes differ by at most 1)."""
    return _bounds(n, rank() if index is None else index, world_size() if size is None else size)


def sum_gradients(params, *scalars):
    """Sum every parameter's ``.grad`` over processes, in place, in one all-reduce.

    A parameter without a gradient on this process (a branch its data did not reach) counts as
    zero, and gets the sum of the others'. ``scalars`` (floats or 0-d tensors, e.g. the loss and
    the number of data points) ride along in the same buffer.

    :returns: the summed scalars, as floats.
    """
    if not _active():
        return [float(s) for s in scalars]
    params = list(params)
    reference = params[0] if params else torch.zeros(())
    dtype = reference.dtype  # the scalars travel in the gradients' precision: one buffer, one call
    parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(dtype) for p in params]
    parts.append(torch.tensor([float(s) for s in scalars], dtype=dtype, device=reference.device))
    flat = all_reduce_sum(torch.cat(parts))
    pieces = flat.split([p.numel() for p in params] + [len(scalars)])
    for p, summed in zip(params, pieces):
        p.grad = summed.view_as(p).to(p.dtype)
    return pieces[-1].tolist()
