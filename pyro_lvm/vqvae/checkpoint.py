"""Save and load a trained VQ-VAE (or plain autoencoder) with its prior in one file.

The file is a checkpoint of kind ``"vqvae"`` in the package's one format
(:mod:`pyro_lvm.serialization`: tensors and plain values only, loaded with
``weights_only=True`` and checked against a digest): the model's kind, config and state, the
prior's config and state (or ``None``) and metadata such as the training history.
"""
import os
from typing import Any, NamedTuple, Optional

import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.serialization import load_state, save_state
from pyro_lvm.vqvae.model import MODEL_KINDS, VQVAEConfig, model_kind
from pyro_lvm.vqvae.prior import CodePrior

KIND = "vqvae"
_REQUIRED = ("model_kind", "model_config", "model_state",
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
        "model_kind": model_kind(model),
        "model_config": model.config.to_dict(),
        "model_state": model.state_dict(),
        "prior_config": dict(prior.config) if prior is not None else None,
        "prior_state": prior.state_dict() if prior is not None else None,
        "metadata": metadata if metadata is not None else {},
    }
    try:
        return save_state(path, KIND, state)
    except TypeError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}") from None


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
    _, state = load_state(path, KIND, map_location)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a VQ-VAE state")
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is missing entries: {', '.join(missing)}")
    if state["model_kind"] not in MODEL_KINDS:
        raise CheckpointError(f"checkpoint {path} holds an unknown model kind {state['model_kind']!r}")
    try:
        config = VQVAEConfig.from_dict(state["model_config"])
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
