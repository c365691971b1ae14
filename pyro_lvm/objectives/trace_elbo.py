"""The evidence lower bound with Monte Carlo expectations (objective ``"elbo"``)."""
import torch

from pyro_lvm.objectives.base import Objective


class TraceELBO(Objective):
    r"""The ELBO estimated from ``num_particles`` guide samples,

    .. math:: \mathcal L = \mathbb E_{q(z|x)}\left[\log p(x, z) - \log q(z|x)\right]
              \approx \frac1K \sum_{k=1}^K \log w_k,

    (Kingma & Welling 2014, eq. 3; Ranganath et al. 2014 for the score-function part).
    Reparameterised sites give pathwise gradients; other guide sites add the score-function
    term :math:`\nabla \log q(z_k) \cdot \log w_k`, whose cost is restricted to the plates the
    site shares with every model site (per datum in a data plate), which keeps it unbiased.
    Matches ``pyro.infer.Trace_ELBO`` in value and, for reparameterised guides, in gradient.
    """

    def _loss(self, traces):
        log_w = self._log_weights(traces, detach_score_sites=True)
        loss = -log_w.sum() / self.num_particles
        surrogate, fit_loss = self._score_function_surrogate(traces, log_w)
        if torch.is_tensor(surrogate):  # gradients only: the value stays -ELBO
            loss = loss - (surrogate - surrogate.detach())
        if torch.is_tensor(fit_loss):
            loss = loss + (fit_loss - fit_loss.detach())
        return loss

    def _score_function_surrogate(self, traces, log_w):
        """Sum of ``log q(z) * learning signal`` over non-reparameterised sites and particles."""
        surrogate = fit_loss = 0.0
        for k, (_, guide_trace) in enumerate(traces):
            cost = (log_w if self._vectorized else log_w[k]).detach()
            for site in self._score_function_sites(guide_trace):
                term, fit = self._score_term(site, cost)
                surrogate = surrogate + term / self.num_particles
                fit_loss = fit_loss + fit / self.num_particles
        return surrogate, fit_loss

    def _score_term(self, site, cost):
        """``(log q(z) * learning signal).sum()`` and a baseline-fitting loss (none here)."""
        return (site["score_log_prob"] * cost).sum(), 0.0
