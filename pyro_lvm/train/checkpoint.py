"""Checkpoints that hold everything needed to resume training bit for bit.

A checkpoint is one ``torch.save`` file with: module state dicts (parameters and buffers),
Pyro's param store, the optimizer and scheduler states, the run's config, the RNG states
(torch, the data loader's generator, numpy, python) and the history so far. Files are written
to a temporary name and renamed into place, so an interrupted write never replaces a good file.
"""
import os
import pickle
import random
import zipfile

import numpy as np
import pyro
import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.files import atomic_write

FORMAT = "pyro-lvm-checkpoint"
VERSION = 1


def save_checkpoint(path, state):
    """Atomically write ``state`` (a dict) to ``path`` with the format header added."""
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))


def load_checkpoint(path):
    """Read a checkpoint, raising :class:`CheckpointError` that names what is wrong."""
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pyro-lvm checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')}, expected {VERSION}")
    return state


def rng_state(generator=None):
    """The random states that a resumed run must restore."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "loader": None if generator is None else generator.get_state()}


def set_rng_state(state, generator=None):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if generator is not None and state.get("loader") is not None:
        generator.set_state(state["loader"])


def load_modules(modules, state, path="checkpoint"):
    """Load module state dicts and Pyro's param store, naming any mismatch."""
    saved = state.get("modules", {})
    if set(saved) != set(modules):
        raise CheckpointError(f"{path} holds modules {sorted(saved)}, but the run has {sorted(modules)}")
    for name, module in modules.items():
        current = module.state_dict()
        missing = sorted(set(current) - set(saved[name]))
        unexpected = sorted(set(saved[name]) - set(current))
        wrong = sorted(k for k in set(current) & set(saved[name]) if current[k].shape != saved[name][k].shape)
        if missing or unexpected or wrong:
            detail = "; ".join(part for part in (
                missing and f"missing {missing}", unexpected and f"unexpected {unexpected}",
                wrong and "shape mismatch " + ", ".join(
                    f"{k}: {tuple(saved[name][k].shape)} vs {tuple(current[k].shape)}" for k in wrong)) if part)
            raise CheckpointError(f"{path} does not match module {name!r}: {detail}")
        module.load_state_dict(saved[name])
    if state.get("param_store") is not None:
        pyro.get_param_store().set_state(state["param_store"])
