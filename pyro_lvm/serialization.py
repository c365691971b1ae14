"""The one checkpoint format of every run kind: tensors and plain values, checked on load.

A checkpoint file is ``torch.save`` of a dict with a header and a body::

    {"format": "pyro-lvm", "version": 2, "kind": "fit" | "vqvae" | ...,
     "digest": "<sha256 of the body>", "state": {...}}

Why this module exists:

* **Loading runs no code.** Files are read with ``torch.load(..., weights_only=True)``, whose
  unpickler builds only tensors and plain Python values (dict, list, tuple, str, numbers, None).
  A file that holds anything else, such as a pickle whose ``__reduce__`` calls ``os.system``, is
  refused with :class:`~pyro_lvm.errors.CheckpointError` before any of it runs. Everything a
  run must restore is therefore stored as tensors and plain values: random states
  (:func:`numpy_rng_state`), Pyro's parameter constraints (by name, see the training layer) and
  optimizer states.
* **Damage is named.** ``digest`` is a SHA-256 over every tensor's dtype, shape and bytes and
  every plain value, in a fixed order. A flipped byte that the zip reader does not notice gives
  an error naming the file, not a NaN deep inside a Pyro distribution later.
* **One format.** The Pyro-side training loop and the Pyro-free VQ-VAE package both write
  through :func:`save_state`; ``kind`` says which loader rebuilds what, and a checkpoint handed
  to the wrong loader is named as such.

This module imports no Pyro, so :mod:`pyro_lvm.vqvae` can use it.
"""
import hashlib
import io
import os
import pickle

import numpy as np
import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.files import atomic_write

__all__ = ["FORMAT", "VERSION", "digest", "load_state", "numpy_rng_state", "save_state",
           "set_numpy_rng_state"]

FORMAT = "pyro-lvm"
VERSION = 2
_PLAIN = (str, int, float, bool, type(None))

#: What each kind of checkpoint is loaded with, for the message when the wrong loader gets it.
LOADERS = {"fit": "pyro_lvm.train.load_checkpoint (or pyro_lvm.runs.load_model for a saved model)",
           "vqvae": "pyro_lvm.vqvae.load_checkpoint"}


def _update(h, value, where):
    """Feed ``value`` into the hash ``h`` in a canonical order; refuse what cannot be stored."""
    if torch.is_tensor(value):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            if not isinstance(key, _PLAIN):
                raise TypeError(f"{where}: dict key {key!r} is not a plain value")
            h.update(repr(key).encode())
            _update(h, value[key], f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        h.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for i, item in enumerate(value):
            _update(h, item, f"{where}[{i}]")
    elif isinstance(value, _PLAIN):
        h.update(f"P{type(value).__name__}:{value!r}".encode())
    else:
        raise TypeError(f"{where} is a {type(value).__name__}; a checkpoint holds only tensors and "
                        "plain values (dict, list, tuple, str, int, float, bool, None)")


def digest(state):
    """SHA-256 (hex) of a tree of tensors and plain values.

    :raises TypeError: naming the first entry that is neither (it could not be loaded safely).
    """
    h = hashlib.sha256()
    _update(h, state, "state")
    return h.hexdigest()


def save_state(path, kind, state):
    """Atomically write ``state`` (tensors and plain values) as a checkpoint of ``kind``.

    :raises TypeError: if ``state`` holds anything else (before anything is written).
    :returns: the path written.
    """
    header = {"format": FORMAT, "version": VERSION, "kind": kind, "digest": digest(state), "state": state}
    return atomic_write(path, lambda f: torch.save(header, f))


def _read(path, map_location):
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder; give the checkpoint file or its run folder")
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror}); check its permissions") from e
    try:
        return torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise CheckpointError(
                f"refusing to load {path}: it is damaged, or it holds Python objects other than tensors and "
                "plain values, which could run code when unpickled; only load checkpoints written by "
                "pyro-lvm >= 0.2 (retrain to rewrite an older one)") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}); "
                              "delete it and retrain, or restore it from a copy") from None
    except Exception as e:  # noqa: BLE001 - a damaged file makes torch raise almost any type
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}); "
                              "delete it and retrain, or restore it from a copy") from None


def load_state(path, kind=None, map_location="cpu"):
    """Read a checkpoint safely and check its header and digest.

    :param str path: the file.
    :param str kind: the kind the caller can rebuild; another kind is an error naming its loader.
    :param map_location: where tensors go (``"cpu"`` by default: a GPU run loads anywhere).
    :returns: ``(kind, state)``.
    :raises CheckpointError: missing, unreadable, unsafe, corrupt, of another format, version or
        kind; each message names the file and what to do.
    """
    path = os.fspath(path)
    header = _read(path, map_location)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        old = isinstance(header, dict) and header.get("format") in ("pyro-lvm-checkpoint", "pyro_lvm.vqvae.checkpoint")
        raise CheckpointError(f"{path} is not a pyro-lvm checkpoint" + (
            " of this version (written by pyro-lvm 0.1); retrain to rewrite it" if old else ""))
    if header.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {header.get('version')}; this pyro-lvm "
                              f"reads version {VERSION}")
    found = header.get("kind")
    if kind is not None and found != kind:
        how = LOADERS.get(found, "the loader of its run kind (pyro-lvm evaluate picks it)")
        raise CheckpointError(f"{path} is a {found!r} checkpoint, not a {kind!r} one; load it with {how}")
    state = header.get("state")
    try:
        ok = digest(state) == header.get("digest")
    except TypeError:
        ok = False
    if not ok:
        raise CheckpointError(f"checkpoint {path} fails its integrity check (its contents do not match the "
                              "digest written with them): the file is damaged; delete it and retrain, or "
                              "restore it from a copy")
    return found, state


def numpy_rng_state():
    """NumPy's legacy global random state as tensors and plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_numpy_rng_state(state):
    """Restore what :func:`numpy_rng_state` returned."""
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))
