"""Checkpoints of :func:`~pyro_lvm.train.fit` that resume training bit for bit.

A checkpoint (kind ``"fit"`` of :mod:`pyro_lvm.serialization`) holds module state dicts
(parameters and buffers), Pyro's param store, the optimizer and scheduler states, the run's
config, the random states (torch's CPU and, where CUDA is in use, GPU generators, the data
loader's generator, numpy, python; under ``torchrun`` the torch and GPU states of every process)
and the history so far, all as tensors and plain values so that loading it runs no code. Pyro's parameter
constraints are objects; they are stored as their class name and attributes and rebuilt only
from the classes of ``torch.distributions.constraints`` and ``pyro.distributions.constraints``.
Files are written to a temporary name and renamed into place, so an interrupted write never
replaces a good file. Tensors are read onto the CPU (``map_location``) and copied into the
modules wherever they live, so a checkpoint written on a GPU loads on a CPU-only machine and
the reverse; an exact resume needs the same device type (CPU and GPU draw different numbers).
"""
import random

import pyro
import pyro.distributions.constraints as pyro_constraints
import torch
import torch.distributions.constraints as torch_constraints

from pyro_lvm import distributed
from pyro_lvm.errors import CheckpointError
from pyro_lvm.serialization import load_state, numpy_rng_state, save_state, set_numpy_rng_state

KIND = "fit"


def _constraint_classes():
    classes = {}
    for module in (torch_constraints, pyro_constraints):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, torch_constraints.Constraint):
                classes.setdefault(value.__name__, value)
    return classes


_CONSTRAINTS = _constraint_classes()


def encode_constraint(constraint):
    """A constraint as ``{"class": name, "attrs": {...}}`` of plain values and tensors."""
    name = type(constraint).__name__
    if _CONSTRAINTS.get(name) is not type(constraint):
        raise TypeError(f"cannot store constraint {constraint!r}: only those of torch.distributions.constraints "
                        "and pyro.distributions.constraints are stored")
    attrs = {k: encode_constraint(v) if isinstance(v, torch_constraints.Constraint) else v
             for k, v in vars(constraint).items()}
    return {"class": name, "attrs": attrs}


def decode_constraint(spec):
    """Rebuild what :func:`encode_constraint` stored (only from the known constraint classes)."""
    cls = _CONSTRAINTS.get(spec.get("class")) if isinstance(spec, dict) else None
    if cls is None:
        raise CheckpointError(f"unknown parameter constraint {spec!r} in checkpoint")
    constraint = cls.__new__(cls)
    constraint.__dict__.update({k: decode_constraint(v) if isinstance(v, dict) and "class" in v else v
                                for k, v in spec["attrs"].items()})
    return constraint


def param_store_state(modules=()):
    """Pyro's param store as ``{"params": {name: tensor}, "constraints": {name: spec}}``.

    :param modules: ``nn.Module`` s whose parameters are left out: their state dicts hold them
        already (``pyro.module`` puts the very same tensors in the store).
    """
    state = pyro.get_param_store().get_state()
    owned = {id(p) for m in modules for p in m.parameters()}
    names = [k for k, v in state["params"].items() if id(v) not in owned]
    try:
        return {"params": {k: state["params"][k].detach().clone() for k in names},
                "constraints": {k: encode_constraint(state["constraints"][k]) for k in names}}
    except TypeError as e:
        raise CheckpointError(str(e)) from None


def set_param_store_state(state, device=None):
    """Restore what :func:`param_store_state` returned into Pyro's param store (on ``device`` if given)."""
    params = {k: v if device is None else v.to(device) for k, v in state["params"].items()}
    params = {k: v.requires_grad_() if v.is_floating_point() else v for k, v in params.items()}
    pyro.get_param_store().set_state(
        {"params": params, "constraints": {k: decode_constraint(c) for k, c in state["constraints"].items()}})


def save_checkpoint(path, state):
    """Atomically write ``state`` (a dict of tensors and plain values) to ``path``."""
    try:
        return save_state(path, KIND, state)
    except TypeError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e}") from None


def load_checkpoint(path):
    """Read a training checkpoint safely, raising :class:`CheckpointError` that names what is wrong."""
    return load_state(path, KIND)[1]


def check_config(saved, config, path="checkpoint"):
    """Raise unless the ``config`` a run is resumed with equals the one its checkpoint was written with.

    :param dict saved: the loaded checkpoint; its ``"config"`` (``None``: nothing to compare).
    :raises CheckpointError: naming the settings that differ.
    """
    if config is not None and saved.get("config") is not None and saved["config"] != config:
        diff = sorted(k for k in set(config) | set(saved["config"]) if config.get(k) != saved["config"].get(k))
        raise CheckpointError(f"checkpoint {path} was written with a different config (differs in {diff}); "
                              "use a new output folder or the same settings")


def _cuda_in_use():
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _process_states():
    """This process's torch CPU state and, where CUDA is in use, its current GPU's state."""
    cuda = torch.cuda.get_rng_state() if _cuda_in_use() else torch.zeros(0, dtype=torch.uint8)
    return torch.get_rng_state(), cuda


def rng_state(generator=None):
    """The random states that a resumed run must restore.

    Under ``torchrun`` every process must call it (the states of all processes are gathered:
    each draws its own latent samples); ``"processes"`` holds them in rank order.
    """
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "numpy": numpy_rng_state(),
             "python": [version, list(internal), gauss],
             "loader": None if generator is None else generator.get_state(),
             "cuda": list(torch.cuda.get_rng_state_all()) if _cuda_in_use() else None}
    if distributed.world_size() > 1:
        cpu, cuda = _process_states()
        rows = distributed.all_gather_rows(torch.cat([cpu, cuda]).unsqueeze(0))
        state["processes"] = [{"torch": row[: cpu.numel()].clone(), "cuda": row[cpu.numel():].clone()}
                              for row in rows]
    return state


def set_rng_state(state, generator=None):
    """Restore what :func:`rng_state` returned (under ``torchrun``, each process its own state).

    GPU states are restored where the checkpoint has them and CUDA is in use with as many GPUs;
    a checkpoint from another device type resumes with fresh GPU draws.
    """
    torch.set_rng_state(state["torch"])
    set_numpy_rng_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if generator is not None and state.get("loader") is not None:
        generator.set_state(state["loader"])
    cuda = state.get("cuda")
    if cuda and _cuda_in_use() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    processes = state.get("processes")
    if processes and distributed.world_size() == len(processes):
        mine = processes[distributed.rank()]
        torch.set_rng_state(mine["torch"])
        if mine["cuda"].numel() and _cuda_in_use():
            torch.cuda.set_rng_state(mine["cuda"])


def check_processes(saved, path="checkpoint"):
    """Raise unless the run resumes with as many processes as wrote ``saved`` (exact resume needs it)."""
    written, now = saved.get("world_size", 1), distributed.world_size()
    if written != now:
        how = "without torchrun" if written == 1 else f"under torchrun --nproc_per_node {written}"
        raise CheckpointError(f"checkpoint {path} was written by {written} training process(es) and this run has "
                              f"{now}; resume it {how} (the data shards and random streams depend on the number), "
                              "or train into a new --out")


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
        set_param_store_state(state["param_store"])
