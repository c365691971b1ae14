"""The data plate shared by the models and guides."""
import functools

import pyro
import torch


@functools.lru_cache(maxsize=64)
def _all_indices(size, device):
    return torch.arange(size, device=device)


def data_plate(x, name="data"):
    """``pyro.plate(name, len(x))`` over a whole batch.

    Passing the (cached) full index set as ``subsample`` tells Pyro there is nothing to subsample,
    which skips the plate's own sample statement: the same semantics (scale 1, same dim), a
    little less work per call, which matters for small networks and batches.
    """
    return pyro.plate(name, x.shape[0], subsample=_all_indices(x.shape[0], x.device))
