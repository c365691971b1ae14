"""Shared machinery of the objectives: particles, traces and per-site log-densities.

Every objective draws ``num_particles`` samples from the guide (vectorised over a particle
plate by default), replays the model against them, and reduces each site's log-density to a
*log-weight* tensor :math:`\\log w = \\log p(x, z) - \\log q(z|x)` laid out as
``(num_particles, *common_plates)``: plates that every site shares (usually the data plate)
are kept, so bounds such as IWAE are formed per datum. Subclasses add only their own math.
"""
import math

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.util import check_model_guide_match

from pyro_lvm.errors import NonFiniteLossError

PARTICLE_PLATE = "num_particles_vectorized"


def sample_sites(trace):
    """``(name, site)`` of the sample sites of a trace, skipping plates' subsample sites."""
    return [(name, site) for name, site in trace.nodes.items()
            if site["type"] == "sample" and type(site["fn"]).__name__ != "_Subsample"]


def _frames(site):
    return {f for f in site["cond_indep_stack"] if f.vectorized}


def _reparameterized(site):
    return getattr(site["fn"], "has_rsample", False)


def sum_except(tensor, keep_dims):
    """Sum over every dim not in ``keep_dims`` (negative dims), keeping them as size 1."""
    dims = [d for d in range(-tensor.dim(), 0) if d not in keep_dims]
    return tensor.sum(dims, keepdim=True) if dims else tensor


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


class Objective:
    """Base class of the objectives: a (surrogate) loss for any model/guide pair.

    :param int num_particles: samples drawn from the guide per call.
    :param bool vectorize_particles: draw all particles at once inside a plate named
        ``"num_particles_vectorized"`` (needs a known or guessable ``max_plate_nesting``).
    :param int max_plate_nesting: how many plates the model nests; guessed on the first call.
    """

    def __init__(self, num_particles=1, vectorize_particles=True, max_plate_nesting=None):
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        self.num_particles = int(num_particles)
        self.vectorize_particles = vectorize_particles
        self.max_plate_nesting = max_plate_nesting

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
        if not torch.isfinite(loss.detach()):
            self._raise_nonfinite(loss, traces)
        return loss

    __call__ = differentiable_loss

    @torch.no_grad()
    def loss(self, model, guide, *args, **kwargs):
        """The loss estimate as a float, without gradients."""
        return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def log_weights(self, model, guide, *args, **kwargs):
        """``log p(x, z_k) - log q(z_k | x)`` of shape ``(num_particles, *common_plates)``."""
        return self._log_weights(self._traces(model, guide, args, kwargs))

    def traces(self, model, guide, *args, **kwargs):
        """The ``(model_trace, guide_trace)`` pairs of one call, each site with its ``log_prob``."""
        return self._traces(model, guide, args, kwargs)

    # ---- to be provided by subclasses -------------------------------------------------
    def _loss(self, traces):
        raise NotImplementedError

    # ---- shared machinery -------------------------------------------------------------
    @property
    def _vectorized(self):
        return self.vectorize_particles and self.num_particles > 1

    def _guess_max_plate_nesting(self, model, guide, args, kwargs):
        """Trace once (without touching the caller's random stream) and count nested plates."""
        with poutine.block(), torch.no_grad(), torch.random.fork_rng(devices=[]):
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        depth = 0
        for trace in (model_trace, guide_trace):
            for _, site in sample_sites(trace):
                depth = max(depth, len(site["fn"].batch_shape), *(-f.dim for f in _frames(site) if f.dim is not None))
        self.max_plate_nesting = depth

    def _traces(self, model, guide, args, kwargs):
        """One ``(model_trace, guide_trace)`` pair per particle, or one vectorised pair."""
        if self._vectorized:
            if self.max_plate_nesting is None:
                self._guess_max_plate_nesting(model, guide, args, kwargs)
            plate = pyro.plate(PARTICLE_PLATE, self.num_particles, dim=-self.max_plate_nesting - 1)
            return [self._trace_pair(plate(model), plate(guide), args, kwargs)]
        return [self._trace_pair(model, guide, args, kwargs) for _ in range(self.num_particles)]

    def _trace_pair(self, model, guide, args, kwargs):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        if is_validation_enabled():
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting or math.inf)
        for trace in (model_trace, guide_trace):
            for _, site in sample_sites(trace):
                raw = site["fn"].log_prob(site["value"])
                site["log_prob"] = scale_and_mask(raw, site["scale"], site["mask"])
                if trace is guide_trace and not _reparameterized(site):
                    # score-function factor: masked but not scaled (the cost it multiplies is scaled)
                    site["score_log_prob"] = scale_and_mask(raw, 1.0, site["mask"])
        return model_trace, guide_trace

    def _keep_dims(self, model_trace):
        """Dims of the particle plate and of the plates shared by every model site."""
        sites = [s for _, s in sample_sites(model_trace)]
        common = set.intersection(*(_frames(s) for s in sites)) if sites else set()
        return {f.dim for f in common if f.dim is not None}

    def _log_weights(self, traces, detach_score_sites=False):
        """Per-particle log-weights; particles stacked on dim 0 when not vectorised.

        :param bool detach_score_sites: drop the pathwise gradient of ``log q`` at
            non-reparameterised guide sites (it has zero mean under the ELBO; the score-function
            term carries their gradient).
        """
        weights = []
        for model_trace, guide_trace in traces:
            keep = self._keep_dims(model_trace)
            log_w = 0.0
            for sign, trace in ((1.0, model_trace), (-1.0, guide_trace)):
                for _, site in sample_sites(trace):
                    log_prob = site["log_prob"]
                    if detach_score_sites and "score_log_prob" in site:
                        log_prob = log_prob.detach()
                    if not is_identically_zero(log_prob):
                        log_w = log_w + sign * sum_except(log_prob, keep)
            weights.append(torch.as_tensor(log_w))
        return weights[0] if self._vectorized else torch.stack(weights)

    def _particle_dim(self, log_w):
        """Where the particles lie in :meth:`_log_weights`'s output."""
        return log_w.dim() - self.max_plate_nesting - 1 if self._vectorized else 0

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
        """Guide sites without a reparameterised sampler (they need score-function terms)."""
        return [site for _, site in sample_sites(guide_trace) if "score_log_prob" in site]

    def state_dict(self):
        """Estimator state that a resumed run must restore (e.g. running baselines); none here."""
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{type(self).__name__} has no state to load, got keys {sorted(state)}")
