r"""The estimator harness: many estimators of one model/guide pair, side by side, in one table.

For each :class:`~pyro_lvm.evaluate.specs.EstimatorSpec` (an objective by name or instance,
with its options), :func:`compare_estimators` draws the estimator ``repeats`` times on the same
data, each spec from the same seed (common random numbers), and reports

* the **bound** per datum, :math:`-\text{loss}/N`, averaged over the repeats, with its standard
  error :math:`\hat\sigma/\sqrt R`; the exact :math:`\log p(x)` and the **gap**
  :math:`\log p(x) - \text{bound}` where the model has one (``exact_log_prob``, or a model
  exposing ``exact_log_prob``, ``log_prob`` or ``log_likelihood``);
* the Pareto :math:`\hat k` of the importance weights at that ``K`` for importance-weighted
  bounds (:mod:`pyro_lvm.evaluate.psis`): above 0.7 their values and errors are unreliable;
* the **gradient variance** (trace of the covariance), its mean's squared norm and the
  **SNR** per parameter group (:mod:`pyro_lvm.evaluate.gradients`; Rainforth et al. 2018);
* the **wall time per draw** (loss and gradient) and the **memory** autograd keeps for the
  backward pass (:data:`~pyro_lvm.evaluate.estimator_table.MEMORY_MEASURE`).

With ``gradients=False`` only values are drawn; an importance-weighted bound (``iwae``) is then
drawn through :func:`~pyro_lvm.evaluate.log_likelihood`, in chunks, so that ``K = 10^4`` fits
in memory, and with one repeat its standard error is the delta-method one.

An estimator that does not apply (an option the objective does not take, score-function
gradients a bound does not offer) becomes a row with a note rather than an error.
"""
import math

import torch

from pyro_lvm.evaluate.estimator_table import EstimatorTable
from pyro_lvm.evaluate.gradients import (draw_gradient, draw_loss, gradient_statistics, parameter_groups,
                                         saved_tensor_memory, timed_draws)
from pyro_lvm.evaluate.loglik import log_likelihood
from pyro_lvm.evaluate.psis import khat_summary
from pyro_lvm.evaluate.specs import as_spec, build_objective
from pyro_lvm.objectives import PyroELBO, RenyiBound

#: methods of a model's owner that give the exact log p(x) per datum, in the order tried
EXACT_METHODS = ("exact_log_prob", "log_prob", "log_likelihood")


def exact_log_prob_of(model, data):
    """The exact :math:`\\log p(x)` per datum from the model's owner, or ``None`` if it has none."""
    owner = getattr(model, "__self__", model)
    for name in EXACT_METHODS:
        method = getattr(owner, name, None)
        if not callable(method):
            continue
        try:
            with torch.no_grad():
                values = method(data)
        except (TypeError, ValueError, NotImplementedError):
            continue
        if torch.is_tensor(values) and values.shape == (len(data),):
            return values
    return None


def _exact_mean(model, data, exact_log_prob):
    if exact_log_prob is False:
        return None
    if exact_log_prob is None:
        values = exact_log_prob_of(model, data)
    elif callable(exact_log_prob):
        with torch.no_grad():
            values = exact_log_prob(data)
    else:
        return float(exact_log_prob)
    return None if values is None else values.double().mean().item()


def _weighted(objective):
    """Whether the bound is formed from importance weights (its k-hat is worth reporting)."""
    if isinstance(objective, PyroELBO):
        from pyro.infer import RenyiELBO

        return isinstance(objective.elbo, RenyiELBO)
    return isinstance(objective, RenyiBound)


def _khat(model, guide, data, k, seed):
    try:
        ll = log_likelihood(model, guide, data, num_samples=k, batch_size=len(data), seed=seed, progress=False)
    except ValueError:  # sites outside the data plate: no per-datum weights
        return {}
    return khat_summary(ll.khat)


class _Runner:
    """Draws one spec's row; holds what every row shares."""

    def __init__(self, model, guide, data, repeats, exact, groups, gradients, seed, errors, progress):
        self.model, self.guide, self.data = model, guide, data
        self.repeats, self.exact, self.groups = repeats, exact, groups
        self.gradients, self.seed, self.errors, self.progress = gradients, seed, errors, progress
        self.params = [p for ps in groups.values() for p in ps]

    def row(self, spec):
        row = {"label": spec.label, "estimator": spec.estimator, "K": spec.kwargs.get("num_particles"),
               "repeats": self.repeats, "value": math.nan, "value_se": math.nan, "exact": self.exact,
               "gap": math.nan, "khat_max": math.nan, "unreliable": None}
        for g in self.groups:
            row.update({f"{g}_variance": math.nan, f"{g}_mean_sq": math.nan, f"{g}_snr": math.nan})
        row.update({"ms_per_draw": math.nan, "memory_mb": math.nan, "note": ""})
        objective, note = build_objective(spec)
        if objective is None:
            row["note"] = note
            return row
        row["K"] = getattr(objective, "num_particles", row["K"])
        model, guide = spec.model or self.model, spec.guide or self.guide
        if spec.prepare is not None:
            spec.prepare(objective)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                for _ in range(spec.warmup):
                    self._warm(objective, model, guide)
                row.update(self._measure(objective, model, guide))
        except (ValueError, NotImplementedError, TypeError) as e:
            if self.errors == "raise":
                raise
            row["note"] = f"skipped: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            return row
        if self.exact is not None:
            row["gap"] = self.exact - row["value"]
        return row

    def _warm(self, objective, model, guide):
        """A draw with gradients on, as in training: running-average baselines move only then."""
        draw_gradient(objective, model, guide, self.data, self.params)

    def _measure(self, objective, model, guide):
        n, k = len(self.data), getattr(objective, "num_particles", 1)
        if self.gradients:
            out = self._gradient_draws(objective, model, guide)
        elif isinstance(objective, RenyiBound) and objective.alpha == 0:
            out = self._importance_sampled(model, guide, k)
        else:
            losses, seconds = timed_draws(lambda: draw_loss(objective, model, guide, self.data), self.repeats)
            out = {"value": -torch.tensor(losses, dtype=torch.float64) / n, "ms_per_draw": 1e3 * seconds}
        values = out.pop("value")
        out["value"] = values.mean().item()
        if "value_se" not in out:
            out["value_se"] = (values.std() / math.sqrt(len(values))).item() if len(values) > 1 else math.nan
        if "khat_max" not in out and _weighted(objective):
            out.update(_khat(model, guide, self.data, k, self.seed))
        return out

    def _gradient_draws(self, objective, model, guide):
        def draw():
            return draw_gradient(objective, model, guide, self.data, self.params)

        with saved_tensor_memory(exclude=[*self.params, self.data]) as memory:
            draw()  # untimed: tracing set-up, and any error, surface here
        draws, seconds = timed_draws(draw, self.repeats)
        losses = torch.tensor([value for value, _ in draws], dtype=torch.float64)
        grads = torch.stack([grad for _, grad in draws])
        out = {"value": -losses / len(self.data), "ms_per_draw": 1e3 * seconds,
               "memory_mb": memory.get("cuda_peak_bytes", memory["bytes"]) / 2 ** 20}
        start = 0
        for name, params in self.groups.items():
            size = sum(p.numel() for p in params)
            for stat, value in gradient_statistics(grads[:, start:start + size]).items():
                out[f"{name}_{stat}"] = value
            start += size
        return out

    def _importance_sampled(self, model, guide, k):
        estimates = [log_likelihood(model, guide, self.data, num_samples=k, batch_size=len(self.data),
                                    seed=self.seed + r, progress=self.progress) for r in range(self.repeats)]
        out = {"value": torch.tensor([ll.mean for ll in estimates], dtype=torch.float64)}
        if len(estimates) == 1:
            out["value_se"] = estimates[0].se_mc  # the delta method's, from the K weights
        out.update(khat_summary(estimates[0].khat))
        return out


def compare_estimators(model, guide, data, specs, repeats=20, exact_log_prob=None, groups=None, gradients=True,
                       seed=0, errors="note", progress=False):
    """Bound, gap, k-hat, gradient variance and SNR, time and memory of each estimator, as one table.

    :param model: a Pyro model taking the batch ``data``.
    :param guide: its guide.
    :param torch.Tensor data: one batch, evaluated whole.
    :param specs: :class:`~pyro_lvm.evaluate.specs.EstimatorSpec` or ``(label, objective[, kwargs])``
        each; e.g. :func:`~pyro_lvm.evaluate.specs.standard_specs`.
    :param int repeats: draws of each estimator, ``R`` (at least 2 for variances).
    :param exact_log_prob: a callable giving the exact :math:`\\log p(x)` per datum, or the exact
        mean as a number; default: the model's own (see :func:`exact_log_prob_of`), if any;
        ``False``: none.
    :param dict groups: ``name -> module or parameters`` whose gradients are compared; default
        by use, ``encoder``/``decoder``/``other`` (:func:`~pyro_lvm.evaluate.gradients.parameter_groups`).
    :param bool gradients: draw gradients (else values only; cheaper, and memory-bounded for ``iwae``).
    :param int seed: every spec starts from this seed (the caller's random stream is left alone).
    :param str errors: ``"note"`` turns an estimator that does not apply into a row with a note;
        ``"raise"`` raises instead.
    :returns: :class:`~pyro_lvm.evaluate.estimator_table.EstimatorTable`.
    """
    if errors not in ("note", "raise"):
        raise ValueError(f"errors must be 'note' or 'raise', got {errors!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    specs = [as_spec(s) for s in specs]
    exact = _exact_mean(model, data, exact_log_prob)
    params = parameter_groups(model, guide, data, groups) if gradients else {}
    runner = _Runner(model, guide, data, repeats, exact, params, gradients, seed, errors, progress)
    return EstimatorTable([runner.row(spec) for spec in specs], list(params), exact, len(data))
