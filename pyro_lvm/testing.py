r"""Assertions for testing estimators in your own test suite, with tolerances from standard errors.

A Monte Carlo estimate is never exactly right, so a test that compares one with the truth needs
a tolerance; one taken from the estimate's standard error fails when the code is wrong and not
when the seed changes. Each helper here compares within ``z`` standard errors (default 4: a
correct estimator fails one comparison in about 16,000) and says in its message which
comparison failed, by how many standard errors, and what that suggests.

* :func:`assert_within_se` -- an estimate agrees with the exact value.
* :func:`assert_bound_sandwich` -- :math:`\mathrm{ELBO} \le \mathcal L_K^{\mathrm{IWAE}} \le
  \log p(x)` (Burda et al. 2015, theorem 1).
* :func:`assert_monotone_in_k` -- :math:`\mathcal L_K` does not decrease with ``K`` (ibid.).
* :func:`assert_unbiased_gradient` -- the mean of many gradient draws matches a reference,
  coordinate by coordinate.

Example: a test that your guide's importance-weighted bounds tighten towards the exact
:math:`\log p(x)` (here one of the package's exact cases; use your own model, guide and data)::

    from pyro_lvm.evaluate import compare_estimators
    from pyro_lvm.evaluate.exact_cases import exact_case
    from pyro_lvm.testing import assert_bound_sandwich, assert_monotone_in_k

    def test_iwae_tightens_towards_log_px():
        case = exact_case("linear-gaussian", num_data=32)
        ks = (2, 10, 100)
        specs = [("elbo", "elbo", {"num_particles": 10})]
        specs += [(f"iwae K={k}", "iwae", {"num_particles": k}) for k in ks]
        table = compare_estimators(case.model, case.guide, case.data, specs, repeats=20, gradients=False)
        rows = {row["label"]: row for row in table}
        iwae = {k: rows[f"iwae K={k}"]["value"] for k in ks}
        ses = {k: rows[f"iwae K={k}"]["value_se"] for k in ks}
        assert_monotone_in_k(iwae, ses)
        log_px = case.exact_log_prob(case.data).mean().item()
        assert_bound_sandwich(rows["elbo"]["value"], iwae, log_px, se=(rows["elbo"]["value_se"], ses))

**References**

1. Y. Burda, R. Grosse, R. Salakhutdinov, "Importance weighted autoencoders", ICLR 2016.
"""
import math
from collections.abc import Mapping

import torch

__all__ = ["assert_bound_sandwich", "assert_monotone_in_k", "assert_unbiased_gradient", "assert_within_se"]


def _by_k(values, what):
    """``[(K or index, float)]`` from a mapping ``K -> value`` (sorted by K) or a sequence."""
    items = sorted(values.items()) if isinstance(values, Mapping) else list(enumerate(values))
    if not items:
        raise ValueError(f"{what} is empty")
    return [(k, float(v)) for k, v in items]


def _matching(se, keys, what):
    """Standard errors for ``keys`` from one number, a mapping or a sequence in the same order."""
    if se is None:
        return {k: 0.0 for k in keys}
    if isinstance(se, Mapping):
        missing = [k for k in keys if k not in se]
        if missing:
            raise ValueError(f"{what}: no standard error for K = {missing}")
        return {k: float(se[k]) for k in keys}
    if isinstance(se, (int, float)):
        return {k: float(se) for k in keys}
    se = list(se)
    if len(se) != len(keys):
        raise ValueError(f"{what}: {len(se)} standard errors for {len(keys)} values")
    return dict(zip(keys, map(float, se)))


def _check_se(value, what):
    if not (value >= 0):  # also refuses NaN
        raise ValueError(f"{what} must be a non-negative number, got {value}")
    return value


def assert_within_se(estimate, exact, se, z=4.0, what="estimate"):
    """``|estimate - exact| <= z * se``.

    :param float se: the estimate's standard error.
    :raises AssertionError: naming the error in standard errors.
    """
    _check_se(se, f"{what}'s standard error")
    error = float(estimate) - float(exact)
    if not abs(error) <= z * se:
        raise AssertionError(f"{what} {float(estimate):.6g} differs from the exact {float(exact):.6g} by "
                             f"{error:+.3g}, {_in_se(error, se)} (allowed: {z:g}); a biased estimator, or a "
                             "standard error that is too small (heavy-tailed weights: check the Pareto k-hat)")


def _in_se(diff, se):
    return f"{abs(diff) / se:.1f} standard errors" if se > 0 else "with a standard error of 0"


def assert_bound_sandwich(elbo, iwae_values, log_px, se=0.0, z=4.0):
    """``ELBO <= IWAE_K <= log p(x)`` for every ``K``, each within Monte Carlo error.

    :param float elbo: an ELBO estimate (per datum, or summed: the same units throughout).
    :param iwae_values: IWAE bound estimates, as ``{K: value}`` or a sequence.
    :param float log_px: the exact :math:`\\log p(x)` (or a trusted upper value).
    :param se: standard errors: one number for every estimate, or ``(elbo_se, iwae_ses)`` with
        ``iwae_ses`` a number, a ``{K: se}`` mapping or a sequence matching ``iwae_values``.
    :param float z: how many (combined) standard errors a violation must exceed to fail.
    :raises AssertionError: naming the first violated inequality.
    """
    values = _by_k(iwae_values, "iwae_values")
    keys = [k for k, _ in values]
    elbo_se, iwae_se = se if isinstance(se, tuple) else (se, se)
    elbo_se = _check_se(float(elbo_se), "the ELBO's standard error")
    ses = {k: _check_se(s, f"the standard error at K = {k}") for k, s in _matching(iwae_se, keys, "se").items()}
    label = "K =" if isinstance(iwae_values, Mapping) else "value #"
    for k, value in values:
        combined = math.hypot(elbo_se, ses[k])
        if elbo - value > z * combined:
            raise AssertionError(f"ELBO {elbo:.6g} exceeds the IWAE bound at {label} {k}, {value:.6g}, by "
                                 f"{_in_se(elbo - value, combined)} (allowed: {z:g}); the IWAE bound is never "
                                 "below the ELBO of the same guide: check its log-mean-exp over the K samples")
        if value - log_px > z * ses[k]:
            raise AssertionError(f"IWAE bound at {label} {k}, {value:.6g}, exceeds log p(x) = {log_px:.6g} by "
                                 f"{_in_se(value - log_px, ses[k])} (allowed: {z:g}); a bound above the "
                                 "likelihood means a wrong log-density or weight, or too small a standard error")
    if elbo - log_px > z * elbo_se:
        raise AssertionError(f"ELBO {elbo:.6g} exceeds log p(x) = {log_px:.6g} by {_in_se(elbo - log_px, elbo_se)} "
                             f"(allowed: {z:g}); check the entropy or KL term's sign")


def assert_monotone_in_k(values_by_k, ses=0.0, z=4.0):
    """A bound that does not decrease with ``K``: each value at least the previous one within error.

    :param values_by_k: ``{K: value}`` (compared in order of ``K``) or a sequence in increasing ``K``.
    :param ses: their standard errors: a number, a ``{K: se}`` mapping or a matching sequence.
    :raises AssertionError: naming the first pair that decreases by more than ``z`` combined
        standard errors.
    """
    values = _by_k(values_by_k, "values_by_k")
    keys = [k for k, _ in values]
    ses = {k: _check_se(s, f"the standard error at K = {k}") for k, s in _matching(ses, keys, "ses").items()}
    label = "K =" if isinstance(values_by_k, Mapping) else "value #"
    for (k0, v0), (k1, v1) in zip(values, values[1:]):
        combined = math.hypot(ses[k0], ses[k1])
        if v0 - v1 > z * combined:
            raise AssertionError(f"the bound decreases from {label} {k0} ({v0:.6g}) to {label} {k1} ({v1:.6g}) "
                                 f"by {_in_se(v0 - v1, combined)} (allowed: {z:g}); an importance-weighted bound "
                                 "only tightens as K grows")


def _flat(gradient):
    if torch.is_tensor(gradient):
        return gradient.detach().double().flatten()
    return torch.cat([torch.as_tensor(g).detach().double().flatten() for g in gradient])


def assert_unbiased_gradient(estimator_fn, reference_grad, num_draws=200, z=4.0, atol=1e-9):
    """The mean of ``num_draws`` gradient draws matches ``reference_grad`` in every coordinate.

    Each coordinate's mean must lie within ``z`` standard errors (the draws' standard deviation
    over :math:`\\sqrt{R}`) plus ``atol`` of the reference; ``atol`` covers coordinates that the
    estimator computes exactly (zero spread). With ``D`` coordinates a correct estimator fails
    with probability about ``D * 6e-5`` at ``z = 4``: raise ``z`` for large ``D``, and use at least
    100 draws so that the standard errors themselves are accurate.

    :param callable estimator_fn: returns one gradient draw (a tensor, or a list of tensors).
    :param reference_grad: the exact gradient, in the same layout.
    :raises AssertionError: naming the worst coordinate, its mean, reference and standard error.
    """
    if num_draws < 2:
        raise ValueError(f"num_draws must be >= 2 to estimate a standard error, got {num_draws}")
    draws = torch.stack([_flat(estimator_fn()) for _ in range(num_draws)])
    reference = _flat(reference_grad)
    if draws.shape[1] != reference.numel():
        raise ValueError(f"the estimator's draws have {draws.shape[1]} coordinates, the reference {reference.numel()}")
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(num_draws)
    excess = (mean - reference).abs() - (z * se + atol)
    worst = int(excess.argmax())
    if excess[worst] > 0:
        error = (mean[worst] - reference[worst]).item()
        raise AssertionError(
            f"gradient coordinate {worst} of {reference.numel()}: mean of {num_draws} draws {mean[worst].item():.6g}, "
            f"reference {reference[worst].item():.6g}, off by {_in_se(error, se[worst].item())} (allowed: {z:g}, plus "
            f"atol {atol:g}); {int((excess > 0).sum())} coordinates fail: the estimator is biased, or the reference is "
            "the gradient of another objective")
