r"""Gradient draws of an objective, and their variance and signal-to-noise ratio per parameter group.

From :math:`R` independent draws :math:`g_1, \dots, g_R` of an estimator's gradient with respect
to a group of parameters :math:`\theta \in \mathbb R^D` (the objective's gradient, so the bound's
up to its sign):

* **variance**: the trace of the covariance, :math:`\sum_{i=1}^D \widehat{\mathrm{Var}}[g_i]`
  (unbiased, over the :math:`R` draws);
* **mean square**: :math:`\|\bar g\|^2`, the squared norm of the mean;
* **SNR**: the signal-to-noise ratio of each coordinate,
  :math:`\mathrm{SNR}_i = |\mathbb E[g_i]| / \sigma[g_i]` (Rainforth et al. 2018, sec. 3, eq. 4),
  estimated by :math:`|\bar g_i| / \hat\sigma_i` and averaged over the group's coordinates
  whose draws vary. Coordinates whose draws are all equal (computed exactly, or not moved) are
  left out of the average; when every coordinate is, the SNR is infinite (an exact gradient, as
  from enumeration), or NaN if the gradient is zero.

The default groups follow who uses a parameter: ``"encoder"`` the guide's (parameters the
guide's log-density depends on), ``"decoder"`` the model's (those :math:`\log p(x, z)` depends
on at fixed :math:`z`), ``"other"`` both. Parameters neither uses (e.g. a baseline network) are
left out.

**Memory.** torch allocates CPU tensors outside Python's allocator, so ``tracemalloc`` does not
see them, and ``resource.getrusage``'s peak resident size only ever grows, so its delta is zero
after the first large step. What is measured instead is exact and repeatable: the bytes of the
tensors autograd saves for the backward pass during one loss evaluation (distinct storages,
parameters and data excluded) -- the activation memory a gradient holds at its peak, which
grows with ``K``. On CUDA data the peak allocated memory during the draw is reported instead.

**References**

1. T. Rainforth, A. R. Kosiorek, T. A. Le, C. J. Maddison, M. Igl, F. Wood, Y. W. Teh, "Tighter
   variational bounds are not necessarily better", ICML 2018.
"""
import math
import time
from contextlib import contextmanager

import pyro
import pyro.poutine as poutine
import torch

from pyro_lvm.objectives import PyroELBO
from pyro_lvm.objectives.base import sample_sites


# ---- parameter groups -----------------------------------------------------------------
def _as_params(value):
    if isinstance(value, torch.nn.Module):
        return list(value.parameters())
    if torch.is_tensor(value):
        return [value]
    return list(value)


def _candidates(model, guide, traces):
    """Parameters of the model and guide: their modules', and the param store's that the traces use."""
    found = []
    for fn in (model, guide):
        owner = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
        if isinstance(owner, torch.nn.Module):
            found += list(owner.parameters())
    store = dict(pyro.get_param_store().named_parameters())
    for trace in traces:
        found += [store[name] for name, site in trace.nodes.items() if site["type"] == "param" and name in store]
    unique = {id(p): p for p in found if p.requires_grad}
    return list(unique.values())


def _used_by(total, params):
    grads = torch.autograd.grad(total, params, allow_unused=True) if torch.is_tensor(total) and \
        total.requires_grad else [None] * len(params)
    return [g is not None for g in grads]


def parameter_groups(model, guide, x, groups=None):
    """``name -> list of parameters`` whose gradients are compared.

    :param dict groups: ``name -> nn.Module | tensor | iterable of tensors`` given by the caller;
        default ``encoder``/``decoder``/``other`` by use (see the module docstring).
    """
    if groups is not None:
        return {name: _as_params(value) for name, value in groups.items()}
    with torch.random.fork_rng(devices=[]):
        guide_trace = poutine.trace(guide).get_trace(x)
        fixed = guide_trace.copy()
        for name, site in sample_sites(guide_trace):
            fixed.nodes[name] = dict(site, value=site["value"].detach())
        model_trace = poutine.trace(poutine.replay(model, trace=fixed)).get_trace(x)
    params = _candidates(model, guide, (model_trace, guide_trace))
    log_p = sum(site["fn"].log_prob(site["value"]).sum() for _, site in sample_sites(model_trace))
    log_q = sum(site["fn"].log_prob(site["value"].detach()).sum() for _, site in sample_sites(guide_trace))
    by_model, by_guide = _used_by(log_p, params), _used_by(log_q, params)
    named = {"encoder": [p for p, m, g in zip(params, by_model, by_guide) if g and not m],
             "decoder": [p for p, m, g in zip(params, by_model, by_guide) if m and not g],
             "other": [p for p, m, g in zip(params, by_model, by_guide) if m and g]}
    return {name: ps for name, ps in named.items() if ps}


# ---- draws ------------------------------------------------------------------------------
def _accumulates(objective):
    """Pyro ELBOs without ``differentiable_loss`` (``RenyiELBO``, ``TraceGraph_ELBO``) only add to ``.grad``."""
    return isinstance(objective, PyroELBO) and not hasattr(objective.elbo, "differentiable_loss")


def draw_gradient(objective, model, guide, x, params):
    """One draw: ``(loss as a float, flat float64 gradient over params)``.

    A Pyro ELBO without ``differentiable_loss`` backpropagates into every parameter it reaches:
    the ``.grad`` of ``params`` is cleared after each draw, that of any other parameter is not.
    """
    if _accumulates(objective):
        for p in params:
            p.grad = None
        value = objective.loss_and_grads(model, guide, x)
        grads = [p.grad for p in params]
        for p in params:
            p.grad = None
    else:
        loss = objective.differentiable_loss(model, guide, x)
        grads = torch.autograd.grad(loss, params, allow_unused=True) if params and loss.requires_grad \
            else [None] * len(params)
        value = loss.item()
    flat = [torch.zeros(p.numel(), dtype=torch.float64) if g is None else g.detach().double().flatten().cpu()
            for p, g in zip(params, grads)]
    return value, torch.cat(flat) if flat else torch.zeros(0, dtype=torch.float64)


def draw_loss(objective, model, guide, x):
    """One loss value, without gradients (running baselines are left alone)."""
    with torch.no_grad():
        return float(objective.loss(model, guide, x))


def timed_draws(draw, repeats):
    """``repeats`` calls of ``draw()``: ``(results, mean seconds per call)``."""
    results, start = [], time.perf_counter()
    for _ in range(repeats):
        results.append(draw())
    return results, (time.perf_counter() - start) / max(1, repeats)


@contextmanager
def saved_tensor_memory(exclude=()):
    """Yield a dict that, on exit, holds ``bytes``: what autograd saved for backward inside.

    Distinct storages are counted once; those of ``exclude`` (parameters, data) not at all. On
    CUDA, ``cuda_peak_bytes`` holds the peak allocated memory above the start as well.
    """
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    sizes, result = {}, {}

    def pack(tensor):
        try:
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. sparse)
            key, size = id(tensor), tensor.numel() * tensor.element_size()
        if key not in excluded:
            sizes[key] = max(size, sizes.get(key, 0))
        return tensor

    cuda = torch.cuda.is_available() and any(t.is_cuda for t in exclude)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield result
    result["bytes"] = sum(sizes.values())
    if cuda:
        result["cuda_peak_bytes"] = torch.cuda.max_memory_allocated() - start


# ---- statistics -------------------------------------------------------------------------
def gradient_statistics(draws):
    """``variance``, ``mean_sq`` and ``snr`` of gradient draws ``(R, D)`` (see the module docstring)."""
    draws = torch.as_tensor(draws, dtype=torch.float64)
    if draws.shape[0] < 2 or draws.shape[1] == 0:
        return {"variance": math.nan, "mean_sq": math.nan, "snr": math.nan}
    equal = (draws == draws[0]).all(0)  # exactly zero spread, whatever the rounding of mean and std
    mean = torch.where(equal, draws[0], draws.mean(0))
    std = torch.where(equal, torch.zeros_like(mean), draws.std(0))
    spread = std > 0
    if spread.any():
        snr = (mean[spread].abs() / std[spread]).mean().item()
    else:  # every coordinate exact: infinite where the gradient is not zero
        snr = math.inf if (mean != 0).any() else math.nan
    return {"variance": std.pow(2).sum().item(), "mean_sq": mean.pow(2).sum().item(), "snr": snr}
