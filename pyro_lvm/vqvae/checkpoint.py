"""Save and load a trained VQ-VAE (or plain autoencoder) with its prior in one file.

The file is a dict of plain Python values and tensors, readable with
``torch.load(..., weights_only=True)``: the model's kind, config and state, the prior's config and
state (or ``None``) and free-form metadata such as the training history.
"""
import os
from typing import Any, NamedTuple, Optional

import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.files import atomic_write
from pyro_lvm.vqvae.model import MODEL_KINDS, VQVAEConfig, model_kind
from pyro_lvm.vqvae.prior import CodePrior

FORMAT = "pyro_lvm.vqvae.checkpoint"
VERSION = 1
_REQUIRED = ("format", "version", "model_kind", "model_config", "model_state",
             "prior_config", "prior_state", "metadata")


class Checkpoint(NamedTuple):
    """A loaded checkpoint: the model (in eval mode), the prior or ``None``, and the metadata."""

    model: torch.nn.Module
    prior: Optional[CodePrior]
    metadata: Any


def save_checkpoint(path, model, prior=None, metadata=None):
    """Write ``model``, ``prior`` and ``metadata`` to ``path`` (through a temporary file, so a
    crash mid-write never leaves a truncated checkpoint behind).

    :returns: the path written.
    """
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_kind": model_kind(model),
        "model_config": model.config.to_dict(),
        "model_state": model.state_dict(),
        "prior_config": dict(prior.config) if prior is not None else None,
        "prior_state": prior.state_dict() if prior is not None else None,
        "metadata": metadata if metadata is not None else {},
    }
    return atomic_write(path, lambda f: torch.save(state, f))


def _load_state(module, state, path, what):
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {path}: the {what} weights do not fit its config: {err}") from err


def load_checkpoint(path, map_location="cpu"):
    """Rebuild the model and prior saved by :func:`save_checkpoint`.

    :raises pyro_lvm.errors.CheckpointError: when ``path`` is missing or is not a readable
        checkpoint of this package, naming the file and the problem.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no VQ-VAE checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} could not be read (corrupt or truncated?): "
                              f"{type(err).__name__}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a pyro_lvm VQ-VAE checkpoint "
                              f"(expected format tag {FORMAT!r})")
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is missing entries: {', '.join(missing)}")
    if state["version"] > VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state['version']}, newer "
                              f"than this code reads ({VERSION})")
    if state["model_kind"] not in MODEL_KINDS:
        raise CheckpointError(f"checkpoint {path} holds an unknown model kind {state['model_kind']!r}")
    try:
        config = VQVAEConfig(**state["model_config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {err}") from err
    model = MODEL_KINDS[state["model_kind"]](config)
    _load_state(model, state["model_state"], path, "model")
    prior = None
    if state["prior_state"] is not None:
        prior = CodePrior(**state["prior_config"])
        _load_state(prior, state["prior_state"], path, "prior")
        prior.eval()
    return Checkpoint(model.eval(), prior, state["metadata"])
