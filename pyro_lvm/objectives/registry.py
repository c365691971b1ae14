"""Objectives by name, and an adapter so Pyro's own ELBO instances plug in too."""
from pyro.infer import ELBO

from pyro_lvm.objectives.meanfield_elbo import MeanFieldELBO
from pyro_lvm.objectives.renyi_elbo import IWAE, RenyiBound
from pyro_lvm.objectives.trace_elbo import TraceELBO
from pyro_lvm.objectives.tracegraph_elbo import TraceGraphELBO

OBJECTIVES = {"elbo": TraceELBO, "tracegraph": TraceGraphELBO, "meanfield": MeanFieldELBO, "iwae": IWAE,
              "renyi": RenyiBound}


class PyroELBO:
    """Wrap a ``pyro.infer.ELBO`` instance (e.g. ``TraceGraph_ELBO()``) as an objective."""

    def __init__(self, elbo):
        if not hasattr(elbo, "differentiable_loss"):
            raise TypeError(f"{type(elbo).__name__} has no differentiable_loss; "
                            "use a pyro_lvm objective (e.g. 'iwae' or 'renyi') instead")
        self.elbo = elbo
        self.num_particles = elbo.num_particles

    def differentiable_loss(self, model, guide, *args, **kwargs):
        return self.elbo.differentiable_loss(model, guide, *args, **kwargs)

    __call__ = differentiable_loss

    def loss(self, model, guide, *args, **kwargs):
        return self.elbo.loss(model, guide, *args, **kwargs)


def get_objective(name, num_particles=None, **kwargs):
    """Return an objective by name (``elbo``, ``meanfield``, ``iwae``, ``renyi``).

    An object that already has ``differentiable_loss`` is returned as is; a Pyro ``ELBO``
    instance is wrapped by :class:`PyroELBO`.

    :param name: objective name or instance.
    :param int num_particles: samples per datum (default: 1, and 5 for ``iwae``/``renyi``).
    :param kwargs: e.g. ``alpha`` for ``renyi``, ``vectorize_particles``, ``max_plate_nesting``.
    """
    if not isinstance(name, str):
        if num_particles is not None or kwargs:
            raise TypeError("num_particles and other options only apply when the objective is given by name")
        if isinstance(name, ELBO):
            return PyroELBO(name)
        if hasattr(name, "differentiable_loss") and not isinstance(name, type):
            return name
        raise TypeError(f"expected an objective name or instance, got {name!r}")
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}") from None
    if num_particles is not None:
        kwargs["num_particles"] = num_particles
    return cls(**kwargs)
