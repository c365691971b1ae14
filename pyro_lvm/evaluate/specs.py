"""What the estimator harness compares: one :class:`EstimatorSpec` per row of its table.

A spec names an objective the way :func:`~pyro_lvm.objectives.get_objective` takes it -- a name
(``"elbo"``, ``"meanfield"``, ``"tracegraph"``, ``"iwae"``, ``"renyi"``) with keyword arguments
(``num_particles``, ``alpha``, ``gradient``, ...), or any instance (a ``pyro.infer`` ELBO such
as ``TraceEnum_ELBO`` or ``TraceGraph_ELBO`` included) -- and may swap in its own model/guide
pair, e.g. the split-site pair that enumeration needs. A plain tuple ``(label, objective)`` or
``(label, objective, kwargs)`` is a spec too.

An objective that does not take one of the keyword arguments (``gradient="dreg"`` before the
objectives offer it, say) is not an error of the comparison: :func:`build_objective` returns a
note instead, and the harness reports the row as skipped with that note.
"""
from dataclasses import dataclass, field

import pyro.poutine as poutine
import torch

from pyro_lvm.objectives import get_objective
from pyro_lvm.objectives.base import sample_sites


@dataclass
class EstimatorSpec:
    """One estimator of the comparison.

    :param str label: its name in the table.
    :param objective: an objective name or instance.
    :param dict kwargs: keyword arguments of :func:`~pyro_lvm.objectives.get_objective`
        (``num_particles`` is the ``K`` of the table).
    :param model: a model to use instead of the comparison's (e.g. an enumeration model).
    :param guide: likewise, a guide (e.g. the prior, for naive Monte Carlo).
    :param int warmup: loss evaluations before measuring (running-average baselines settle).
    :param callable prepare: called with the built objective before the warm-up (e.g. to switch
        a model's baseline or fit a baseline network).
    :param str family: the line it belongs to in plots against ``K`` (default: the objective's
        name and its options other than ``num_particles``).
    """

    label: str
    objective: object
    kwargs: dict = field(default_factory=dict)
    model: object = None
    guide: object = None
    warmup: int = 0
    prepare: object = None
    family: str = None

    @property
    def estimator(self):
        """The family name: the plots draw one line per family."""
        if self.family:
            return self.family
        options = " ".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()) if k != "num_particles")
        name = self.objective if isinstance(self.objective, str) else type(self.objective).__name__
        return f"{name} {options}".strip()


def as_spec(spec):
    """An :class:`EstimatorSpec` from a spec or a tuple ``(label, objective[, kwargs])``."""
    if isinstance(spec, EstimatorSpec):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) in (2, 3):
        return EstimatorSpec(spec[0], spec[1], dict(spec[2]) if len(spec) == 3 else {})
    raise TypeError(f"an estimator spec is an EstimatorSpec or (label, objective[, kwargs]), got {spec!r}")


def build_objective(spec):
    """``(objective, None)``, or ``(None, note)`` when the objective refuses the options."""
    kwargs = dict(spec.kwargs)
    try:
        return get_objective(spec.objective, **kwargs), None
    except (TypeError, ValueError) as e:
        return None, f"skipped, not offered here ({type(e).__name__}: {e})"


def has_discrete_latents(guide, x):
    """Whether the guide samples a site without a reparameterised sampler."""
    with poutine.block(), torch.no_grad(), torch.random.fork_rng(devices=[]):
        trace = poutine.trace(guide).get_trace(x)
    return any(not getattr(site["fn"], "has_rsample", False) for _, site in sample_sites(trace))


def standard_specs(ks=(1, 10, 100), alphas=(0.5,), discrete=False, gradients=("dreg", "stl"), enumeration=None):
    """The usual comparison: the ELBO family at each ``K``.

    Reparameterised latents: ``elbo``, ``meanfield``, ``iwae`` and ``renyi`` (each ``alpha``) at
    every ``K``, ``iwae`` with each ``gradient=`` estimator (DReG, Tucker et al. 2019; STL,
    Roeder et al. 2017) and ``elbo`` with ``gradient="stl"``; rows the objectives do not offer
    are skipped with a note. Discrete latents: ``elbo`` (REINFORCE), ``tracegraph`` (baselines
    the guide asks for) and ``iwae`` (VIMCO; from ``K = 2``, since at ``K = 1`` it is the ELBO), plus
    ``enumeration``.

    :param enumeration: ``(model, guide)`` with every discrete site enumerated, e.g.
        ``(m.enum_model, m.enum_guide)`` of :class:`~pyro_lvm.models.BernoulliLatentModel`:
        adds one row of ``pyro.infer.TraceEnum_ELBO``, the exact ELBO and its exact gradient.
    :returns: a list of :class:`EstimatorSpec`.
    """
    specs = []
    names = ("elbo", "tracegraph") if discrete else ("elbo", "meanfield")
    for k in ks:
        specs += [EstimatorSpec(f"{name} K={k}", name, {"num_particles": k}) for name in names]
        if not discrete or k >= 2:
            specs.append(EstimatorSpec(f"iwae K={k}", "iwae", {"num_particles": k}))
        if not discrete:
            specs += [EstimatorSpec(f"renyi alpha={a} K={k}", "renyi", {"num_particles": k, "alpha": a})
                      for a in alphas]
            specs += [EstimatorSpec(f"iwae {g} K={k}", "iwae", {"num_particles": k, "gradient": g})
                      for g in gradients]
            if "stl" in gradients:
                specs.append(EstimatorSpec(f"elbo stl K={k}", "elbo", {"num_particles": k, "gradient": "stl"}))
    if enumeration is not None:
        from pyro.infer import TraceEnum_ELBO

        specs.append(EstimatorSpec("enumerated (TraceEnum_ELBO)", TraceEnum_ELBO(max_plate_nesting=1),
                                   model=enumeration[0], guide=enumeration[1], family="enumerated"))
    return specs
