"""Renyi divergence bounds and the importance-weighted bound (objectives ``"renyi"``, ``"iwae"``)."""
import math

import torch

from pyro_lvm.objectives.base import Objective, SiteCosts, sample_sites, sum_except


class RenyiBound(Objective):
    r"""The variational Renyi bound of Li & Turner (2016, eq. 5) with ``K`` samples per datum,

    .. math:: \mathcal L_\alpha(x_i) = \frac{1}{1 - \alpha}
              \log \frac1K \sum_{k=1}^K w_{ik}^{1 - \alpha}, \qquad
              w_{ik} = \frac{p(x_i, z_{ik})}{q(z_{ik}|x_i)},

    formed per datum: over the plates shared by the observations (see
    :mod:`pyro_lvm.objectives.base`). ``alpha = 0`` is the importance-weighted bound (Burda et
    al. 2015, eq. 8); ``alpha -> 1`` recovers the ELBO; for ``0 <= alpha < 1`` it is a lower
    bound on :math:`\log p(x_i)` that tightens as ``K`` grows.

    **Subsampling and scales.** A subsampled data plate (or ``poutine.scale``) scales each
    datum's bound *after* the log-sum-exp, :math:`\sum_i s_i \mathcal L_\alpha(x_i)` with
    :math:`s_i = N/B`, the unbiased estimate of the full data's sum of per-datum bounds. (Scaling
    the log-weights inside the log-sum-exp would give a Renyi bound of order
    :math:`1 - s(1 - \alpha)`, which exceeds :math:`\log p(x)`.) Every site of a datum must carry
    the same scale.

    **Global latent sites.** Sites outside the data plate (a global :math:`u`) enter as ELBO
    terms, giving the nested bound

    .. math:: \mathcal L = \mathbb E_{q(u)}\Big[\log \frac{p(u)}{q(u)} + \sum_i s_i
              \mathcal L_\alpha\big(x_i \mid u\big)\Big] \le \log p(x)
              \quad (0 \le \alpha < 1),

    a valid bound by Jensen's inequality twice: :math:`\log p(x) = \log \mathbb E_{q(u)}[p(u)
    \prod_i p(x_i|u) / q(u)] \ge \mathbb E_{q(u)}[\log p(u)/q(u) + \sum_i \log p(x_i|u)]`, and
    :math:`\mathbb E[\mathcal L_\alpha(x_i|u)] \le \log p(x_i|u)` given :math:`u` (Burda et al.
    2015, thm. 1; Li & Turner 2016, thm. 2). As ``K`` grows it tends to the ELBO over :math:`u`
    with :math:`\log p(x_i|u)` exact. This is the "locally enhanced" bound of Geffner & Domke
    (2022, "Variational inference with locally enhanced bounds for hierarchical models", ICML,
    arXiv:2203.04432), who also note that it admits subsampling of the data. Per call, one draw
    of :math:`u` is shared by the ``K`` local samples of every datum (the guide and model are
    re-run with :math:`u` pinned, a second pass); with global but no local latent sites each
    particle is its own draw of :math:`u` and the bound is the ELBO. The joint bound over the
    whole batch, which ``pyro.infer.RenyiELBO`` forms (pyro issue #3104), is a bound on the
    batch's evidence with importance sampling in the space of all its latents at once.

    **Gradients.** Pathwise for reparameterised sites, as ``pyro.infer.RenyiELBO`` (whose value
    and gradient this matches on per-datum models). A guide site with a score-function part
    adds :math:`\nabla \log q(z_{ik}) \, (\hat{\mathcal L}_\alpha - \hat{\mathcal L}_{\alpha,-k})`
    with the leave-one-out baseline of VIMCO (Mnih & Rezende 2016, eqs. 8-10) applied to the
    Renyi bound: :math:`\log w_{ik}` replaced by the mean of the other log-weights. That is
    unbiased for the gradient of the ``K``-sample bound for every ``alpha``; Pyro's
    ``RenyiELBO`` instead uses :math:`\frac{\alpha}{1-\alpha} \sum_k \tilde w_k \nabla \log
    q(z_k)`, the self-normalised gradient of the ``K -> infinity`` objective (biased for
    finite ``K``, and zero for ``alpha = 0``). Score-function sites among the global sites use
    the whole bound of their draw as learning signal (minus the other draws' mean when each
    particle is its own draw).

    ``gradient="dreg"``: doubly reparameterised gradients (Tucker et al. 2018, eq. 7-8). The
    guide's score term :math:`\sum_k \hat w_k \partial_\phi \log q_\phi(z_k)` is rewritten by
    the reparameterisation trick; with :math:`\hat w_k = w_k^{1-\alpha} / \sum_j w_j^{1-\alpha}`,

    .. math:: \nabla_\phi \mathcal L_\alpha = \mathbb E\Big[\sum_k \big(\alpha \hat w_k +
              (1 - \alpha) \hat w_k^2\big)\, \frac{\partial \log w_k}{\partial z_k}
              \frac{\partial z_k}{\partial \phi}\Big],

    which is Tucker et al.'s eq. 7 at ``alpha = 0`` (the same identity,
    :math:`\mathbb E[f(z)\, \partial_\phi \log q_\phi(z)] = \mathbb E[\partial_z f\, \partial_\phi
    z]`, applied to :math:`f = \hat w_k`). Model (decoder) gradients stay those of the
    ordinary bound. Needs fully reparameterised guide sites and no global latent sites.
    ``gradient="stl"`` drops the score term altogether (Roeder et al. 2017): for ``alpha != 1``
    that is *biased* (Tucker et al. 2018, sec. 4), though it vanishes at the exact posterior.

    :param float alpha: the Renyi order, ``alpha != 1``; default 0.5 (the command line's
        ``--alpha`` too), halfway between the IWAE bound (``alpha = 0``, objective ``"iwae"``)
        and the ELBO.
    """

    gradients = ("standard", "stl", "dreg")
    shares_global_draws = True

    def __init__(self, alpha=0.5, num_particles=5, vectorize_particles=True, max_plate_nesting=None,
                 gradient="standard"):
        if alpha == 1:
            raise ValueError("alpha = 1 is the ELBO: use objective 'elbo' instead of 'renyi'")
        super().__init__(num_particles, vectorize_particles, max_plate_nesting, gradient)
        self.alpha = float(alpha)

    def _loss(self, traces):
        weights = self._datum_weights(traces)
        if weights.draws_globals:
            bound, local_signal, global_signal = self._global_draws(weights)
        else:
            bound, local_signal, global_signal = self._shared_draw(weights, traces)
        surrogate = self._score_surrogate(traces, weights, local_signal, global_signal)
        loss = -bound
        if torch.is_tensor(surrogate):  # gradients only
            loss = loss - (surrogate - surrogate.detach())
        return loss

    def _shared_draw(self, weights, traces):
        """Per-datum bounds over the ``K`` particles (one shared draw of any global sites)."""
        log_w, dim = weights.local, weights.particle_dim
        scaled = (1.0 - self.alpha) * log_w
        per_datum = (torch.logsumexp(scaled, dim, keepdim=True) - math.log(log_w.shape[dim])) / (1.0 - self.alpha)
        bound = (weights.scale * per_datum).sum()
        if torch.is_tensor(weights.global_):
            bound = bound + weights.global_.narrow(dim, 0, 1).sum()
        if self.gradient == "dreg":
            self._rescale_path_gradients(traces, weights, torch.softmax(scaled.detach(), dim))
        signal = weights.scale * _leave_one_out_signal(scaled.detach(), dim) / (1.0 - self.alpha)
        return bound, signal, bound.detach()

    def _global_draws(self, weights):
        """The ELBO over ``K`` draws of the global sites (there are no local latent sites)."""
        dim = weights.particle_dim
        per_draw = weights.global_ + sum_except(weights.scale * weights.local, {dim - weights.local.dim()})
        signal = per_draw.detach()
        k = per_draw.shape[dim]
        if k > 1:  # the other draws' mean: independent of this draw, so the estimate stays unbiased
            signal = signal - (signal.sum(dim, keepdim=True) - signal) / (k - 1)
        return per_draw.sum() / k, None, signal

    def _score_surrogate(self, traces, weights, local_signal, global_signal):
        """``sum score * learning signal`` over the guide sites with a score-function part."""
        surrogate = 0.0
        keep = set(weights.keep_dims)
        for j, (model_trace, guide_trace) in enumerate(traces):
            global_costs = None
            for site in self._score_function_sites(guide_trace):
                score = site["score_parts"].score_function
                if site["name"] not in weights.global_names:
                    if self.gradient == "dreg":
                        raise ValueError(f"gradient='dreg' needs fully reparameterised guide sites; site "
                                         f"{site['name']!r} has a score-function part")
                    surrogate = surrogate + (sum_except(score, keep) * self._pair(local_signal, j)).sum()
                    continue
                if global_costs is None:
                    global_costs = SiteCosts.of(model_trace, guide_trace, weights.global_names)
                    total = self._pair(weights.global_, j).detach()
                # the global terms restricted to the site's own plates, the rest of the bound as it is
                cost = self._pair(global_signal, j) + global_costs.sum_to(site["cond_indep_stack"]) - total
                surrogate = surrogate + (score * cost).sum() / self.num_particles
        return surrogate

    def _pair(self, signal, j):
        return signal if self._vectorized or signal.dim() == 0 else signal[j]

    def _rescale_path_gradients(self, traces, weights, normalized):
        """DReG: the gradient reaching each local sample is multiplied by ``alpha + (1 - alpha) w_k``."""
        latent_globals = [n for n, site in sample_sites(traces[0][1])
                          if n in weights.global_names and not site["is_observed"]]
        if latent_globals:
            raise ValueError(f"gradient='dreg' is not implemented with global latent sites ({sorted(latent_globals)} "
                             "lie outside the data plate); use gradient='stl' or 'standard'")
        if not torch.is_grad_enabled():
            return
        factor = self.alpha + (1.0 - self.alpha) * normalized
        for j, (_, guide_trace) in enumerate(traces):
            for _, site in sample_sites(guide_trace):
                value = site["value"]
                if site["is_observed"] or not value.requires_grad:
                    continue
                scale = _like_batch(self._pair(factor, j), site)
                value.register_hook(lambda grad, scale=scale: grad * scale)


def _like_batch(tensor, site):
    """Lay a per-datum tensor out against a site's value (batch dims, then event dims)."""
    batch = len(site["fn"].batch_shape)
    while tensor.dim() > batch and tensor.shape[0] == 1:
        tensor = tensor.squeeze(0)
    return tensor.reshape(tensor.shape + (1,) * site["fn"].event_dim)


def _leave_one_out_signal(scaled, dim):
    r"""VIMCO's per-sample learning signal (Mnih & Rezende 2016, eqs. 8-10) times ``1 - alpha``:
    :math:`\log\sum_j e^{s_j} - \log\sum_j e^{s_j^{(-k)}}`, where :math:`s^{(-k)}` replaces
    :math:`s_k` by the mean of the other :math:`s_j` (the geometric-mean baseline). With one
    sample there is no baseline and the signal is the bound itself."""
    k = scaled.shape[dim]
    if k == 1:
        return scaled
    log_w = scaled.movedim(dim, 0)
    mean_others = (log_w.sum(0, keepdim=True) - log_w) / (k - 1)
    replaced = log_w.unsqueeze(0).expand(k, *log_w.shape).clone()  # replaced[j] = log_w with row j swapped
    index = torch.arange(k)
    replaced[index, index] = mean_others
    full = torch.logsumexp(log_w, 0)
    leave_one_out = torch.logsumexp(replaced, 1)
    return (full.unsqueeze(0) - leave_one_out).movedim(0, dim)


class IWAE(RenyiBound):
    r"""The importance-weighted bound :math:`\log \frac1K \sum_k w_k` (Burda et al. 2015, eq. 8),
    per datum; see :class:`RenyiBound` for subsampling, global sites and gradients."""

    def __init__(self, num_particles=5, vectorize_particles=True, max_plate_nesting=None, gradient="standard"):
        super().__init__(0.0, num_particles, vectorize_particles, max_plate_nesting, gradient)
