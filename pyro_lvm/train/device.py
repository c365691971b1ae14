"""Devices and precision for the training layer (and the diagnostics built on it).

Re-exports :mod:`pyro_lvm.device`, which has no Pyro in it so that :mod:`pyro_lvm.vqvae` shares it:
``resolve_device("auto")`` (a GPU where one is present), ``add_device_arguments(parser)``
(``--device``, ``--precision``) and :func:`~pyro_lvm.device.network_autocast` (``bf16`` in the
networks, densities and log-weights in float32). :func:`place` puts modules and ``pyro.param``
sites on a device.
"""
import torch

from pyro_lvm.device import PRECISIONS, add_device_arguments, autocast_dtype, network_autocast, resolve_device

__all__ = ["PRECISIONS", "add_device_arguments", "autocast_dtype", "network_autocast", "place", "resolve_device"]


def place(device, modules=(), params=()):
    """Move ``modules`` and parameter tensors (e.g. ``pyro.param`` sites) to ``device``, in place.

    A parameter keeps its identity (its ``.data`` is moved), so Pyro's param store and any
    optimizer built later see the moved tensor.

    :returns: the resolved :class:`torch.device`.
    """
    device = resolve_device(device)
    for module in modules:
        module.to(device)
    with torch.no_grad():
        for p in params:
            if p.device != device:
                p.data = p.data.to(device)
    return device
