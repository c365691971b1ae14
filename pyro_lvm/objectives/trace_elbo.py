"""The evidence lower bound with Monte Carlo expectations (objective ``"elbo"``)."""
import torch
from pyro.distributions.util import is_identically_zero

from pyro_lvm.objectives.base import Objective, SiteCosts, pathwise, sample_sites
from pyro_lvm.objectives.kl_control import KLControlled


class TraceELBO(KLControlled, Objective):
    r"""The ELBO estimated from ``num_particles`` guide samples,

    .. math:: \mathcal L = \mathbb E_{q(z|x)}\left[\log p(x, z) - \log q(z|x)\right]
              \approx \frac1K \sum_{k=1}^K \log w_k,

    (Kingma & Welling 2014, eq. 3). Reparameterised sites give pathwise gradients; a guide site
    with a score-function part (a discrete site, or a rejection sampler's acceptance step) adds

    .. math:: \nabla_\phi \log q_\phi(z_k^{(s)}) \cdot \log w_k\big|_{\text{plates of } s},

    the log-weight summed over every plate *except* those of the site :math:`s` itself
    (Ranganath et al. 2014, sec. 3, Rao-Blackwellisation by conditional independence), which
    keeps the estimator unbiased and drops the terms of other data and other plates. Matches
    ``pyro.infer.Trace_ELBO`` in value and gradient.

    ``gradient="stl"`` drops the score term of reparameterised sites (Roeder et al. 2017;
    unbiased for the ELBO, and zero-variance when the guide is the exact posterior).

    ``beta=`` (a number or a schedule over training steps) weights the latent sites' terms,
    :math:`\mathbb E_q[\log p(x|z)] - \beta\,\mathbb E_q[\log q(z|x) - \log p(z)]`, in the
    pathwise and the score-function terms alike; ``free_bits=`` floors the KL of each latent
    dimension (see :mod:`pyro_lvm.objectives.kl_control`).
    """

    gradients = ("standard", "stl")

    def _elbo_loss(self, traces):
        elbo = surrogate = fit_loss = 0.0
        for model_trace, guide_trace in traces:
            costs = None
            for _, site in sample_sites(model_trace):
                elbo = elbo + site["log_prob"].sum()
            for _, site in sample_sites(guide_trace):
                log_prob, score, entropy = site["score_parts"]
                elbo = elbo - pathwise(log_prob, entropy).sum()
                if not is_identically_zero(score):
                    costs = SiteCosts.of(model_trace, guide_trace) if costs is None else costs
                    term, fit = self._score_term(site, score, costs.sum_to(site["cond_indep_stack"]))
                    surrogate, fit_loss = surrogate + term, fit_loss + fit
        loss = -elbo / self.num_particles
        if torch.is_tensor(surrogate):  # gradients only: the value stays -ELBO
            loss = loss - (surrogate - surrogate.detach()) / self.num_particles
        if torch.is_tensor(fit_loss):
            loss = loss + (fit_loss - fit_loss.detach()) / self.num_particles
        return loss

    def _score_term(self, site, score, cost):
        """``(score * learning signal).sum()`` and a baseline-fitting loss (none here)."""
        return (score * cost).sum(), 0.0
