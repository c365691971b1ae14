"""Renyi divergence bounds and the importance-weighted bound (objectives ``"renyi"``, ``"iwae"``)."""
import math

import torch

from pyro_lvm.objectives.base import Objective, sum_except


class RenyiBound(Objective):
    r"""The variational Renyi bound of Li & Turner (2016, eq. 5) with ``K`` samples,

    .. math:: \mathcal L_\alpha = \frac{1}{1 - \alpha}
              \log \frac1K \sum_{k=1}^K w_k^{1 - \alpha}, \qquad
              w_k = \frac{p(x, z_k)}{q(z_k|x)},

    formed per datum over the plates every site shares. ``alpha = 0`` is the importance-weighted
    bound (Burda et al. 2015, eq. 8); ``alpha -> 1`` recovers the ELBO; for ``0 <= alpha < 1``
    it is a lower bound on :math:`\log p(x)` that tightens as ``K`` grows. Gradients are
    pathwise for reparameterised sites (matching ``pyro.infer.RenyiELBO``); discrete guide sites
    get VIMCO's leave-one-out score-function estimator (Mnih & Rezende 2016), for ``alpha = 0``.

    :param float alpha: the Renyi order, ``alpha != 1``; default 0.5 (the command line's
        ``--alpha`` too), halfway between the IWAE bound (``alpha = 0``, objective ``"iwae"``)
        and the ELBO.
    """

    def __init__(self, alpha=0.5, num_particles=5, vectorize_particles=True, max_plate_nesting=None):
        if alpha == 1:
            raise ValueError("alpha = 1 is the ELBO: use objective 'elbo' instead of 'renyi'")
        super().__init__(num_particles, vectorize_particles, max_plate_nesting)
        self.alpha = float(alpha)

    def _loss(self, traces):
        log_w = self._log_weights(traces)
        dim = self._particle_dim(log_w)
        scaled = (1.0 - self.alpha) * log_w
        per_datum = torch.logsumexp(scaled, dim=dim) - math.log(self.num_particles)
        loss = -per_datum.sum() / (1.0 - self.alpha)
        log_q = self._score_function_log_q(traces)
        if log_q is not None:
            signal = _vimco_signal(log_w.detach(), dim)
            surrogate = (log_q * signal).sum()
            loss = loss - (surrogate - surrogate.detach())
        return loss

    def _score_function_log_q(self, traces):
        """``sum log q(z_k)`` over non-reparameterised sites, laid out like the log-weights."""
        per_particle = []
        for _, guide_trace in traces:
            sites = self._score_function_sites(guide_trace)
            if sites:
                keep = self._keep_dims(traces[0][0])
                per_particle.append(sum(sum_except(site["score_log_prob"], keep) for site in sites))
        if not per_particle:
            return None
        if self.alpha != 0:
            raise ValueError("score-function gradients of the Renyi bound are implemented for alpha = 0 "
                             "(VIMCO); use objective 'iwae' or reparameterised guide sites")
        if self.num_particles < 2:
            raise ValueError("the IWAE bound with discrete latents needs num_particles >= 2 (VIMCO's "
                             "leave-one-out baseline); with one particle use objective 'elbo'")
        return per_particle[0] if self._vectorized else torch.stack(per_particle)


def _vimco_signal(log_w, dim):
    r"""VIMCO's per-sample learning signal (Mnih & Rezende 2016, eqs. 8-10),
    :math:`\hat L - \hat L_{-k}`, where :math:`\hat L_{-k}` replaces :math:`\log w_k` by the mean
    of the other log-weights (the geometric-mean baseline)."""
    k = log_w.shape[dim]
    log_w = log_w.movedim(dim, 0)
    mean_others = (log_w.sum(0, keepdim=True) - log_w) / (k - 1)
    replaced = log_w.unsqueeze(0).expand(k, *log_w.shape).clone()  # replaced[j] = log_w with row j swapped
    index = torch.arange(k)
    replaced[index, index] = mean_others
    full = torch.logsumexp(log_w, 0)
    leave_one_out = torch.logsumexp(replaced, 1)
    return (full.unsqueeze(0) - leave_one_out).movedim(0, dim)


class IWAE(RenyiBound):
    r"""The importance-weighted bound :math:`\log \frac1K \sum_k w_k` (Burda et al. 2015, eq. 8)."""

    def __init__(self, num_particles=5, vectorize_particles=True, max_plate_nesting=None):
        super().__init__(0.0, num_particles, vectorize_particles, max_plate_nesting)
