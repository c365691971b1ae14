r"""KL control for the ELBO objectives: a KL weight :math:`\beta` and free bits.

**KL weight.** With the ELBO written as reconstruction minus KL, the weighted objective is

.. math:: \mathcal L_\beta = \mathbb E_{q(z|x)}\big[\log p(x|z)\big]
          - \beta\, \mathbb E_{q(z|x)}\big[\log q(z|x) - \log p(z)\big],

which is the ELBO at :math:`\beta = 1`, the reconstruction term alone at :math:`\beta = 0`, and
the :math:`\beta`-VAE objective otherwise (Higgins et al. 2017, eq. 4). Every latent site's
:math:`\log p(z)` (in the model) and :math:`\log q(z|x)` (in the guide) are scaled together,
the observed sites are left alone. The weight is applied to the traces after they are drawn,
exactly as ``poutine.scale`` would apply it (log-densities and entropy terms scaled, the
score-function factor not), so that the analytic KL of :class:`~pyro_lvm.objectives.MeanFieldELBO`
and the learning signal of score-function sites in :class:`~pyro_lvm.objectives.TraceELBO` are
weighted too; unlike ``poutine.scale``, which requires a scale > 0, :math:`\beta = 0` is allowed.
:math:`\beta` may follow a schedule over training steps (:mod:`.kl_schedules`).

**Free bits** (Kingma et al. 2016, eq. 15 of the appendix). The KL is split into groups :math:`j`
(the elements of each latent site's event, see below), each averaged over the minibatch
:math:`\mathcal M` and floored at :math:`\lambda` nats:

.. math:: \tilde{\mathcal L}_\lambda = \mathbb E_{q(z|x)}\big[\log p(x|z)\big]
          - \beta \sum_j \max\big(\lambda,\; \mathbb E_{x \in \mathcal M}
          \big[\mathrm{KL}_j(x)\big]\big),

so a group whose KL is below :math:`\lambda` costs a constant and gets no gradient to shrink it
further. Per minibatch of :math:`B` data the loss is
:math:`-\sum_{i} \mathbb E_q \log p(x_i|z_i) + \beta B \sum_j \max(\lambda, \overline{\mathrm{KL}}_j)`
(a datum of a subsampled or masked plate counts with its scale, as in the ELBO). That is the
value the objective reports, and :func:`~pyro_lvm.train.fit`'s ``train_loss`` and
``test_loss`` (there over test batches of ``eval_batch_size``, which the batch means depend on): it is
not the negative ELBO (``test_elbo`` is). How :math:`\mathrm{KL}_j` is
formed, for each latent guide site against the model's site of the same name:

* both distributions factorize over the event (``Independent`` over scalar distributions, e.g.
  ``Normal(loc, scale).to_event(1)`` or ``Bernoulli(logits).to_event(1)``): one group per event
  element, with the analytic KL of the base distributions where one is registered
  (``kl_divergence``), else :math:`\log q(z_j) - \log p(z_j)` at the guide's sample (Monte Carlo,
  needs a reparameterised guide site);
* otherwise, e.g. a full-covariance (``MultivariateNormal``) or normalizing-flow guide: the whole
  site is *one* group, with its analytic KL where registered, else
  :math:`\log q(z) - \log p(z)` at the sample.

Both ``elbo`` and ``meanfield`` use this KL term (analytic where registered); they differ only in
the reconstruction term. At :math:`\lambda = 0` the objective is the ELBO with analytic KL (exactly
``meanfield``'s) wherever every group's KL is analytic; a Monte Carlo group's batch mean can be
negative and is then floored at 0. A guide site that the model lacks has no KL and is refused.

References:

1. I. Higgins, L. Matthey, A. Pal, C. Burgess, X. Glorot, M. Botvinick, S. Mohamed, A. Lerchner,
   "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
   ICLR 2017.
2. D. Kingma, T. Salimans, R. Jozefowicz, X. Chen, I. Sutskever, M. Welling, "Improved
   Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016 (arXiv:1606.04934),
   appendix, eq. 15 ("free bits").
"""
import torch
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from torch.distributions import Independent

from pyro_lvm.objectives.base import _scale_parts, sample_sites
from pyro_lvm.objectives.kl_schedules import _weight, as_schedule


class KLControl:
    r"""A KL weight :math:`\beta` (a number or a schedule ``step -> beta``) and optional free bits.

    :param beta: a number ``>= 0`` or a schedule such as
        :class:`~pyro_lvm.objectives.kl_schedules.LinearWarmup`.
    :param float free_bits: :math:`\lambda \ge 0` nats per group, or ``None`` for no floor.
    :ivar int step: training steps taken so far; the schedule is evaluated here
        (:meth:`set_step`, called by :func:`~pyro_lvm.train.fit` before each step).
    """

    def __init__(self, beta=1.0, free_bits=None):
        self.schedule = as_schedule(beta)
        self.free_bits = None if free_bits is None else _weight(free_bits, "free_bits")
        self.step = 0
        self.beta  # a bad constant or a schedule that fails at step 0 is an error now

    @property
    def beta(self):
        """The weight at the current step."""
        return _weight(self.schedule(self.step), f"beta at step {self.step}")

    def set_step(self, step):
        self.step = int(step)

    def loss(self, traces, elbo_loss, num_particles):
        """The controlled loss: ``elbo_loss`` of the weighted traces, plus the free-bits term.

        :param traces: the ``(model_trace, guide_trace)`` pairs of one call (weighted in place).
        :param callable elbo_loss: ``traces -> -ELBO`` of the estimator (its surrogate loss).
        """
        beta = self.beta
        if self.free_bits is None:
            if beta != 1.0:
                weigh_latent_sites(traces, beta)
            return elbo_loss(traces)
        penalty = free_bits_penalty(traces, self.free_bits, num_particles)
        weigh_latent_sites(traces, 0.0)
        return elbo_loss(traces) + beta * penalty

    def __repr__(self):
        return f"KLControl(beta={self.schedule!r}, free_bits={self.free_bits})"


class KLControlled:
    """Mixin of the ELBO objectives: the ``beta=`` and ``free_bits=`` keywords (:class:`KLControl`).

    The estimator provides ``_elbo_loss(traces)``; without either keyword it is the loss.
    """

    def __init__(self, *args, beta=None, free_bits=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_control = None if beta is None and free_bits is None else KLControl(
            1.0 if beta is None else beta, free_bits)

    @property
    def kl_weight(self):
        """:math:`\\beta` at the current step, or ``None`` without KL control."""
        return None if self.kl_control is None else self.kl_control.beta

    def set_step(self, step):
        """Training steps taken so far (the KL schedule's argument); :func:`~pyro_lvm.train.fit` calls it."""
        if self.kl_control is not None:
            self.kl_control.set_step(step)

    def _loss(self, traces):
        if self.kl_control is None:
            return self._elbo_loss(traces)
        return self.kl_control.loss(traces, self._elbo_loss, self.num_particles)

    def _elbo_loss(self, traces):
        raise NotImplementedError


def weigh_latent_sites(traces, beta):
    """Scale the latent sites of each trace pair by ``beta`` in place, as ``poutine.scale`` would.

    The site's ``scale``, its ``log_prob`` and (guide) the log-density and entropy term of its
    ``score_parts``; the score-function factor stays as it is. Observed sites are untouched.
    """
    for model_trace, guide_trace in traces:
        for _, site in sample_sites(model_trace):
            if not site["is_observed"]:
                site["scale"] = site["scale"] * beta
                site["log_prob"] = site["log_prob"] * beta
        for _, site in sample_sites(guide_trace):
            if not site["is_observed"]:
                site["scale"] = site["scale"] * beta
                site["score_parts"] = _scale_parts(site["score_parts"], beta, None)
                site["log_prob"] = site["score_parts"].log_prob


def free_bits_penalty(traces, free_bits, num_particles):
    r""":math:`\sum_j S_j \max(\lambda, \overline{\mathrm{KL}}_j)` over the groups of every latent site.

    :math:`\overline{\mathrm{KL}}_j` is the group's KL averaged over the site's batch (its plates,
    the particles included) weighted by each element's scale and mask, and :math:`S_j` the total
    of those weights per particle (the minibatch size :math:`B`, times ``N/B`` when subsampled).
    """
    totals, weights = {}, {}
    for model_trace, guide_trace in traces:
        for name, q_site in sample_sites(guide_trace):
            if q_site["is_observed"]:
                continue
            p_site = model_trace.nodes.get(name)
            if p_site is None:
                raise ValueError(f"free bits need the KL of every latent guide site against the model's, but the "
                                 f"model has no site {name!r}; use free_bits=None with such a guide")
            kl = group_kl(q_site, p_site)
            weight = scale_and_mask(kl.new_ones(kl.shape[:-1]), q_site["scale"], q_site["mask"])
            dims = list(range(weight.dim()))
            totals[name] = totals.get(name, 0.0) + (kl * weight.unsqueeze(-1)).sum(dims)
            weights[name] = weights.get(name, 0.0) + weight.sum()
    penalty = 0.0
    for name, total in totals.items():
        if weights[name] > 0:
            mean = total / weights[name]
            penalty = penalty + weights[name] / num_particles * mean.clamp(min=free_bits).sum()
    return penalty


def group_kl(q_site, p_site):
    """The KL of a latent site per group, shape ``batch_shape + (groups,)`` (see the module docstring)."""
    q, p, value = q_site["fn"], p_site["fn"], q_site["value"]
    q_base, q_dims = _factors(q)
    p_base, p_dims = _factors(p)
    if q_dims == p_dims == q.event_dim == p.event_dim > 0 and q_base.event_dim == p_base.event_dim == 0:
        kl = _kl(q_base, p_base, value, q_site["name"])
        batch = torch.broadcast_shapes(q.batch_shape, p.batch_shape)
        return kl.expand(batch + q.event_shape).reshape(batch + (-1,))
    return _kl(q, p, value, q_site["name"]).unsqueeze(-1)


def _factors(fn):
    """The distribution inside ``Independent`` wrappers, and how many dims they reinterpret."""
    dims = 0
    while isinstance(fn, Independent):
        dims += fn.reinterpreted_batch_ndims
        fn = fn.base_dist
    return fn, dims


def _kl(q, p, value, name):
    """``KL(q || p)`` where registered, else ``log q(value) - log p(value)`` (pathwise)."""
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        if not q.has_rsample:
            raise ValueError(f"free bits at site {name!r}: KL({type(q).__name__} || {type(p).__name__}) has no "
                             "closed form and the guide site is not reparameterised, so no Monte Carlo estimate "
                             "with pathwise gradient exists; use free_bits=None for it") from None
        return q.log_prob(value) - p.log_prob(value)
