"""The ELBO family by name; every objective works with every model/guide pair.

==============  =====================================================================
name            estimator
==============  =====================================================================
``elbo``        :class:`TraceELBO`, Monte Carlo ELBO (REINFORCE terms for discrete sites)
``tracegraph``  :class:`TraceGraphELBO`, the same with baselines for discrete sites
``meanfield``   :class:`MeanFieldELBO`, analytic KL where registered
``iwae``        :class:`IWAE`, importance-weighted bound with ``K`` particles (VIMCO if discrete)
``renyi``       :class:`RenyiBound`, variational Renyi bound of any ``alpha != 1``
==============  =====================================================================

The bounds are formed per datum, with sites outside the data plate as ELBO terms (the nested
bound) and a subsampled plate's scale applied after the log-sum-exp. Gradient estimators are
chosen with ``gradient=``: ``"standard"``, ``"stl"`` (sticking the landing) or ``"dreg"``
(doubly reparameterised, for the bounds); see :mod:`pyro_lvm.objectives.base`.

The ELBO objectives (``elbo``, ``meanfield``, ``tracegraph``) take a KL weight ``beta=`` (a
number, or a schedule over training steps: :class:`LinearWarmup`, :class:`Cyclical`) and
``free_bits=``, e.g. ``get_objective("meanfield", beta=LinearWarmup(steps=5000))``; see
:mod:`pyro_lvm.objectives.kl_control` and :mod:`pyro_lvm.objectives.kl_schedules`.
"""
from pyro_lvm.objectives.base import DatumWeights, Objective
from pyro_lvm.objectives.kl_control import KLControl
from pyro_lvm.objectives.kl_schedules import Constant, Cyclical, LinearWarmup
from pyro_lvm.objectives.meanfield_elbo import MeanFieldELBO
from pyro_lvm.objectives.registry import OBJECTIVES, PyroELBO, get_objective
from pyro_lvm.objectives.renyi_elbo import IWAE, RenyiBound
from pyro_lvm.objectives.trace_elbo import TraceELBO
from pyro_lvm.objectives.tracegraph_elbo import TraceGraphELBO

__all__ = ["Constant", "Cyclical", "DatumWeights", "IWAE", "KLControl", "LinearWarmup", "MeanFieldELBO", "OBJECTIVES",
           "Objective", "PyroELBO", "RenyiBound", "TraceELBO", "TraceGraphELBO", "get_objective"]
