r"""The ELBO split into reconstruction and KL terms,

.. math:: \mathcal L(x) = \underbrace{\mathbb E_q[\log p(x|z)]}_{\text{reconstruction}}
          - \underbrace{\mathrm{KL}(q(z|x)\,\|\,p(z))}_{\text{KL}},

with the KL in closed form where Pyro registers it (and finite), else estimated from the samples.
"""
import torch
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask

from pyro_lvm.objectives import Objective
from pyro_lvm.objectives.base import sample_sites


@torch.no_grad()
def elbo_terms(model, guide, data, num_samples=1, batch_size=500, seed=0):
    """Average reconstruction, KL and ELBO per datum (nats) over ``data``.

    :returns: dict with ``reconstruction``, ``kl`` and ``elbo``.
    """
    sampler = Objective(num_samples)
    recon = kl = 0.0
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
                    sampled = q_site["log_prob"] - site["log_prob"]
                    try:
                        term = scale_and_mask(kl_divergence(q_site["fn"], site["fn"]), q_site["scale"],
                                              q_site["mask"])
                        # torch's closed forms can overflow for saturated logits; the sampled
                        # estimate stays unbiased there
                        term = torch.where(torch.isfinite(term), term, sampled)
                    except NotImplementedError:
                        term = sampled
                    kl += term.sum().item() / num_samples
    n = len(data)
    return {"reconstruction": recon / n, "kl": kl / n, "elbo": (recon - kl) / n}
