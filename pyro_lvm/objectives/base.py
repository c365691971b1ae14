r"""Shared machinery of the objectives: particles, traces, per-site log-densities and plates.

Every objective draws ``num_particles`` samples from the guide (vectorised over a particle
plate by default), replays the model against them, and scores each sample site as Pyro does:
``log_prob`` scaled and masked, and at guide sites the ``score_parts`` of the distribution
(``log_prob``, the score-function factor, which is neither scaled nor masked, and the entropy
term that carries the pathwise gradient), so that a rejection sampler's own score-function part
is kept. Two layouts of the log-weights :math:`\log w = \log p(x, z) - \log q(z|x)` serve the
estimators:

* :class:`SiteCosts`: the detached terms grouped by the plates they live in. A score-function
  term multiplies the cost summed to *its own site's* plates, which keeps it unbiased and drops
  the terms that are independent of it (Ranganath et al. 2014, sec. 3; Pyro's ``Trace_ELBO``).
* :class:`DatumWeights`: the per-datum layout of importance-weighted bounds. The sites whose
  plates meet the plates shared by every observation (*local* sites, ``z_i`` and ``x_i``) are
  summed per datum, unscaled; the other sites (*global* sites ``u``, outside the data plate) are
  kept apart, scaled, as ELBO terms. The bounds then take the nested form

  .. math:: \mathcal L = \mathbb E_{q(u)}\Big[\log \frac{p(u)}{q(u)}
            + \sum_i s_i\, \mathcal L_K\big(w_{i1}(u), \dots, w_{iK}(u)\big)\Big]
            \le \log p(x), \qquad w_{ik}(u) = \frac{p(x_i, z_{ik} \mid u)}{q(z_{ik} \mid x_i, u)},

  where :math:`s_i` is the datum's scale (``N/B`` in a subsampled data plate), applied *after*
  the log-sum-exp, and :math:`\mathcal L_K` is a per-datum bound such as IWAE's. Each draw of
  ``u`` is shared by the ``K`` local samples (the guide is re-run with ``u`` pinned).

Gradient estimators, chosen with ``gradient=`` on any objective that offers them:

``"standard"``
    pathwise for reparameterised sites, score function (REINFORCE) for the others.
``"stl"``
    "sticking the landing" (Roeder et al. 2017, eq. 6 and sec. 4): the pathwise gradient with the
    score term :math:`\partial_\phi \log q_\phi(z)|_z` removed. The guide is re-run against its own
    detached samples; that evaluation of :math:`\log q` depends on :math:`\phi` only through
    the parameters, and :math:`\log q - (\log q_{\bar z} - \mathrm{sg}(\log q_{\bar z}))` has the
    value of :math:`\log q` and the path-only gradient, also for hierarchical guides.
``"dreg"``
    doubly reparameterised gradients (Tucker et al. 2018, eq. 7-8) for importance-weighted bounds:
    the guide is re-run on proxies of its samples whose gradient is rescaled per particle (see
    :class:`~pyro_lvm.objectives.RenyiBound`).

References:

1. R. Ranganath, S. Gerrish, D. Blei, "Black Box Variational Inference", AISTATS 2014.
2. G. Roeder, Y. Wu, D. Duvenaud, "Sticking the Landing: Simple, Lower-Variance Gradient
   Estimators for Variational Inference", NeurIPS 2017.
3. G. Tucker, D. Lawson, S. Gu, C. Maddison, "Doubly Reparameterized Gradient Estimators for
   Monte Carlo Objectives", ICLR 2019 (arXiv:1810.04152, 2018).
4. T. Geffner, J. Domke, "Variational Inference with Locally Enhanced Bounds for Hierarchical
   Models", ICML 2022 (the nested bound with global and local latents).
"""
import math
import warnings
from dataclasses import dataclass
from typing import Union

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.score_parts import ScoreParts
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.util import MultiFrameTensor, is_validation_enabled
from pyro.poutine.trace_struct import Trace
from pyro.util import check_model_guide_match, check_site_shape

from pyro_lvm.errors import NonFiniteLossError

PARTICLE_PLATE = "num_particles_vectorized"
GRADIENTS = ("standard", "stl", "dreg")


def sample_sites(trace):
    """``(name, site)`` of the sample sites of a trace, skipping plates' subsample sites."""
    return [(name, site) for name, site in trace.nodes.items()
            if site["type"] == "sample" and type(site["fn"]).__name__ != "_Subsample"]


def _frames(site):
    return {f for f in site["cond_indep_stack"] if f.vectorized}


def _data_frames(site):
    return {f for f in _frames(site) if f.name != PARTICLE_PLATE}


def sum_except(tensor, keep_dims):
    """Sum over every dim not in ``keep_dims`` (negative dims), keeping them as size 1."""
    dims = [d for d in range(-tensor.dim(), 0) if d not in keep_dims]
    return tensor.sum(dims, keepdim=True) if dims else tensor


def pathwise(log_prob, entropy_term):
    """``log q`` in value, with only the gradient of the entropy term (``score_parts``).

    Pyro's entropy term is ``log q`` itself for reparameterised sites and zero for the others,
    whose gradient comes from the score-function factor instead.
    """
    if entropy_term is log_prob:
        return log_prob
    if is_identically_zero(entropy_term):
        return log_prob.detach()
    return entropy_term + (log_prob - entropy_term).detach()


def _scale_parts(parts, scale, mask):
    """``ScoreParts.scale_and_mask`` that scales a shared log_prob/entropy tensor once."""
    log_prob = scale_and_mask(parts.log_prob, scale, mask)
    entropy = log_prob if parts.entropy_term is parts.log_prob else scale_and_mask(parts.entropy_term, scale, mask)
    return ScoreParts(log_prob, parts.score_function, entropy)


def _first_nonfinite(site):
    """Name what is non-finite at a site: its value, its log-density, or its distribution."""
    value = site["value"]
    if torch.is_tensor(value) and not torch.isfinite(value).all():
        return "value"
    fn = site["fn"]
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    for attr in ("loc", "scale", "logits", "probs", "covariance_matrix", "scale_tril"):
        param = fn.__dict__.get(attr)
        if torch.is_tensor(param) and not torch.isfinite(param).all():
            return f"distribution parameter {attr!r}"
    return "log-density"


def _replayed(fn, trace, values, args, kwargs):
    """Trace ``fn`` with the latent sites of ``trace`` (subsample indices too) set to ``values``."""
    pinned = {name: (values.get(name, site["value"]), site["infer"]) for name, site in trace.nodes.items()
              if site["type"] == "sample" and not site["is_observed"]}
    return poutine.trace(poutine.replay(fn, trace=_values_trace(pinned))).get_trace(*args, **kwargs)


class SiteCosts(MultiFrameTensor):
    """Detached log-weight terms keyed by their plates; :meth:`sum_to` a site's own plates.

    Latent sites contribute :math:`\\log p - \\log q` in the model's plates, observed sites
    :math:`\\log p`, guide-only sites :math:`-\\log q`; all scaled as in the loss.
    """

    @classmethod
    def of(cls, model_trace, guide_trace, names=None):
        costs = cls()
        for name, site in sample_sites(model_trace):
            if names is None or name in names:
                term = site["log_prob"]
                if not site["is_observed"]:
                    term = term - guide_trace.nodes[name]["log_prob"]
                costs.add((site["cond_indep_stack"], term.detach()))
        for name, site in sample_sites(guide_trace):
            if name not in model_trace.nodes and (names is None or name in names):
                costs.add((site["cond_indep_stack"], -site["log_prob"].detach()))
        return costs


@dataclass
class DatumWeights:
    r"""Log-weights laid out per datum (see the module docstring), as the bounds use them.

    :ivar torch.Tensor local: :math:`\log p(x_i, z_{ik} | u) - \log q(z_{ik} | x_i, u)` of the
        local sites, summed per datum and unscaled (masks applied), particles on
        :attr:`particle_dim`: shape ``(K, *data_plates)``, plates of size 1 where a datum
        spans them. Without global sites this is the ordinary per-datum log-weight.
    :ivar global_: :math:`\log p(u_k) - \log q(u_k)` of the global sites, scaled, summed per
        particle (size 1 outside :attr:`particle_dim`), or ``0.0`` without global sites.
    :ivar scale: the local sites' common scale :math:`s_i` (a number or a tensor that
        broadcasts against one particle of :attr:`local`).
    :ivar int particle_dim: where the particles lie (``0``).
    :ivar frozenset global_names: the global sites (outside the data plates).
    :ivar set keep_dims: the datum plates' dims (the particle plate's too when vectorised).
    :ivar bool draws_globals: ``True`` when there are global but no local latent sites: every
        particle is then its own draw of ``u`` and :attr:`local` holds only observations.
        Otherwise one draw of ``u`` is shared by all ``K`` particles.
    """

    local: torch.Tensor
    global_: Union[torch.Tensor, float]
    scale: Union[torch.Tensor, float]
    particle_dim: int
    global_names: frozenset = frozenset()
    keep_dims: frozenset = frozenset()
    draws_globals: bool = False


@dataclass(frozen=True)
class _Split:
    """Which sites are global, and the plates the local sites share (the datum plates)."""

    global_names: frozenset
    keep: frozenset
    local_latents: bool
    #: the observations share plates, but the local sites do not: the bound is joint over them
    joint_over_data: bool = False

    @property
    def keep_dims(self):
        return {f.dim for f in self.keep if f.dim is not None}

    @property
    def pins_globals(self):
        return self.local_latents and bool(self.global_names)


class Objective:
    """Base class of the objectives: a (surrogate) loss for any model/guide pair.

    :param int num_particles: samples drawn from the guide per call.
    :param bool vectorize_particles: draw all particles at once inside a plate named
        ``"num_particles_vectorized"`` (needs a known or guessable ``max_plate_nesting``).
    :param int max_plate_nesting: how many plates the model nests; guessed on the first call.
    :param str gradient: the gradient estimator, one of :attr:`gradients`: ``"standard"``
        (default), ``"stl"`` or ``"dreg"`` (see the module docstring).
    """

    #: the gradient estimators this objective offers
    gradients = ("standard",)
    #: whether one draw of the global sites is shared by the particles (importance-weighted bounds)
    shares_global_draws = False

    def __init__(self, num_particles=1, vectorize_particles=True, max_plate_nesting=None, gradient="standard"):
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        if gradient not in self.gradients:
            hint = {"dreg": " DReG is for importance-weighted bounds (objectives 'iwae', 'renyi'); for the ELBO "
                            "it is STL (gradient='stl').",
                    "stl": " The analytic KL has no score term to drop."}.get(gradient, "")
            known = f"{sorted(self.gradients)}" if gradient in GRADIENTS else f"one of {list(GRADIENTS)}"
            raise ValueError(f"{type(self).__name__} offers gradient in {known}, got {gradient!r}.{hint}")
        self.num_particles = int(num_particles)
        self.vectorize_particles = vectorize_particles
        self.max_plate_nesting = max_plate_nesting
        self.gradient = gradient

    # ---- public API -------------------------------------------------------------------
    def differentiable_loss(self, model, guide, *args, **kwargs):
        """A scalar whose value estimates the loss and whose gradient is the estimator's.

        :raises NonFiniteLossError: naming the sites whose log-density is not finite.
        """
        try:
            traces = self._traces(model, guide, args, kwargs)
        except ValueError as e:
            if "invalid values" in str(e):  # a validated distribution got NaN parameters
                self._diagnose_invalid(model, guide, args, kwargs, e)
            raise
        loss = self._loss(traces)
        if not torch.is_tensor(loss):  # nothing sampled at all
            return torch.tensor(float(loss))
        if not torch.isfinite(loss.detach()):
            self._raise_nonfinite(loss, traces)
        return loss

    __call__ = differentiable_loss

    @torch.no_grad()
    def loss(self, model, guide, *args, **kwargs):
        """The loss estimate as a float, without gradients."""
        return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def log_weights(self, model, guide, *args, **kwargs):
        """Per-datum log-weights, shape ``(num_particles, *data_plates)``.

        These are what importance-weighted bounds log-sum-exp: :attr:`DatumWeights.local`,
        unscaled. With global latent sites (outside the data plate) they are conditional on one
        shared draw of them, :math:`\\log p(x_i, z_{ik} | u) - \\log q(z_{ik} | x_i, u)`, and
        :meth:`datum_weights` also returns the global term.
        """
        return self.datum_weights(model, guide, *args, **kwargs).local

    def datum_weights(self, model, guide, *args, **kwargs):
        """The :class:`DatumWeights` of one call (global sites pinned as the bounds draw them)."""
        return self._datum_weights(self._traces(model, guide, args, kwargs, pin_globals=True))

    def traces(self, model, guide, *args, **kwargs):
        """The ``(model_trace, guide_trace)`` pairs of one call, each site with its ``log_prob``."""
        return self._traces(model, guide, args, kwargs)

    # ---- to be provided by subclasses -------------------------------------------------
    def _loss(self, traces):
        raise NotImplementedError

    # ---- traces -----------------------------------------------------------------------
    @property
    def _vectorized(self):
        return self.vectorize_particles and self.num_particles > 1

    @property
    def _shape_depth(self):
        """How many batch dims sites may have (for Pyro's shape checks)."""
        if self.max_plate_nesting is None:
            return math.inf
        return self.max_plate_nesting + (1 if self._vectorized else 0)

    def _guess_max_plate_nesting(self, model, guide, args, kwargs):
        """Trace once (without touching the caller's random stream) and count nested plates."""
        with poutine.block(), torch.no_grad(), torch.random.fork_rng(devices=[]):
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        depth = 0
        for trace in (model_trace, guide_trace):
            for _, site in sample_sites(trace):
                if is_validation_enabled():  # while the check still sees every dim
                    site["log_prob"] = site["fn"].log_prob(site["value"])
                    check_site_shape(site, math.inf)
                depth = max(depth, len(site["fn"].batch_shape), *(-f.dim for f in _frames(site) if f.dim is not None))
        self.max_plate_nesting = depth

    def _traces(self, model, guide, args, kwargs, pin_globals=None):
        """One ``(model_trace, guide_trace)`` pair per particle, or one vectorised pair.

        :param bool pin_globals: draw the global latent sites once and share that draw among
            the particles (default: :attr:`shares_global_draws`); needs a re-run of the
            vectorised pair when there are both global and local latent sites.
        """
        pin = self.shares_global_draws if pin_globals is None else pin_globals
        if self._vectorized:
            if self.max_plate_nesting is None:
                self._guess_max_plate_nesting(model, guide, args, kwargs)
            plate = pyro.plate(PARTICLE_PLATE, self.num_particles, dim=-self.max_plate_nesting - 1)
            model, guide = plate(model), plate(guide)
        first = self._trace_pair(model, guide, args, kwargs)
        pinned = self._pinned_globals(first) if pin else None
        if self._vectorized:
            return [first if pinned is None else self._trace_pair(model, guide, args, kwargs, pinned)]
        return [first] + [self._trace_pair(model, guide, args, kwargs, pinned) for _ in range(self.num_particles - 1)]

    def _pinned_globals(self, pair):
        """Values of the global latent guide sites of the first particle, or ``None`` if nothing to pin."""
        model_trace, guide_trace = pair
        split = self._split(model_trace, guide_trace)
        if not split.pins_globals:
            return None
        values = {}
        for name, site in sample_sites(guide_trace):
            if name in split.global_names and not site["is_observed"]:
                value = site["value"]
                if self._vectorized:
                    dim = value.dim() - site["fn"].event_dim - self.max_plate_nesting - 1
                    value = value.narrow(dim, 0, 1).expand_as(value)
                values[name] = (value, site["infer"])
        return values or None

    def _trace_pair(self, model, guide, args, kwargs, pinned=None):
        if pinned:
            guide = poutine.replay(guide, trace=_values_trace(pinned))
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        if self.gradient != "standard" and torch.is_grad_enabled():  # they change gradients only
            guide_trace = self._path_gradient_trace(guide, guide_trace, args, kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        validate = is_validation_enabled()
        if validate:
            check_model_guide_match(model_trace, guide_trace, self._shape_depth)
            _warn_if_enumerated(guide_trace, type(self).__name__)
        for _, site in sample_sites(model_trace):
            raw = site["fn"].log_prob(site["value"])
            site["unscaled_log_prob"] = raw
            site["log_prob"] = scale_and_mask(raw, site["scale"], site["mask"])
        for _, site in sample_sites(guide_trace):
            parts = site["fn"].score_parts(site["value"])
            correction = site.get("score_correction")
            if correction is not None:  # STL/DReG: same value, gradient through the samples only
                parts = ScoreParts(parts.log_prob + correction, parts.score_function,
                                   parts.entropy_term + correction)
            site["unscaled_log_prob"] = parts.log_prob
            site["score_parts"] = _scale_parts(parts, site["scale"], site["mask"])
            site["log_prob"] = site["score_parts"].log_prob
        if validate:
            for trace in (model_trace, guide_trace):
                for _, site in sample_sites(trace):
                    check_site_shape(site, self._shape_depth)
        return model_trace, guide_trace

    def _path_gradient_trace(self, guide, guide_trace, args, kwargs):
        """Attach to each latent guide site ``sg(log q(z_bar)) - log q(z_bar)`` (STL, DReG).

        ``z_bar`` are the guide's samples, detached, and the guide is re-run against them, so
        that this evaluation of ``log q`` depends on the parameters only. For DReG the guide is
        also re-run on proxies of its samples (``value.view_as(value)``) whose gradient
        :class:`RenyiBound` rescales per particle; the model then replays the proxies.
        """
        latents = [(name, site) for name, site in sample_sites(guide_trace) if not site["is_observed"]]
        for name, site in latents:
            if not site["fn"].has_rsample:
                raise ValueError(f"gradient={self.gradient!r} needs reparameterised guide sites; site {name!r} "
                                 f"({type(site['fn']).__name__}) has no rsample. Use gradient='standard'.")
        fixed = _replayed(guide, guide_trace, {n: s["value"].detach() for n, s in latents}, args, kwargs)
        if self.gradient == "dreg":
            guide_trace = _replayed(guide, guide_trace, {n: s["value"].view_as(s["value"]) for n, s in latents},
                                    args, kwargs)
        for name, _ in latents:
            at_fixed = fixed.nodes[name]
            score = at_fixed["fn"].log_prob(at_fixed["value"])
            guide_trace.nodes[name]["score_correction"] = score.detach() - score
        return guide_trace

    # ---- layouts of the log-weights ------------------------------------------------------
    def _split(self, model_trace, guide_trace, per_datum=True):
        """Global sites: those outside every plate that all observations share (the data plates).

        A site is *local* when its plates meet the plates common to the observed sites that lie
        in any plate; the local sites' common plates are the datum plates. Without such plates
        (no observation in a plate, or observations in disjoint plates) every site is local, and
        with ``per_datum=False`` too.
        """
        sites = [(name, site) for name, site in sample_sites(model_trace)]
        sites += [(name, site) for name, site in sample_sites(guide_trace) if name not in model_trace.nodes]
        observed = [_data_frames(s) for _, s in sites if s["is_observed"] and _data_frames(s)]
        data = set.intersection(*observed) if observed and per_datum else set()
        global_names = frozenset(name for name, s in sites if data and not (_data_frames(s) & data))
        local = [s for name, s in sites if name not in global_names]
        keep = frozenset(set.intersection(*(_frames(s) for s in local))) if local else frozenset()
        local_latents = any(not s["is_observed"] for s in local)
        return _Split(global_names, keep, local_latents, bool(data) and local_latents and not (keep & data))

    def _datum_weights(self, traces, per_datum=True):
        """The :class:`DatumWeights` of a list of trace pairs (see :meth:`_split`).

        With ``per_datum=False`` every site is local and the terms are scaled (the joint
        log-weights over the plates that every site shares).
        """
        split = self._split(*traces[0], per_datum=per_datum)
        if split.joint_over_data:
            warnings.warn(f"{type(self).__name__}: the latent sites share no plate with all observations (e.g. "
                          "row and column latents of a matrix), so the bound is formed jointly over the batch, "
                          "not per datum")
        keep, particle = split.keep_dims, set()
        if self._vectorized:
            particle = {-self.max_plate_nesting - 1}
            keep = keep | particle
        local, glob = [], []
        for model_trace, guide_trace in traces:
            log_w = log_u = 0.0
            for sign, trace in ((1.0, model_trace), (-1.0, guide_trace)):
                for name, site in sample_sites(trace):
                    if name in split.global_names:  # an ELBO term: a score part's own term drops out
                        term = site["log_prob"] if sign > 0 else pathwise(site["log_prob"],
                                                                          site["score_parts"].entropy_term)
                        log_u = log_u + sign * sum_except(term, particle)
                        continue
                    term = site["log_prob"]
                    if per_datum:  # the datum's scale applies after the bound's log-sum-exp
                        term = scale_and_mask(site["unscaled_log_prob"], 1.0, site["mask"])
                    if not is_identically_zero(term):
                        log_w = log_w + sign * sum_except(term, keep)
            local.append(torch.as_tensor(log_w))
            glob.append(log_u)
        if self._vectorized:
            local, glob = local[0], glob[0]
            if local.dim() == 0:  # nothing local was sampled
                local = local.expand((self.num_particles,) + (1,) * self.max_plate_nesting)
        else:
            local = torch.stack(local)
            glob = torch.stack(glob).reshape((-1,) + (1,) * (local.dim() - 1)) if torch.is_tensor(glob[0]) else 0.0
        dim = self._particle_dim(local)
        if split.pins_globals:
            _check_shared(glob, dim, split.global_names)
        scales = [s["scale"] for t in traces[0] for n, s in sample_sites(t) if n not in split.global_names]
        return DatumWeights(local, glob, _datum_scale(scales) if per_datum else 1.0, dim, split.global_names,
                            frozenset(keep), draws_globals=bool(split.global_names) and not split.local_latents)

    def _log_weights(self, traces):
        """Joint log-weights over the plates every site shares, scaled as in the model.

        Kept for the importance-sampled log-likelihood (:mod:`pyro_lvm.evaluate.loglik`), which
        needs every site in the data plate and unscaled sites anyway.
        """
        return self._datum_weights(traces, per_datum=False).local

    def _particle_dim(self, log_w):
        """Where the particles lie in :meth:`_log_weights`'s output."""
        return log_w.dim() - self.max_plate_nesting - 1 if self._vectorized else 0

    def _pairs(self, tensor):
        """Slice a particle-laid-out tensor per trace pair (the whole tensor when vectorised)."""
        return [tensor] if self._vectorized else list(tensor.unbind(0))

    # ---- diagnostics --------------------------------------------------------------------
    def _diagnose_invalid(self, model, guide, args, kwargs, error):
        """Re-trace without validation to name the sites whose parameters are not finite."""
        with pyro.validation_enabled(False), torch.no_grad(), torch.random.fork_rng(devices=[]):
            traces = self._traces(model, guide, args, kwargs)
        culprits = self._nonfinite_sites(traces)
        if culprits:
            raise NonFiniteLossError(f"{type(self).__name__}: {self._describe(culprits)} "
                                     f"({str(error).splitlines()[0]})", [n for _, n, _ in culprits]) from error

    @staticmethod
    def _nonfinite_sites(traces):
        culprits = []
        for pair in traces:
            for role, trace in zip(("model", "guide"), pair):
                for name, site in sample_sites(trace):
                    if not torch.isfinite(site["log_prob"]).all() and (role, name) not in [c[:2] for c in culprits]:
                        culprits.append((role, name, _first_nonfinite(site)))
        return culprits

    @staticmethod
    def _describe(culprits):
        return "; ".join(f"{role} site {name!r}: non-finite {what}" for role, name, what in culprits)

    def _raise_nonfinite(self, loss, traces):
        culprits = self._nonfinite_sites(traces)
        raise NonFiniteLossError(
            f"{type(self).__name__} loss is {loss.item()} ({self._describe(culprits) or 'no single site is non-finite'})",
            sites=[name for _, name, _ in culprits])

    @staticmethod
    def _score_function_sites(guide_trace):
        """Guide sites whose distribution has a score-function part (no or partial reparameterisation)."""
        return [site for _, site in sample_sites(guide_trace)
                if not is_identically_zero(site["score_parts"].score_function)]

    def state_dict(self):
        """Estimator state that a resumed run must restore (e.g. running baselines); none here."""
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{type(self).__name__} has no state to load, got keys {sorted(state)}")


def _values_trace(values):
    """A trace that :func:`poutine.replay` reads: ``{name: (value, infer)}``."""
    trace = Trace()
    for name, (value, infer) in values.items():
        trace.add_node(name, type="sample", is_observed=False, infer=infer, value=value)
    return trace


def _warn_if_enumerated(guide_trace, objective):
    names = [name for name, site in sample_sites(guide_trace) if site["infer"].get("enumerate")]
    if names:
        warnings.warn(f"guide sites {names} are configured for enumeration (infer={{'enumerate': ...}}), which "
                      f"{objective} ignores: it samples them. To sum them out use pyro.infer.TraceEnum_ELBO.")


def _datum_scale(scales):
    """The one scale of the local sites, applied to the per-datum bounds after the log-sum-exp."""
    first = scales[0] if scales else 1.0
    for other in scales[1:]:
        if other is first:
            continue
        if torch.is_tensor(other) or torch.is_tensor(first):
            same = torch.equal(*torch.broadcast_tensors(torch.as_tensor(other), torch.as_tensor(first)))
        else:
            same = other == first
        if not same:
            raise ValueError(
                "the sites of one datum carry different scales (poutine.scale, or a subsampled plate inside the "
                f"data plate): {first} and {other}. An importance-weighted bound is scaled per datum, after its "
                "log-sum-exp, so every site of a datum needs the same scale; subsample the data plate itself, or "
                "use objective 'elbo', which scales each site")
    return first


def _check_shared(glob, dim, names):
    """With one shared draw of the global sites, their terms must not vary over the particles."""
    first = glob.narrow(dim, 0, 1)
    if not torch.allclose(glob, first.expand_as(glob), rtol=1e-6, atol=1e-6):
        raise ValueError(f"the global sites {sorted(names)} (outside the data plate) have log-densities that "
                         "depend on the data plate's latent sites; the per-datum bound needs p(u) and q(u) free of "
                         "them. Put those sites in the data plate, or use objective 'elbo'.")
