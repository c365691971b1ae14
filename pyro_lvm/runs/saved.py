"""Save a whole trained model in one call, and rebuild one from any run folder or checkpoint.

``save_model(vae, "my_vae")`` writes the same files a ``pyro-lvm train`` run folder holds
(``checkpoint.pt`` and ``config.json``); ``load_model("my_vae")`` (or a run folder, or a
checkpoint that :func:`~pyro_lvm.train.fit` wrote under any module names) rebuilds the model in
eval mode. Only classes that a registered run kind trains (its ``model_class``) are rebuilt, from
their plain ``to_config()`` dicts: nothing in a file names code to run.
"""
import os

import torch

from pyro_lvm.errors import CheckpointError, UsageError
from pyro_lvm.runs.folder import CHECKPOINT, RunFolder
from pyro_lvm.serialization import load_state
from pyro_lvm.train.checkpoint import save_checkpoint, set_param_store_state
from pyro_lvm.train.fit import architectures


def checkpoint_path(path):
    """``path`` itself if it is a file, else ``path/checkpoint.pt``."""
    path = os.fspath(path)
    return path if os.path.isfile(path) else os.path.join(path, CHECKPOINT)


def _model_classes():
    from pyro_lvm.runs.base import run_kinds

    return {kind.model_class.__name__: (name, kind.model_class) for name, kind in run_kinds().items()
            if getattr(kind, "model_class", None) is not None}


def _kind_of(model):
    for name, (kind, cls) in _model_classes().items():
        if type(model) is cls:
            return kind
    return None


def run_kind_of_checkpoint(path):
    """The run kind that rebuilds what checkpoint ``path`` holds (by its model's class for ``fit`` ones)."""
    kind, state = load_state(path)  # raises the error that says what is wrong with the file
    if kind != "fit":
        return kind
    classes = _model_classes()
    for spec in (state.get("architectures") or {}).values():
        if spec.get("class") in classes:
            return classes[spec["class"]][0]
    raise UsageError(f"{path} holds no model that a run kind rebuilds; load it with pyro_lvm.train.load_checkpoint")


def save_model(model, path, overwrite=False, prior=None):
    """Save a trained model (and Pyro's param store) into the run folder ``path``.

    :param model: a model of one of the run kinds (:class:`~pyro_lvm.models.VAE`,
        :class:`~pyro_lvm.models.BernoulliLatentModel`, a VQ-VAE, ...).
    :param bool overwrite: replace a checkpoint already in ``path`` (refused otherwise: it may
        be a training run's resumable state).
    :param prior: a VQ-VAE's :class:`~pyro_lvm.vqvae.CodePrior`, saved beside it (VQ-VAEs only).
    :returns: the checkpoint's path.
    """
    if os.path.exists(os.path.join(os.fspath(path), CHECKPOINT)) and not overwrite:
        raise UsageError(f"{os.path.join(os.fspath(path), CHECKPOINT)} exists; pass overwrite=True to replace it, "
                         "or save into another folder")
    from pyro_lvm.vqvae.model import MODEL_KINDS

    if type(model) in MODEL_KINDS.values():
        from pyro_lvm.vqvae.checkpoint import save_checkpoint as save_vq

        with RunFolder(path, "vqvae") as folder:
            folder.write_config({"model_config": model.config.to_dict()})
            return save_vq(folder.checkpoint, model, prior)
    if prior is not None:
        raise UsageError("prior= is saved with a VQ-VAE only")
    kind = _kind_of(model)
    if kind is None:
        raise UsageError(f"save_model saves the package's models ({sorted(_model_classes())}); for a "
                         f"{type(model).__name__}, save its state_dict with torch.save")
    from pyro_lvm.train.checkpoint import param_store_state

    with RunFolder(path, kind) as folder:
        folder.write_config({"model_config": model.to_config()})
        return save_checkpoint(folder.checkpoint, {
            "modules": {"model": model.state_dict()}, "architectures": architectures({"model": model}),
            "param_store": param_store_state([model]), "config": None, "history": [], "epoch": 0})


def load_run(path, name=None):
    """Rebuild the model of a run folder or checkpoint: ``(model, state)``.

    :param str name: which module of a checkpoint to rebuild, where it holds several
        rebuildable ones (default: the only one).
    :returns: the model in eval mode, and the checkpoint's state (config, history, ...).
    """
    file = checkpoint_path(path)
    kind, state = load_state(file)
    if kind == "vqvae":
        from pyro_lvm.vqvae.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(file)
        return checkpoint.model, {"prior": checkpoint.prior, "metadata": checkpoint.metadata}
    if kind != "fit":
        raise CheckpointError(f"{file} is a {kind!r} checkpoint, which holds no trainable model to rebuild")
    found = state.get("architectures") or {}
    if name is None:
        if len(found) != 1:
            raise CheckpointError(f"{file} holds {len(found)} rebuildable modules {sorted(found)}; "
                                  "pass name= to choose one" if found else
                                  f"{file} holds no module that can be rebuilt from a config (only modules "
                                  "with to_config(), such as the package's models, can be)")
        name = next(iter(found))
    if name not in found:
        raise CheckpointError(f"{file} has no rebuildable module {name!r}; it has {sorted(found)}")
    spec = found[name]
    classes = _model_classes()
    if spec.get("class") not in classes:
        raise CheckpointError(f"{file}: module {name!r} is a {spec.get('class')!r}, which this pyro-lvm cannot "
                              f"rebuild (it rebuilds {sorted(classes)})")
    cls = classes[spec["class"]][1]
    try:
        model = cls.from_config(spec["config"])
        model.load_state_dict(state["modules"][name])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{file}: module {name!r} cannot be rebuilt from its config ({e})") from None
    if state.get("param_store") is not None:
        set_param_store_state(state["param_store"])
    return model.eval(), state


def load_model(path, name=None, device="cpu"):
    """Rebuild the trained model saved in a run folder (or checkpoint file) ``path``, in eval mode.

    Checkpoints are read onto the CPU whatever device wrote them; ``device`` (``"auto"``,
    ``"cuda:N"``) then moves the model.
    """
    from pyro_lvm.device import resolve_device

    with torch.no_grad():
        return load_run(path, name)[0].to(resolve_device(device))
