"""Renyi divergence bounds and the importance-weighted bound (objectives ``"renyi"``, ``"iwae"``)."""
import math

import torch

from pyro_lvm.objectives.base import Objective


class RenyiBound(Objective):
    r"""The variational Renyi bound of Li & Turner (2016, eq. 5) with ``K`` samples,

    .. math:: \mathcal L_\alpha = \frac{1}{1 - \alpha}
              \log \frac1K \sum_{k=1}^K w_k^{1 - \alpha}, \qquad
              w_k = \frac{p(x, z_k)}{q(z_k|x)},

    formed per datum over the plates every site shares. ``alpha = 0`` is the importance-weighted
    bound (Burda et al. 2015, eq. 8); ``alpha -> 1`` recovers the ELBO; for ``0 <= alpha < 1``
    it is a lower bound on :math:`\log p(x)` that tightens as ``K`` grows. Gradients are
    pathwise, so every guide site must be reparameterised. Matches ``pyro.infer.RenyiELBO``.

    :param float alpha: the Renyi order, ``alpha != 1``.
    """

    def __init__(self, alpha=0.0, num_particles=2, vectorize_particles=True, max_plate_nesting=None):
        if alpha == 1:
            raise ValueError("alpha = 1 is the ELBO: use objective 'elbo' instead of 'renyi'")
        super().__init__(num_particles, vectorize_particles, max_plate_nesting)
        self.alpha = float(alpha)

    def _loss(self, traces):
        for _, guide_trace in traces:
            if self._score_function_sites(guide_trace):
                names = [s["name"] for s in self._score_function_sites(guide_trace)]
                raise ValueError(f"{type(self).__name__} needs reparameterised guide sites; {names} are not. "
                                 "Use objective 'elbo' for discrete latents.")
        log_w = self._log_weights(traces)
        scaled = (1.0 - self.alpha) * log_w
        per_datum = torch.logsumexp(scaled, dim=self._particle_dim(log_w)) - math.log(self.num_particles)
        return -per_datum.sum() / (1.0 - self.alpha)


class IWAE(RenyiBound):
    r"""The importance-weighted bound :math:`\log \frac1K \sum_k w_k` (Burda et al. 2015, eq. 8)."""

    def __init__(self, num_particles=5, vectorize_particles=True, max_plate_nesting=None):
        super().__init__(0.0, num_particles, vectorize_particles, max_plate_nesting)
