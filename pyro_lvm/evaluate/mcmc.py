r"""NUTS for the fully Bayesian Gaussian mixture, exported to ArviZ with R-hat, ESS and a trace plot.

:class:`~pyro_lvm.models.gmm.BayesianGaussianMixture` keeps the assignment as a discrete site
marked for enumeration; Pyro's NUTS [1] sums it out exactly inside the potential energy (given
``max_plate_nesting``), so the sampler moves only the weights, means and scales. Each chain runs
as its own ``MCMC`` (sequentially, seeded ``seed + chain``) and is exported with ``az.from_pyro``;
the chains are joined along ArviZ's ``chain`` dimension.

The mixture posterior is invariant to relabelling the components, so two chains may settle on
different labels and R-hat would flag a problem that is not one. :func:`relabel_components`
permutes the components of every draw to best match a reference (a pivot, as in [3]) by the
Hungarian algorithm on the means, before R-hat (rank-normalised split R-hat [2]), bulk and tail
ESS and the trace plot are computed.

**References**

1. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 2014.
2. A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Buerkner, "Rank-normalization, folding,
   and localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 2021.
3. M. Stephens, "Dealing with label switching in mixture models", JRSS B 2000.
4. F. Obermeyer et al., "Tensor variable elimination for plated factor graphs", ICML 2019.
"""
import os
import time
import warnings
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import torch  # noqa: E402
from pyro.infer import MCMC, NUTS  # noqa: E402
from pyro.infer.autoguide import init_to_value  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from pyro_lvm.models.gmm import BayesianGaussianMixture, site_values  # noqa: E402
from pyro_lvm.models.gmm_em import MixtureParams, check_data, initial_params  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
    import arviz as az  # noqa: E402

COMPONENT_SITES = ("weights", "locs", "scales", "corr_chol")


def run_nuts(model, x, num_samples=200, warmup_steps=200, num_chains=2, seed=0, init_values=None,
             target_accept_prob=0.8, max_tree_depth=8, progress=False):
    """Sample ``model(x)`` with NUTS, one ``MCMC`` per chain, and return an ArviZ ``InferenceData``.

    :param callable model: a Pyro model whose discrete sites are marked for enumeration.
    :param init_values: a dict of site values, or a list of one dict per chain, to start from
        (default: Pyro's ``init_to_uniform``).
    :returns: ``az.InferenceData`` with ``posterior`` and ``sample_stats`` over ``num_chains`` chains.
    """
    if num_chains < 1 or num_samples < 1:
        raise ValueError(f"need at least one chain and one sample, got {num_chains} and {num_samples}")
    starts = init_values if isinstance(init_values, (list, tuple)) else [init_values] * num_chains
    chains = []
    for chain, start in enumerate(starts):
        pyro.set_rng_seed(seed + chain)
        kwargs = {"init_strategy": init_to_value(values=start)} if start is not None else {}
        kernel = NUTS(model, max_plate_nesting=1, target_accept_prob=target_accept_prob,
                      max_tree_depth=max_tree_depth, **kwargs)
        mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup_steps, disable_progbar=not progress)
        mcmc.run(x)
        chains.append(az.from_pyro(mcmc, log_likelihood=False))
    return chains[0] if len(chains) == 1 else az.concat(*chains, dim="chain")


def _pivot_orders(locs, reference):
    """For each draw, the order of its components that best matches ``reference`` (squared distances)."""
    flat = locs.reshape(-1, *locs.shape[-2:])
    orders = np.empty(flat.shape[:2], dtype=np.int64)
    for i, draw in enumerate(flat):
        cost = ((reference[:, None, :] - draw[None, :, :]) ** 2).sum(-1)
        orders[i] = linear_sum_assignment(cost)[1]
    return orders.reshape(locs.shape[:-1])


def relabel_components(idata, reference_locs=None):
    """Permute the components of every draw to match ``reference_locs`` ``(K, D)``; in place.

    The default reference is the median of chain 0's means. Every site in
    :data:`COMPONENT_SITES` found in ``idata.posterior`` is permuted along its component axis.

    :returns: ``idata``.
    """
    posterior = idata.posterior
    locs = posterior["locs"].values  # (chain, draw, K, D)
    reference = np.median(locs[0], axis=0) if reference_locs is None else np.asarray(reference_locs)
    orders = _pivot_orders(locs, reference)  # (chain, draw, K)
    for name in COMPONENT_SITES:
        if name in posterior:
            values = posterior[name].values
            index = orders.reshape(orders.shape + (1,) * (values.ndim - 3))
            posterior[name] = posterior[name].copy(data=np.take_along_axis(values, index, axis=2))
    return idata


def convergence_summary(idata, var_names=("weights", "locs", "scales")):
    """R-hat and effective sample sizes (bulk and tail) of each variable, and their worst values.

    :returns: dict with ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``num_chains``, ``num_draws`` and ``per_variable`` (per-coordinate lists).
    """
    var_names = [v for v in var_names if v in idata.posterior]
    rhat = az.rhat(idata, var_names=var_names)
    bulk = az.ess(idata, var_names=var_names, method="bulk")
    tail = az.ess(idata, var_names=var_names, method="tail")
    per_variable = {v: {"rhat": rhat[v].values.ravel().tolist(), "ess_bulk": bulk[v].values.ravel().tolist(),
                        "ess_tail": tail[v].values.ravel().tolist()} for v in var_names}
    stats = getattr(idata, "sample_stats", None)
    divergences = int(stats["diverging"].values.sum()) if stats is not None and "diverging" in stats else None
    return {"max_rhat": float(max(np.nanmax(rhat[v].values) for v in var_names)),
            "min_ess_bulk": float(min(np.nanmin(bulk[v].values) for v in var_names)),
            "min_ess_tail": float(min(np.nanmin(tail[v].values) for v in var_names)),
            "divergences": divergences, "num_chains": int(idata.posterior.sizes["chain"]),
            "num_draws": int(idata.posterior.sizes["draw"]), "per_variable": per_variable}


def save_trace_plot(idata, path, var_names=("weights", "locs", "scales")):
    """ArviZ's trace plot (densities and traces per chain) as a PNG; returns ``path``."""
    var_names = [v for v in var_names if v in idata.posterior]
    axes = az.plot_trace(idata, var_names=var_names, compact=True, show=False)
    fig = np.asarray(axes).ravel()[0].figure
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@dataclass
class PosteriorResult:
    """What :func:`sample_gmm_posterior` returns: the draws, their diagnostics and a point summary.

    :ivar idata: ``az.InferenceData``, components relabelled.
    :ivar dict summary: :func:`convergence_summary`, plus ``trace_plot`` and ``seconds``.
    :ivar MixtureParams median: posterior medians of the sites, as mixture parameters.
    """

    idata: object
    summary: dict
    median: MixtureParams


def sample_gmm_posterior(x, num_components, covariance="diag", prior=None, num_samples=200, warmup_steps=200,
                         num_chains=2, seed=0, init=None, restarts=3, progress=False, trace_plot=None,
                         max_tree_depth=8):
    """NUTS on :class:`~pyro_lvm.models.gmm.BayesianGaussianMixture`, relabelled, with R-hat, ESS and a trace plot.

    :param MixtureParams init: where every chain starts (converted to ``covariance``); default:
        each chain starts from its own best-of-``restarts`` k-means++ seeding (seed ``seed + chain``),
        so the chains start apart.
    :param str trace_plot: path of the PNG to write, if any.
    :returns: :class:`PosteriorResult`.
    """
    start = time.perf_counter()
    x = check_data(x, num_components)
    bayes = BayesianGaussianMixture(num_components, x.shape[1], covariance, prior)
    if init is not None:
        starts = [site_values(_as_covariance(init.to(x.dtype), covariance))] * num_chains
    else:
        starts = [site_values(initial_params(x, num_components, covariance, restarts,
                                             generator=torch.Generator().manual_seed(seed + c))[0])
                  for c in range(num_chains)]
    idata = run_nuts(bayes.model, x, num_samples, warmup_steps, num_chains, seed, starts,
                     max_tree_depth=max_tree_depth, progress=progress)
    relabel_components(idata, reference_locs=starts[0]["locs"].numpy())
    summary = convergence_summary(idata)
    if trace_plot:
        summary["trace_plot"] = save_trace_plot(idata, trace_plot)
    medians = {name: torch.as_tensor(idata.posterior[name].median(dim=("chain", "draw")).values, dtype=x.dtype)
               for name in bayes.sites}
    summary["seconds"] = time.perf_counter() - start
    return PosteriorResult(idata, summary, bayes.params_from_sites(medians))


def _as_covariance(params, covariance):
    """``params`` with diagonal covariances (the diagonal of full ones) or unchanged."""
    if covariance == params.covariance:
        return params
    if covariance == "diag":
        return MixtureParams(params.weights, params.locs, params.covariances.diagonal(dim1=-2, dim2=-1).sqrt())
    return MixtureParams(params.weights, params.locs, torch.diag_embed(params.scale))
