"""One training loop for any (model, guide, objective, data).

:func:`fit` runs stochastic variational inference with a single ``torch.optim.Adam`` over every
parameter of the model and guide: the parameters of their ``nn.Module`` owners and any
``pyro.param`` sites (found once by a param-only trace). Working on the modules directly rather
than through ``pyro.infer.SVI`` avoids re-registering every parameter and running one optimizer
per tensor at each step, which is most of Pyro's per-step overhead for small networks. For
the same reason the models' ``pyro.module`` registration is switched off around the steps
(:mod:`pyro_lvm.models.registration`), except for a Pyro ELBO instance, which needs the param
sites (``loss_and_grads`` backpropagates only when it sees them; ``JitTrace_ELBO`` compiles
against the param store).

Before each training step the objective is told how many steps came before it,
``objective.set_step(step)`` where it has that method (the schedule of a KL weight,
:mod:`pyro_lvm.objectives.kl_schedules`, is a function of this global step, so it resumes
exactly from a checkpoint's step count); an objective with a ``kl_weight`` that is not ``None``
has it recorded as ``beta`` in each epoch's history (its value at the epoch's last step).

A batch is ``x``, or a tuple such as ``(x, y)``; the tuple is passed whole to the model and
the guide when the model takes that many positional arguments, and as ``x`` alone otherwise.
"""
import inspect
import math
import os
import time
from dataclasses import dataclass, field

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions import constraints
from torch import nn
from tqdm.auto import tqdm

from pyro_lvm.data import TensorLoader
from pyro_lvm.errors import DataError, NonFiniteLossError
from pyro_lvm.models.registration import registration_enabled
from pyro_lvm.objectives import MeanFieldELBO, TraceELBO, get_objective
from pyro_lvm.train import distributed
from pyro_lvm.train.checkpoint import (check_config, check_processes, load_checkpoint, load_modules,
                                       param_store_state, rng_state, save_checkpoint, set_rng_state)
from pyro_lvm.train.device import network_autocast, place


@dataclass
class FitState:
    """What callbacks see: progress so far and the objects being trained."""

    epoch: int = 0
    step: int = 0
    train_seconds: float = 0.0
    history: list = field(default_factory=list)
    optimizer: torch.optim.Optimizer = None
    checkpoint: str = None
    is_main: bool = True  # under torchrun: whether this process (rank 0) writes files


@dataclass
class FitResult:
    """The per-epoch history, the modules trained and where the checkpoint is."""

    history: list
    modules: dict
    checkpoint: str = None
    state: FitState = None


def owner_modules(*fns):
    """The ``nn.Module`` behind each model/guide (itself, or the owner of a bound method)."""
    modules = {}
    for role, fn in zip(("model", "guide"), fns):
        owner = fn if isinstance(fn, nn.Module) else getattr(fn, "__self__", None)
        if isinstance(owner, nn.Module) and all(owner is not m for m in modules.values()):
            modules[role] = owner
    return modules


def as_loader(data, batch_size, shuffle, generator=None):
    """A :class:`TensorLoader` over a tensor (loaders pass through, given a generator)."""
    if isinstance(data, TensorLoader):
        if data.generator is None:
            data.generator = generator
        return data
    if torch.is_tensor(data):
        return TensorLoader(data, batch_size, shuffle=shuffle, generator=generator)
    raise TypeError(f"expected a tensor or a TensorLoader, got {type(data).__name__}")


def _parameters(modules, model, guide, args):
    """Module parameters, then any ``pyro.param`` sites outside them.

    Found by running guide and model once on ``args`` under a param-only trace, without
    gradients, validation, registration or touching the random stream, so discovery changes
    no state of the run.
    """
    params = {id(p): p for m in modules.values() for p in m.parameters() if p.requires_grad}
    with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False), \
            registration_enabled(False):
        traces = [poutine.trace(fn, param_only=True).get_trace(*args) for fn in (guide, model)]
    for trace in traces:
        for site in trace.nodes.values():
            p = site["value"].unconstrained()
            if p.requires_grad:
                params.setdefault(id(p), p)
    return list(params.values())


def _adam(params, lr, betas, eps):
    """Adam; the fused kernel (one pass over all tensors, ~3x faster on CPU here) where supported."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)


def positional_arity(fn):
    """How many positional arguments ``fn`` accepts (``inf`` with ``*args`` or when unknown)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return math.inf
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return math.inf
    return sum(k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for k in kinds)


def batch_arguments(model):
    """``batch -> args`` for ``model(*args)`` and ``guide(*args)``, decided once from ``model``'s signature.

    A tensor batch gives ``(x,)``; a tuple or list ``(x, y, ...)`` is passed whole when the model
    takes that many positional arguments (a conditional model ``model(x, y)``), else as ``(x,)``:
    an unconditional model ignores the labels.
    """
    arity = positional_arity(model)

    def arguments(batch):
        if isinstance(batch, (tuple, list)):
            return tuple(batch) if len(batch) <= arity else (batch[0],)
        return (batch,)

    return arguments


def _without_values(fn):
    """``fn``, re-raising a multi-line ``ValueError`` without the tensors it prints.

    Torch's support check appends the offending tensor to its message (a hundred lines of
    numbers for a batch of images) and Pyro adds the trace's shapes; the lines before them name
    the site, the distribution and the reason, and are kept.
    """
    def wrapped(*args):
        try:
            return fn(*args)
        except ValueError as e:
            lines = str(e).splitlines()
            if len(lines) < 2:
                raise
            kept = []
            for line in lines:
                if line.lstrip().startswith(("tensor(", "Trace Shapes")):
                    break
                kept.append(line.strip().rstrip(":"))
            raise ValueError(" ".join(part for part in kept if part) + " (values not shown)") from None
    return wrapped


def _training_step(objective, model, guide):
    """``*args -> loss`` that also accumulates the gradient: ``loss_and_grads`` where the objective
    has it (a Pyro ELBO, see :class:`~pyro_lvm.objectives.PyroELBO`), else ``differentiable_loss``
    and ``backward``."""
    if hasattr(objective, "loss_and_grads"):
        return _without_values(lambda *args: torch.tensor(objective.loss_and_grads(model, guide, *args)))

    def step(*args):
        loss = objective.differentiable_loss(model, guide, *args)
        loss.backward()
        return loss
    return _without_values(step)


@torch.no_grad()
def evaluate_loss(model, guide, objective, loader, seed=0):
    """The objective's loss per datum on a data set, at a fixed seed (repeatable).

    :param objective: a name, one of our objectives or a Pyro ELBO (scored with ``loss``).
    :param loader: a :class:`TensorLoader`; ``(x, y)`` batches follow the rule of :func:`fit`.
    """
    objective = get_objective(objective)
    if hasattr(objective, "loss"):
        loss = _without_values(lambda *args: objective.loss(model, guide, *args))
    else:
        loss = _without_values(lambda *args: objective.differentiable_loss(model, guide, *args).item())
    arguments = batch_arguments(model)
    total = 0.0
    with torch.random.fork_rng(devices=[]), registration_enabled(False):
        torch.manual_seed(seed)
        for batch in loader:
            total += loss(*arguments(batch))
    return total / loader.dataset_size


def _is_grayscale(x):
    """Values in [0, 1], not all of them 0 or 1: Bernoulli means, not Bernoulli draws."""
    return x.is_floating_point() and bool(((x >= 0) & (x <= 1)).all()) and bool(((x != 0) & (x != 1)).any())


def _has_bernoulli_observation(model, args):
    """Whether ``model(*args)`` observes a site with {0, 1} support (a Bernoulli likelihood)."""
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False), \
                registration_enabled(False):
            trace = poutine.trace(model).get_trace(*args)
    except Exception:  # only a diagnosis: the real error, if any, surfaces in the first step
        return False
    for site in trace.nodes.values():
        if site["type"] == "sample" and site["is_observed"]:
            support = site["fn"].support
            while hasattr(support, "base_constraint"):
                support = support.base_constraint
            if support is constraints.boolean:
                return True
    return False


def _validate_data(modules, loader, model, arguments):
    if getattr(loader, "binarize", False):
        return  # grayscale probabilities; each batch is binarized on the fly
    probe = loader.data[:2] if loader.labels is None else (loader.data[:2], loader.labels[:2])
    if _is_grayscale(loader.data) and _has_bernoulli_observation(model, arguments(probe)):
        raise DataError("the model's Bernoulli likelihood needs binary data but got grayscale values in "
                        "[0, 1]: pass data.train_loader(batch_size), which draws fresh binary pixels for "
                        "every batch with load_dataset(..., binarize='dynamic'), instead of the tensor "
                        "data.train (or load with binarize='static', or use a Gaussian likelihood)")
    for module in modules.values():
        if hasattr(module, "validate_data"):
            module.validate_data(loader.data)


def fit(model, guide, objective, train, test=None, *, epochs=10, batch_size=128, lr=1e-3,
        betas=(0.9, 0.999), eps=1e-8, lr_schedule=None, clip_norm=None, seed=0, modules=None,
        callbacks=(), checkpoint=None, resume=False, config=None, progress=True, eval_batch_size=500,
        optimizer=None, device=None, precision="fp32"):
    """Train ``model``/``guide`` by minimising ``objective`` with Adam.

    :param callable model: a Pyro model taking a batch ``x`` (or ``x, y`` for ``(x, y)`` batches).
    :param callable guide: the matching guide.
    :param objective: a name (``"elbo"``, ``"tracegraph"``, ``"meanfield"``, ``"iwae"``,
        ``"renyi"``), an objective, or any ``pyro.infer`` ELBO instance (trained through
        :meth:`~pyro_lvm.objectives.PyroELBO.loss_and_grads`, with the models' ``pyro.module``
        registration kept on).
    :param train: a data tensor (shuffled batches by index) or a :class:`TensorLoader`; with
        ``load_dataset(..., binarize="dynamic")`` pass ``data.train_loader(batch_size)``. A
        loader of ``(x, y)`` batches calls ``model(x, y)`` if the model takes two positional
        arguments, else ``model(x)``.
    :param test: optional test tensor or loader; its loss per datum is computed each epoch
        at a fixed seed, so it is repeatable and reproduced exactly after reloading.
    :param callable lr_schedule: epoch -> learning-rate multiplier (see :mod:`.schedules`).
    :param float clip_norm: clip the gradient norm to this value if given.
    :param int seed: seeds Pyro/torch and the data order.
    :param dict modules: ``name -> nn.Module`` to train and checkpoint; default: the owners
        of ``model`` and ``guide``.
    :param callbacks: callables ``(record, state) -> stop?`` run after each epoch; those with a
        method ``on_step(loss, state)`` are also given each step's loss per datum (e.g.
        :class:`~pyro_lvm.train.tensorboard.TensorBoardCallback`).
    :param str checkpoint: path of the checkpoint written after every epoch (atomically).
    :param bool resume: continue from ``checkpoint`` if it exists, bit for bit.
    :param callable optimizer: ``(params, lr=, betas=, eps=) -> torch.optim.Optimizer``; default
        Adam. Steps go through a closure, so ``torch.optim.LBFGS`` works too (wrap it to drop
        ``betas``/``eps``).
    :param dict config: the run's configuration, stored in the checkpoint; on resume a
        different config is an error.
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`:
        the modules, ``pyro.param`` sites and data (moved once) go there; ``None`` leaves them
        where they are.
    :param str precision: ``"fp32"``, or ``"bf16"``: the networks' layers run under bfloat16
        autocast in the training steps, while densities, log-weights, logsumexp, KL terms and the
        loss stay float32 (:func:`~pyro_lvm.device.network_autocast`); test losses are float32.

    Under ``torchrun`` (a process group initialized, e.g. by
    :func:`pyro_lvm.distributed.init_from_env`) each process trains on its share of every
    global batch of ``batch_size`` rows and gradients are summed over processes
    (:mod:`pyro_lvm.train.distributed`); only rank 0 writes the checkpoint, and a resume needs
    the same number of processes.
    :returns: :class:`FitResult`; ``history`` has one dict per epoch with ``train_loss`` and
        ``test_loss`` (the objective's loss, nats per datum), ``test_elbo`` (the test ELBO per
        datum, whatever the objective), ``lr`` and ``seconds`` (and ``beta`` under KL control).
    :raises NonFiniteLossError: when the loss turns NaN, naming the site; the last checkpoint
        written stays as it was.
    :raises DataError: when a Bernoulli likelihood is given grayscale data (say which loader to pass).
    """
    objective = get_objective(objective)
    arguments = batch_arguments(model)  # the (x, y) rule, decided once
    step = _training_step(objective, model, guide)
    set_step = getattr(objective, "set_step", None)  # e.g. a KL weight's schedule
    registering = getattr(objective, "needs_param_sites", False)  # Pyro ELBOs need pyro.module sites
    modules = dict(modules) if modules is not None else owner_modules(model, guide)
    rank, processes = distributed.rank(), distributed.world_size()
    pyro.set_rng_seed(seed + rank)  # each process its own latent draws; one process as before
    generator = torch.Generator().manual_seed(seed)  # the data order: shared by all processes
    train_loader = as_loader(train, batch_size, shuffle=True, generator=generator)
    test_loader = None if test is None else as_loader(
        distributed.shard_rows(test) if processes > 1 and torch.is_tensor(test) else test, eval_batch_size,
        shuffle=False)
    if device is not None:
        device = place(device, modules.values())
        for loader in (train_loader, test_loader):
            if loader is not None:
                loader.to(device)
    if processes > 1:
        train_loader.shard(rank, processes)
    progress = progress and distributed.is_main()
    _validate_data(modules, train_loader, model, arguments)

    saved = _load_for_resume(checkpoint, modules, config) if resume else None
    first_batch = train_loader.data[: train_loader.batch_size]  # only to find the parameters
    if getattr(train_loader, "binarize", False):
        first_batch = torch.bernoulli(first_batch, generator=torch.Generator().manual_seed(seed))
    if train_loader.labels is not None:
        first_batch = (first_batch, train_loader.labels[: train_loader.batch_size])
    params = _parameters(modules, model, guide, arguments(first_batch))
    if device is not None:
        place(device, params=params)  # pyro.param sites outside the modules
    if precision not in (None, "fp32"):
        step = _autocast(step, modules, train_loader.device, precision)
    if processes > 1:
        distributed.synchronize_start(modules.values(), params)
        step = distributed.synchronized_step(step, params)
    optimizer = (optimizer or _adam)(params, lr=lr, betas=betas, eps=eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule) if lr_schedule else None
    state = FitState(optimizer=optimizer, checkpoint=checkpoint, is_main=distributed.is_main())
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"], train_loader.generator)
        if hasattr(objective, "load_state_dict"):
            objective.load_state_dict(saved.get("objective") or {})
        for callback, callback_state in zip(callbacks, saved.get("callbacks") or []):
            if callback_state is not None:
                callback.load_state_dict(callback_state)
        state.epoch, state.step = saved["epoch"], saved["step"]
        state.history, state.train_seconds = list(saved["history"]), saved["train_seconds"]

    step_callbacks = [cb for cb in callbacks if hasattr(cb, "on_step")]
    for epoch in range(state.epoch, epochs):
        for m in modules.values():
            m.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for i, batch in enumerate(bar):
            args = arguments(batch)
            if set_step is not None:
                set_step(state.step)

            def closure():
                optimizer.zero_grad(set_to_none=True)
                with registration_enabled(registering):
                    loss = step(*args)
                if clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip_norm)
                return loss

            try:
                loss = optimizer.step(closure)
            except NonFiniteLossError as e:
                raise _stopped(e, f"at epoch {epoch + 1}, step {i + 1}", checkpoint, state.epoch) from e
            total += loss.item()
            seen += args[0].shape[0]
            state.step += 1
            for callback in step_callbacks:  # e.g. TensorBoard's per-step loss
                callback.on_step(loss.item() / max(args[0].shape[0], 1), state)
            if i % 25 == 0:
                bar.set_postfix(loss=f"{total / seen:.2f}", refresh=False)
        state.train_seconds += time.perf_counter() - start
        if processes > 1:  # the losses summed already; the rows of all processes
            seen = int(distributed.all_reduce_sum(torch.tensor(seen)))
        _check_parameters(params, epoch, checkpoint, state.epoch)
        record = {"epoch": epoch + 1, "train_loss": total / max(seen, 1),
                  "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        if getattr(objective, "kl_weight", None) is not None:
            record["beta"] = objective.kl_weight
        if scheduler is not None:
            scheduler.step()
        if test_loader is not None:
            for m in modules.values():
                m.eval()
            try:
                record["test_loss"] = distributed.all_reduce_mean(
                    evaluate_loss(model, guide, objective, test_loader, seed), test_loader.dataset_size)
                record["test_elbo"] = -(record["test_loss"] if isinstance(objective, (TraceELBO, MeanFieldELBO))
                                        and objective.kl_control is None
                                        else distributed.all_reduce_mean(evaluate_loss(
                                            model, guide, TraceELBO(), test_loader, seed), test_loader.dataset_size))
            except NonFiniteLossError as e:
                raise _stopped(e, f"on the test set after epoch {epoch + 1}", checkpoint, state.epoch) from e
        state.epoch = epoch + 1
        state.history.append(record)
        if progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        random_states = rng_state(train_loader.generator) if checkpoint else None  # every process takes part
        # callbacks first, so the checkpoint holds what they add to the record and their state after
        # this epoch (the random states were taken above, before any callback could draw)
        stop = any([bool(cb(record, state)) for cb in callbacks])
        if processes > 1:  # stop together when any process's callback says so
            stop = bool(distributed.all_reduce_sum(torch.tensor(int(stop))))
        if checkpoint and state.is_main:
            save_checkpoint(checkpoint, {
                "modules": {n: m.state_dict() for n, m in modules.items()},
                "param_store": param_store_state(modules.values()), "optimizer": optimizer.state_dict(),
                "architectures": architectures(modules),
                "scheduler": None if scheduler is None else scheduler.state_dict(), "config": config,
                "rng": random_states, "world_size": processes, "epoch": state.epoch, "step": state.step,
                "history": state.history, "train_seconds": state.train_seconds,
                "objective": objective.state_dict() if hasattr(objective, "state_dict") else None,
                "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks]})
        if stop:
            break
    for m in modules.values():
        m.eval()
    return FitResult(history=state.history, modules=modules, checkpoint=checkpoint, state=state)


def _autocast(step, modules, device, precision):
    """``step`` with the networks of ``modules`` under autocast (:func:`~pyro_lvm.device.network_autocast`)."""
    def autocast_step(*args):
        with network_autocast(modules, device, precision):
            return step(*args)
    return autocast_step


def _check_parameters(params, epoch, checkpoint, saved_epoch):
    """A NaN gradient can leave non-finite parameters behind a finite loss: never save those."""
    if not all(torch.isfinite(p).all() for p in params):
        error = NonFiniteLossError("parameters became non-finite (a NaN or infinite gradient)")
        raise _stopped(error, f"during epoch {epoch + 1}", checkpoint, saved_epoch)


def _stopped(error, where, checkpoint, epoch):
    if not checkpoint:
        kept = "no checkpoint was being written"
    elif epoch == 0:
        kept = f"no checkpoint exists yet (none is written before the first epoch ends; {checkpoint} was not created)"
    else:
        kept = f"the last checkpoint {checkpoint} (epoch {epoch}) is untouched"
    return NonFiniteLossError(f"{error} {where}; training stopped and {kept}", error.sites)


def _load_for_resume(checkpoint, modules, config):
    if not checkpoint or not os.path.exists(checkpoint):
        return None
    saved = load_checkpoint(checkpoint)
    check_config(saved, config, checkpoint)
    check_processes(saved, checkpoint)
    load_modules(modules, saved, checkpoint)
    if distributed.is_main():
        print(f"resuming from epoch {saved['epoch']} ({checkpoint})", flush=True)
    return saved


def architectures(modules):
    """``name -> {"class", "config"}`` for the modules that can be rebuilt from a plain config
    (those with ``to_config()``, e.g. :class:`~pyro_lvm.models.VAE`); stored in checkpoints so
    that a trained model loads in one call whatever name ``fit`` gave it."""
    return {name: {"class": type(m).__name__, "config": m.to_config()}
            for name, m in modules.items() if callable(getattr(m, "to_config", None))}
