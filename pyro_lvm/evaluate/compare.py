"""Likelihood estimators compared as the number of samples grows.

The classic comparison (e.g. Neal 2001; Burda et al. 2015, sec. 5) of naive Monte Carlo from the
prior, :math:`\\hat p(x) = \\frac1K \\sum_k p(x|z_k)` with :math:`z_k \\sim p(z)`, against importance
sampling from a trained guide, :math:`\\frac1K \\sum_k p(x, z_k)/q(z_k|x)`. Both are unbiased for
:math:`p(x)`; their logs are stochastic lower bounds on :math:`\\log p(x)` whose standard error
shrinks like :math:`1/\\sqrt K` -- but with very different constants.
"""
from pyro_lvm.evaluate.loglik import log_likelihood


def compare_likelihood_estimators(model, proposals, data, sample_sizes, exact=None, seed=0, progress=False):
    """Average log-likelihood estimate and its standard error for each proposal and K.

    :param callable model: the Pyro model.
    :param dict proposals: ``name -> guide`` used as the importance proposal (a prior sampler
        gives the naive estimator).
    :param torch.Tensor data: the data to evaluate.
    :param sample_sizes: the values of K.
    :param float exact: the exact average log-likelihood, if known (reported as the gap).
    :returns: a list of row dicts ``{estimator, K, log_likelihood, se_mc, gap}``.
    """
    rows = []
    for name, guide in proposals.items():
        for k in sample_sizes:
            ll = log_likelihood(model, guide, data, num_samples=k, batch_size=len(data), seed=seed,
                                progress=progress)
            rows.append({"estimator": name, "K": k, "log_likelihood": ll.mean, "se_mc": ll.se_mc,
                         "gap": None if exact is None else exact - ll.mean})
    return rows
