"""Objectives by name, and an adapter so Pyro's own ELBO instances plug in too."""
import math

import torch
from pyro.infer import ELBO, RenyiELBO, TraceGraph_ELBO

from pyro_lvm.errors import NonFiniteLossError, UsageError
from pyro_lvm.objectives.kl_control import KLControlled
from pyro_lvm.objectives.meanfield_elbo import MeanFieldELBO
from pyro_lvm.objectives.renyi_elbo import IWAE, RenyiBound
from pyro_lvm.objectives.trace_elbo import TraceELBO
from pyro_lvm.objectives.tracegraph_elbo import TraceGraphELBO

OBJECTIVES = {"elbo": TraceELBO, "tracegraph": TraceGraphELBO, "meanfield": MeanFieldELBO, "iwae": IWAE,
              "renyi": RenyiBound}


class PyroELBO:
    """Wrap a ``pyro.infer.ELBO`` instance (``Trace_ELBO()``, ``RenyiELBO()``, ...) as an objective.

    Every Pyro ELBO has ``loss`` (a float, no gradients) and ``loss_and_grads`` (a float, with
    the gradient accumulated into ``.grad``), which is what :meth:`loss_and_grads` drives;
    ``differentiable_loss`` exists only for some (not ``RenyiELBO`` or ``TraceGraph_ELBO``).
    ``loss_and_grads`` backpropagates only when the traces hold ``param`` sites, and
    ``JitTrace_ELBO`` compiles against the param store, so a training loop must keep the
    models' ``pyro.module`` registration on (:attr:`needs_param_sites`).
    """

    #: read by :func:`pyro_lvm.train.fit`: keep ``pyro.module`` registration on for this objective
    needs_param_sites = True

    def __init__(self, elbo):
        if not isinstance(elbo, ELBO):
            raise TypeError(f"expected a pyro.infer.ELBO instance, got {type(elbo).__name__}")
        self.elbo = elbo
        self.num_particles = elbo.num_particles

    def loss_and_grads(self, model, guide, *args, **kwargs):
        """The loss as a float, after adding its gradient to ``.grad`` as ``SVI.step`` does.

        Uses ``differentiable_loss`` and ``backward`` where the ELBO has it (the same gradient,
        and no silent no-op when a model registers no ``param`` site), else ``loss_and_grads``.

        :raises NonFiniteLossError: when the loss is NaN or infinite (Pyro only warns).
        """
        if hasattr(self.elbo, "differentiable_loss"):
            loss = self.elbo.differentiable_loss(model, guide, *args, **kwargs)
            if not torch.is_tensor(loss):
                return float(loss)  # nothing to differentiate (e.g. an empty model)
            if loss.requires_grad:
                loss.backward()
            value = loss.item()
        else:
            value = float(self.elbo.loss_and_grads(model, guide, *args, **kwargs))
        if not math.isfinite(value):
            raise NonFiniteLossError(f"{type(self.elbo).__name__} loss is {value}")
        return value

    def differentiable_loss(self, model, guide, *args, **kwargs):
        """The wrapped ELBO's ``differentiable_loss``, where it has one."""
        if not hasattr(self.elbo, "differentiable_loss"):
            raise TypeError(f"{type(self.elbo).__name__} has no differentiable_loss (it computes gradients in "
                            f"loss_and_grads, which fit drives); for a differentiable loss use {_nearest(self.elbo)}")
        return self.elbo.differentiable_loss(model, guide, *args, **kwargs)

    __call__ = differentiable_loss

    def loss(self, model, guide, *args, **kwargs):
        """The loss as a float, without gradients (every Pyro ELBO has it)."""
        return self.elbo.loss(model, guide, *args, **kwargs)


def _nearest(elbo):
    """Our objective closest to a Pyro ELBO, as a hint."""
    if isinstance(elbo, TraceGraph_ELBO):
        return "get_objective('tracegraph')"
    if isinstance(elbo, RenyiELBO):
        return "get_objective('renyi', alpha=...) or get_objective('iwae')"
    return "a pyro_lvm objective such as get_objective('elbo')"


def get_objective(name, num_particles=None, **kwargs):
    """Return an objective by name (``elbo``, ``tracegraph``, ``meanfield``, ``iwae``, ``renyi``).

    An object that already has ``differentiable_loss`` is returned as is; any Pyro ``ELBO``
    instance is wrapped by :class:`PyroELBO`.

    :param name: objective name or instance.
    :param int num_particles: samples per datum (default: 1, and 5 for ``iwae``/``renyi``).
    :param kwargs: e.g. ``alpha`` for ``renyi`` (default 0.5, as the command line's ``--alpha``;
        ``alpha=0`` is ``iwae``), ``vectorize_particles``, ``max_plate_nesting``, and
        ``gradient``: ``"standard"`` (default), ``"stl"`` (``elbo``, ``tracegraph``, ``iwae``,
        ``renyi``) or ``"dreg"`` (``iwae``, ``renyi``), see :mod:`pyro_lvm.objectives.base`;
        ``beta`` (a number >= 0 or a schedule of :mod:`~pyro_lvm.objectives.kl_schedules`) and
        ``free_bits`` (nats per latent dimension) for ``elbo``, ``meanfield`` and ``tracegraph``,
        see :mod:`pyro_lvm.objectives.kl_control`.
    :raises UsageError: for ``beta``/``free_bits`` with ``iwae`` or ``renyi``: weighting the KL inside
        an importance-weighted bound leaves no bound on :math:`\log p(x)`.
    """
    if not isinstance(name, str):
        if num_particles is not None or kwargs:
            raise TypeError("num_particles and other options only apply when the objective is given by name")
        if isinstance(name, ELBO):
            return PyroELBO(name)
        if hasattr(name, "differentiable_loss") and not isinstance(name, type):
            return name
        raise TypeError(f"expected an objective name or instance, got {type(name).__name__}")
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}") from None
    if num_particles is not None:
        kwargs["num_particles"] = num_particles
    for key in ("beta", "free_bits"):
        if key in kwargs and kwargs[key] is None:
            del kwargs[key]
    if ("beta" in kwargs or "free_bits" in kwargs) and not issubclass(cls, KLControlled):
        raise UsageError(f"objective {name!r} takes no KL weight (beta) or free bits: inside an importance-weighted "
                         "bound they leave no bound on log p(x); use objective 'elbo' or 'meanfield' with them")
    return cls(**kwargs)
