"""Likelihood estimators compared as the number of samples grows.

The classic comparison (e.g. Neal 2001; Burda et al. 2015, sec. 5) of naive Monte Carlo from the
prior, :math:`\\hat p(x) = \\frac1K \\sum_k p(x|z_k)` with :math:`z_k \\sim p(z)`, against importance
sampling from a trained guide, :math:`\\frac1K \\sum_k p(x, z_k)/q(z_k|x)`. Both are unbiased for
:math:`p(x)`; their logs are stochastic lower bounds on :math:`\\log p(x)` whose standard error
shrinks like :math:`1/\\sqrt K` -- but with very different constants.
"""
from pyro_lvm.evaluate.harness import compare_estimators
from pyro_lvm.evaluate.specs import EstimatorSpec


def compare_likelihood_estimators(model, proposals, data, sample_sizes, exact=None, seed=0, progress=False):
    """Average log-likelihood estimate and its standard error for each proposal and K.

    The importance-weighted bound with ``K`` samples from each proposal, drawn once by
    :func:`~pyro_lvm.evaluate.compare_estimators` (values only, through
    :func:`~pyro_lvm.evaluate.log_likelihood`, so large ``K`` is drawn in chunks).

    :param callable model: the Pyro model.
    :param dict proposals: ``name -> guide`` used as the importance proposal (a prior sampler
        gives the naive estimator).
    :param torch.Tensor data: the data to evaluate.
    :param sample_sizes: the values of K.
    :param float exact: the exact average log-likelihood, if known (reported as the gap).
    :returns: a list of row dicts ``{estimator, K, log_likelihood, se_mc, gap, khat_max}``
        (``se_mc`` from the delta method; ``khat_max`` the largest Pareto k-hat over the data).
    """
    specs = [EstimatorSpec(name, "iwae", {"num_particles": k}, guide=proposal, family=name)
             for name, proposal in proposals.items() for k in sample_sizes]
    table = compare_estimators(model, next(iter(proposals.values())), data, specs, repeats=1,
                               exact_log_prob=False if exact is None else exact, gradients=False, seed=seed,
                               errors="raise", progress=progress)
    return [{"estimator": row["estimator"], "K": row["K"], "log_likelihood": row["value"], "se_mc": row["value_se"],
             "gap": None if exact is None else exact - row["value"], "khat_max": row["khat_max"]} for row in table]
