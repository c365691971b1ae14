r"""The ELBO split into reconstruction and KL terms,

.. math:: \mathcal L(x) = \underbrace{\mathbb E_q[\log p(x|z)]}_{\text{reconstruction}}
          - \underbrace{\mathrm{KL}(q(z|x)\,\|\,p(z))}_{\text{KL}},

with the KL in closed form where Pyro registers it (and finite), else estimated from the samples.
:func:`site_kl` is the one place that decides, per site and, where the site factorizes over its
latent dimensions, per dimension (:mod:`pyro_lvm.evaluate.diagnostics` reads it per dimension).
"""
import torch
from pyro.distributions import Independent
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask

from pyro_lvm.objectives import Objective
from pyro_lvm.objectives.base import sample_sites


def _closed_form_or(q, p, sampled):
    """``KL(q || p)`` where registered and finite, else ``sampled`` (and whether it was analytic)."""
    try:
        term = kl_divergence(q, p)
    except NotImplementedError:
        return sampled, False
    # torch's closed forms can overflow for saturated logits; the sampled estimate stays unbiased there
    finite = torch.isfinite(term)
    return torch.where(finite, term, sampled), bool(finite.all())


def _per_dimension(fn):
    """``fn`` as a distribution with the latent dimensions in its batch (``None`` if it does not factorize)."""
    if fn.event_dim == 0:
        return fn
    if isinstance(fn, Independent) and fn.reinterpreted_batch_ndims == 1 and fn.base_dist.event_dim == 0:
        return fn.base_dist
    return None


def site_kl(q_site, p_site, per_dim=False):
    r""":math:`\mathrm{KL}(q(z|x)\,\|\,p(z))` of one latent site, unscaled, per datum (the site's batch shape).

    Analytic where Pyro registers the pair (and the value is finite), else the one-sample
    estimate :math:`\log q(z) - \log p(z)` at the guide's draw. With ``per_dim=True`` it is
    returned per latent dimension (a last dim of size ``event_shape[-1]``, or 1 for a scalar site),
    which needs both distributions to factorize over the dimensions (an ``Independent`` of a
    univariate family, as the VAE's and the Bernoulli-latent model's sites are); the dimensions
    then sum to the site's KL.

    :returns: ``(kl, analytic)``; ``kl`` is ``None`` when ``per_dim`` is asked of a site that
        does not factorize (a full-covariance or flow guide).
    """
    q, p, value = q_site["fn"], p_site["fn"], q_site["value"]
    if not per_dim:
        return _closed_form_or(q, p, q.log_prob(value) - p.log_prob(value))
    q_dims, p_dims = _per_dimension(q), _per_dimension(p)
    if q_dims is None or p_dims is None:
        return None, False
    kl, analytic = _closed_form_or(q_dims, p_dims, q_dims.log_prob(value) - p_dims.log_prob(value))
    return (kl.unsqueeze(-1) if q.event_dim == 0 else kl), analytic


@torch.no_grad()
def elbo_terms(model, guide, data, num_samples=1, batch_size=500, seed=0):
    """Average reconstruction, KL and ELBO per datum (nats) over ``data``.

    :returns: dict with ``reconstruction``, ``kl`` (summed over every latent site), ``elbo`` and
        ``kl_by_site``, the KL of each latent site. A variationally dequantized model has a second
        latent site, the noise ``u`` with a uniform prior, whose term
        :math:`\mathbb E_q[\log q(u \mid x)]` is then part of ``kl`` but not of ``kl_by_site["z"]``.
    """
    sampler = Objective(num_samples)
    recon = kl = 0.0
    by_site = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(data), batch_size):
            x = data[start:start + batch_size]
            for model_trace, guide_trace in sampler.traces(model, guide, x):
                for name, site in sample_sites(model_trace):
                    if site["is_observed"]:
                        recon += site["log_prob"].sum().item() / num_samples
                        continue
                    q_site = guide_trace.nodes[name]
                    term = scale_and_mask(site_kl(q_site, site)[0], q_site["scale"], q_site["mask"])
                    kl += term.sum().item() / num_samples
                    by_site[name] = by_site.get(name, 0.0) + term.sum().item() / num_samples
    n = len(data)
    return {"reconstruction": recon / n, "kl": kl / n, "elbo": (recon - kl) / n,
            "kl_by_site": {name: value / n for name, value in by_site.items()}}
