"""The data plate shared by the models and guides."""
import functools
import operator

import pyro
import torch


@functools.lru_cache(maxsize=64)
def _all_indices(size, device):
    return torch.arange(size, device=device)


def batch_size_of(x, batch_size=None):
    """``N``: the length of the batch ``x``, or ``batch_size`` when ``x`` is ``None``.

    A model called as ``model(None, batch_size=N)`` samples its observation site instead of
    observing it, which is how ``pyro.infer.Predictive`` generates data.
    """
    if x is None and batch_size is None:
        raise ValueError("with x=None the model generates data and needs batch_size=N, e.g. "
                         "Predictive(model, num_samples=S)(None, batch_size=N)")
    if batch_size is not None:
        try:
            size = operator.index(batch_size)
        except TypeError:
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}") from None
        if size < 1 or (x is not None and size != x.shape[0]):
            raise ValueError(f"batch_size must be positive and match x, got {size} for "
                             f"{'no x' if x is None else f'a batch of {x.shape[0]}'}")
        return size
    return x.shape[0]


def data_plate(x, name="data", size=None, device=None):
    """``pyro.plate(name, len(x))`` over a whole batch (or over ``size`` points on ``device``).

    Passing the (cached) full index set as ``subsample`` tells Pyro there is nothing to subsample,
    which skips the plate's own sample statement: the same semantics (scale 1, same dim), a
    little less work per call, which matters for small networks and batches.
    """
    if x is not None:
        size, device = x.shape[0], x.device
    return pyro.plate(name, size, subsample=_all_indices(size, device))
