r"""The Pareto k-hat diagnostic of importance weights (PSIS).

The importance-sampled :math:`\log \hat p(x)` and its delta-method standard error assume that
the weights :math:`w_k = p(x, z_k) / q(z_k|x)` have a finite variance. A guide narrower than the
posterior gives weights whose right tail is Pareto-like, :math:`P(w > t) \sim t^{-1/k}`: the
variance is infinite for :math:`k \ge 1/2`, the mean for :math:`k \ge 1`, and the standard error
computed from the draws is then far too small. Pareto-smoothed importance sampling [1] fits a
generalised Pareto distribution to the :math:`M = \lceil \min(S/5,\, 3\sqrt S) \rceil` largest of
the :math:`S` weights ([1, sec. 3]; the empirical-Bayes fit of Zhang & Stephens 2009, with a
weak prior towards :math:`k = 1/2`) and reports its shape :math:`\hat k`. Read as in [1, sec. 3]
and, for variational guides, [2, sec. 3]:

* :math:`\hat k < 0.5`: finite variance; the central limit theorem and the standard error hold;
* :math:`0.5 \le \hat k \le 0.7`: infinite variance, but the estimate converges usefully;
* :math:`\hat k > 0.7` (:data:`KHAT_THRESHOLD`): unreliable -- the estimate and its standard
  error cannot be trusted at any practical number of samples. (With :math:`S` draws [1] lowers
  the threshold to :math:`\min(1 - 1/\log_{10} S,\, 0.7)`, i.e. below 0.7 for :math:`S < 2000`.)

The fit is ArviZ's ``psislw`` [3], applied per datum. Two cases it cannot fit are named here
instead of reported as :math:`\hat k = \infty` (which would flag them): weights that are all
equal, within :data:`EQUAL_WITHIN` nats of rounding (the guide is the posterior:
:math:`\hat k = -\infty`, no tail at all), and a tail of fewer
than five draws above the cutoff -- fewer than 21 draws, or ties among the weights of a discrete
latent (:math:`\hat k` is NaN: not estimated).

**References**

1. A. Vehtari, D. Simpson, A. Gelman, Y. Yao, J. Gabry, "Pareto smoothed importance sampling",
   JMLR 25(72), 2024 (arXiv:1507.02646, 2015).
2. Y. Yao, A. Vehtari, D. Simpson, A. Gelman, "Yes, but did it work?: Evaluating variational
   inference", ICML 2018.
3. ArviZ, ``arviz.psislw``.
"""
import math
import warnings

import numpy as np
import torch

#: data whose :math:`\hat k` exceeds this are unreliable [1, sec. 3]
KHAT_THRESHOLD = 0.7
#: the fewest draws whose tail ArviZ fits (``ceil(S / 5) >= 5``)
MIN_DRAWS = 21
#: log-weights that differ by less than this (rounding) count as equal
EQUAL_WITHIN = 1e-6


def _psislw():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
        from arviz import psislw
    return psislw


def pareto_khat(log_weights, dim=0):
    """:math:`\\hat k` of the importance weights along ``dim``, one per remaining index.

    :param torch.Tensor log_weights: e.g. ``(S, N)``: ``S`` draws for each of ``N`` data.
    :param int dim: the draws' dimension.
    :returns: float64 tensor of the other dimensions' shape; ``-inf`` where all weights are
        equal, NaN where too few draws lie in the tail to fit it (see the module docstring).
    """
    log_w = torch.as_tensor(log_weights).detach().movedim(dim, -1).double().cpu()
    shape, draws = log_w.shape[:-1], log_w.shape[-1]
    flat = log_w.reshape(-1, draws)
    khat = torch.full((flat.shape[0],), math.nan, dtype=torch.float64)
    if draws < MIN_DRAWS or flat.shape[0] == 0:
        return khat.reshape(shape)
    top = flat.max(-1).values
    constant = (top - flat.min(-1).values <= EQUAL_WITHIN) & torch.isfinite(top)
    fit = torch.isfinite(top) & ~constant
    if fit.any():
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            _, k = _psislw()(np.ascontiguousarray(flat[fit].numpy()))
        k = torch.as_tensor(np.atleast_1d(k), dtype=torch.float64)
        khat[fit] = torch.where(torch.isinf(k), torch.full_like(k, math.nan), k)  # inf: the tail was too short
    khat[constant] = -math.inf
    return khat.reshape(shape)


def khat_summary(khat, threshold=KHAT_THRESHOLD):
    """``khat_max``, ``khat_mean`` (over the finite values), ``unreliable`` (count above
    ``threshold``) and ``khat_unknown`` (count not estimated) of per-datum :math:`\\hat k`."""
    khat = torch.as_tensor(khat, dtype=torch.float64).flatten()
    known = khat[~torch.isnan(khat)]
    finite = khat[torch.isfinite(khat)]
    return {"khat_max": known.max().item() if len(known) else math.nan,
            "khat_mean": finite.mean().item() if len(finite) else math.nan,
            "unreliable": int((khat > threshold).sum()),
            "khat_unknown": int(torch.isnan(khat).sum())}
