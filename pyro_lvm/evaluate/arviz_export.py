r"""The amortized posterior of a model/guide pair on a set of data, as an ``arviz.InferenceData``.

For each datum :math:`x_i` of ``x``, :math:`S` draws :math:`z_{is} \sim q(z|x_i)` from the guide,
and for each draw

* the log-likelihood :math:`\log p(x_i|z_{is})` of every observed site (the ``log_likelihood``
  group, one variable per observed site, as ArviZ's LOO and WAIC expect), and
* the importance log-weight :math:`\log w_{is} = \log p(x_i, z_{is}) - \log q(z_{is}|x_i)`, whose
  log-mean-exp over :math:`s` is the importance-sampled :math:`\log \hat p(x_i)`
  (:mod:`pyro_lvm.evaluate.loglik`), with the Pareto :math:`\hat k` of those weights per datum
  (ArviZ's ``psislw``, through :func:`~pyro_lvm.evaluate.psis.pareto_khat`; Vehtari et al. 2024).

The draws are not a Markov chain: ``chain`` has length one and ``draw`` indexes independent
draws from :math:`q(z|x_i)`, an approximation of the posterior :math:`p(z|x_i)`; :math:`\hat k`
says how far to trust it (Yao et al. 2018). Groups, dimensions and coordinates:

* ``posterior``: each latent site ``name``, dims ``(chain, draw, datum, name_dim_0, ...)``;
* ``log_likelihood``: each observed site, dims ``(chain, draw, datum)``;
* ``sample_stats``: ``log_weight`` ``(chain, draw, datum)`` and ``pareto_k`` ``(datum,)``;
* ``observed_data``: the data, dims ``(datum, obs_dim_0, ...)``.

References:

1. A. Vehtari, D. Simpson, A. Gelman, Y. Yao, J. Gabry, "Pareto smoothed importance sampling",
   JMLR 25(72), 2024.
2. Y. Yao, A. Vehtari, D. Simpson, A. Gelman, "Yes, but did it work?: Evaluating variational
   inference", ICML 2018.
3. R. Kumar, C. Carroll, A. Hartikainen, O. Martin, "ArviZ a unified library for exploratory
   analysis of Bayesian models in Python", JOSS 4(33), 2019.
"""
import warnings

import numpy as np
import torch

from pyro_lvm.evaluate.psis import pareto_khat
from pyro_lvm.objectives import Objective
from pyro_lvm.objectives.base import sample_sites


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
        import arviz
    return arviz


def _per_draw(pairs, role, name, key, num_data):
    """A site's ``key`` (``value`` or its log-density) of every trace pair, as ``(S, N, ...)``."""
    parts = []
    for pair in pairs:
        site = pair[role].nodes[name]
        tensor = site["value"] if key == "value" else site.get("unscaled_log_prob", site["log_prob"])
        event = tuple(site["fn"].event_shape) if key == "value" else ()
        parts.append(tensor.reshape(-1, num_data, *event))
    return torch.cat(parts).detach().double().cpu().numpy()


@torch.no_grad()
def to_inference_data(model, guide, x, num_samples=100, site=None, condition=None, seed=0, max_plate_nesting=1):
    """Draws of the guide for each datum of ``x``, with their log-likelihoods, log-weights and :math:`\\hat k`.

    :param model: a Pyro model taking a batch ``x`` (and ``condition``), every site in the data plate.
    :param guide: its guide :math:`q(z|x)`.
    :param torch.Tensor x: ``(N, ...)`` data.
    :param int num_samples: draws :math:`S` per datum (:math:`\\hat k` needs at least 21).
    :param site: the latent site(s) kept in ``posterior`` (a name or a list); default every latent site.
    :param condition: one condition per datum for a conditional model (``model(x, y)``).
    :param int seed: the draws are seeded inside a fork of the CPU's random stream.
    :returns: ``arviz.InferenceData``.
    """
    import xarray as xr

    az = _arviz()
    num_data = len(x)
    sampler = Objective(num_samples, max_plate_nesting=max_plate_nesting)
    args = (x,) if condition is None else (x, condition)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pairs = sampler.traces(model, guide, *args)
        log_w = sampler._log_weights(pairs).reshape(num_samples, num_data)
    model_trace, guide_trace = pairs[0]
    latent = [n for n, s in sample_sites(guide_trace) if not s["is_observed"]]
    wanted = latent if site is None else [site] if isinstance(site, str) else list(site)
    missing = [n for n in wanted if n not in latent]
    if missing:
        raise ValueError(f"the guide has no latent site {missing}; it has {latent}")
    observed = [n for n, s in sample_sites(model_trace) if s["is_observed"]]
    chain = {"chain": [0], "draw": np.arange(num_samples), "datum": np.arange(num_data)}

    def variable(array, name, leading):
        dims = [*leading, *(f"{name}_dim_{i}" for i in range(array.ndim - len(leading)))]
        return xr.DataArray(array, dims=dims, coords={d: np.arange(n) for d, n in zip(dims, array.shape)})

    posterior = xr.Dataset({n: variable(_per_draw(pairs, 1, n, "value", num_data)[None], n,
                                        ("chain", "draw", "datum")) for n in wanted}, coords=chain)
    log_likelihood = xr.Dataset({n: variable(_per_draw(pairs, 0, n, "log_prob", num_data)[None], n,
                                             ("chain", "draw", "datum")) for n in observed}, coords=chain)
    sample_stats = xr.Dataset({
        "log_weight": (("chain", "draw", "datum"), log_w.double().cpu().numpy()[None]),
        "pareto_k": (("datum",), pareto_khat(log_w, dim=0).numpy())}, coords=chain)
    data = x.detach().cpu().numpy()
    observed_data = xr.Dataset({n: variable(data, n, ("datum",)) for n in observed[:1]},
                               coords={"datum": chain["datum"]})
    attrs = {"inference_library": "pyro", "draws_from": "the amortized guide q(z|x), independent per datum",
             "num_samples": int(num_samples)}
    for group in (posterior, log_likelihood, sample_stats, observed_data):
        group.attrs.update(attrs)
    return az.InferenceData(posterior=posterior, log_likelihood=log_likelihood, sample_stats=sample_stats,
                            observed_data=observed_data)
