r"""Posterior-collapse diagnostics of an amortized model/guide pair, at one latent site.

For data :math:`x_1, \dots, x_N` and one draw :math:`z_n \sim q(z|x_n)` per datum (the same
draws serve every quantity):

* **Rate and distortion** (Alemi et al. 2018, eqs. 3-4 and 6):
  :math:`R = \frac1N \sum_n \mathrm{KL}(q(z|x_n)\,\|\,p(z))` and
  :math:`D = -\frac1N \sum_n \log p(x_n|z_n)`, so that the ELBO is :math:`-(R + D)`. The KL is
  analytic where Pyro registers the pair (:func:`~pyro_lvm.evaluate.elbo_terms.site_kl`), else
  :math:`\log q(z_n|x_n) - \log p(z_n)`; it counts every latent site, so the identity holds for
  any pair.
* **KL per latent dimension** of the chosen site, averaged over the data; it sums to that site's
  KL. Defined where guide and prior factorize over the dimensions (diagonal Normal against
  diagonal Normal, Bernoulli against Bernoulli, ...), else ``None``.
* **Active units** (Burda et al. 2016, sec. 5.2): dimension :math:`u` is active when
  :math:`A_u = \mathrm{Cov}_x\big(\mathbb E_{q(u|x)}[u]\big) > 0.01`. The guide's mean is its
  distribution's ``mean`` (the average of the draws where the family has none).
* **Mutual information under the encoder** :math:`q(x, z) = p_{\rm data}(x)\, q(z|x)` (Hoffman &
  Johnson 2016, eq. 2; Alemi et al. 2018, eq. 1):

  .. math:: \hat I = \frac1N \sum_i \Big[\log q(z_i|x_i) - \log \frac1N \sum_n q(z_i|x_n)\Big],

  with the aggregate posterior :math:`q(z)` replaced by the mixture over the same :math:`N` data
  (all :math:`N^2` densities, in blocks). *Bias*: the finite mixture includes the datum's own
  component, so :math:`\hat I \le \log N` always, and in expectation it is the InfoNCE lower bound
  of the population value (van den Oord et al. 2018; Poole et al. 2019, eq. 12): it is
  biased downwards, by an amount that shrinks as :math:`N` grows against
  :math:`e^{I}`; compare :math:`\hat I` with :attr:`Diagnostics.log_num_data`. *Standard
  error*: the standard deviation of the bracketed per-datum terms over :math:`\sqrt N`
  (it ignores the weak dependence of the terms through the shared mixture).
* **The variational lower bound** of Barber & Agakov (2003, eq. 3) on the model's mutual
  information :math:`I_p(x; z)`: with :math:`z_i \sim p(z)`, :math:`x_i \sim p(x|z_i)`,

  .. math:: I_p(x; z) \ge H(z) + \mathbb E\,\log q(z|x),

  :math:`H(z)` the prior's entropy (closed form where the family has one, else
  :math:`-\log p(z_i)`). It is tight when :math:`q(z|x) = p(z|x)`; the gap is
  :math:`\mathbb E_{p(x)} \mathrm{KL}(p(z|x)\,\|\,q(z|x))`.

References:

1. A. Alemi, B. Poole, I. Fischer, J. Dillon, R. Saurous, K. Murphy, "Fixing a Broken ELBO",
   ICML 2018.
2. Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
3. M. Hoffman, M. Johnson, "ELBO surgery: yet another way to carve up the variational evidence
   lower bound", NIPS 2016 Workshop on Advances in Approximate Bayesian Inference.
4. D. Barber, F. Agakov, "The IM Algorithm: A Variational Approach to Information
   Maximization", NIPS 2003.
5. B. Poole, S. Ozair, A. van den Oord, A. Alemi, G. Tucker, "On Variational Bounds of Mutual
   Information", ICML 2019.
"""
import math
from dataclasses import dataclass
from typing import Optional

import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask

from pyro_lvm.evaluate.elbo_terms import site_kl
from pyro_lvm.objectives import Objective
from pyro_lvm.objectives.base import sample_sites

#: Burda et al.'s threshold on the variance of the guide's mean
ACTIVE_THRESHOLD = 0.01


@dataclass
class Diagnostics:
    """Named outputs of :func:`collapse_diagnostics` (nats per datum).

    :ivar float rate: :math:`R`, the mean KL over every latent site.
    :ivar float distortion: :math:`D`, the mean negative log-likelihood at the guide's draws.
    :ivar float elbo: :math:`-(R + D)`.
    :ivar kl_per_dim: mean KL per dimension of :attr:`site` (a tensor), or ``None`` where guide or
        prior does not factorize.
    :ivar bool kl_analytic: every KL term was in closed form (else some were sampled).
    :ivar int active_units: how many dimensions have :attr:`unit_variances` above :attr:`threshold`.
    :ivar torch.Tensor active_mask: which ones.
    :ivar torch.Tensor unit_variances: :math:`A_u`, the variance over the data of the guide's mean.
    :ivar float mutual_information: :math:`\\hat I_q(x; z)` (aggregate-posterior estimate; see the module).
    :ivar float mi_se: its standard error.
    :ivar float mi_lower_bound: Barber & Agakov's bound :math:`H(z) + \\mathbb E \\log q(z|x)` on :math:`I_p(x;z)`.
    :ivar float mi_lower_bound_se: its standard error over the draws.
    :ivar float log_num_data: :math:`\\log N`, the ceiling of :attr:`mutual_information`.
    """

    rate: float
    distortion: float
    elbo: float
    kl_per_dim: Optional[torch.Tensor]
    kl_analytic: bool
    active_units: int
    active_mask: torch.Tensor
    unit_variances: torch.Tensor
    mutual_information: float = math.nan
    mi_se: float = math.nan
    mi_lower_bound: float = math.nan
    mi_lower_bound_se: float = math.nan
    num_data: int = 0
    site: str = "z"
    threshold: float = ACTIVE_THRESHOLD

    @property
    def log_num_data(self):
        return math.log(self.num_data) if self.num_data else math.nan

    @property
    def latent_dim(self):
        return int(self.active_mask.numel())

    def scalars(self):
        """The numbers that fit one cell each (an epoch record's CSV columns), those not estimated left out."""
        values = {"rate": self.rate, "distortion": self.distortion, "active_units": self.active_units,
                  "mutual_information": self.mutual_information, "mi_se": self.mi_se,
                  "mi_lower_bound": self.mi_lower_bound}
        return {k: v for k, v in values.items() if not (isinstance(v, float) and math.isnan(v))}

    def to_dict(self):
        """Everything as plain JSON values (tensors as lists, what was not estimated as ``None``)."""
        names = ("rate", "distortion", "elbo", "active_units", "mutual_information", "mi_se", "mi_lower_bound",
                 "mi_lower_bound_se", "log_num_data", "num_data", "site", "latent_dim", "threshold", "kl_analytic")
        values = {name: _plain(getattr(self, name)) for name in names}
        return {**values, "kl_per_dim": None if self.kl_per_dim is None else self.kl_per_dim.tolist(),
                "active_mask": self.active_mask.tolist(), "unit_variances": self.unit_variances.tolist()}

    def format(self):
        """A text table, one quantity per line (those estimated)."""
        kl = "not defined (the guide or prior does not factorize over dimensions)" if self.kl_per_dim is None \
            else " ".join(f"{v:.2f}" for v in self.kl_per_dim.tolist())
        rows = [
            ("rate R = E KL(q(z|x) || p(z))", f"{self.rate:.3f} nats" + ("" if self.kl_analytic else " (sampled)")),
            ("distortion D = -E log p(x|z)", f"{self.distortion:.3f} nats"),
            ("ELBO = -(R + D)", f"{self.elbo:.3f} nats"),
            (f"active units (Var_x E_q[{self.site}_u] > {self.threshold:g})",
             f"{self.active_units} of {self.latent_dim}"),
            (f"KL per dimension of {self.site!r}", kl),
        ]
        if not math.isnan(self.mutual_information):
            rows.append(("I_q(x; z), aggregate posterior", f"{self.mutual_information:.3f} +- {self.mi_se:.3f} "
                                                           f"nats (at most log N = {self.log_num_data:.3f})"))
        if not math.isnan(self.mi_lower_bound):
            rows.append(("lower bound H(z) + E log q(z|x)",
                         f"{self.mi_lower_bound:.3f} +- {self.mi_lower_bound_se:.3f} nats"))
        rows.append(("data", f"{self.num_data}"))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _plain(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _guide_mean(fn, value):
    try:
        return fn.mean
    except NotImplementedError:  # e.g. a flow: the draw itself (its variance adds to A_u)
        return value


def _check_site(fn, site, batch):
    if tuple(fn.batch_shape) != (batch,) or fn.event_dim > 1:
        raise ValueError(f"latent site {site!r} has batch shape {tuple(fn.batch_shape)} and event shape "
                         f"{tuple(fn.event_shape)}; the diagnostics need one datum per entry of the data plate "
                         f"(batch shape ({batch},)) and a vector-valued site (event dim at most 1)")


@torch.no_grad()
def collapse_diagnostics(model, guide, data, site="z", threshold=ACTIVE_THRESHOLD, batch_size=500, seed=0,
                         mutual_information=True, lower_bound=True):
    """Rate, distortion, KL per dimension, active units and mutual information over ``data``.

    :param model: a Pyro model taking a batch ``x``, with the latent ``site`` in its data plate.
    :param guide: the matching guide.
    :param torch.Tensor data: the data, ``(N, ...)``.
    :param str site: the latent site to read per dimension.
    :param float threshold: the active-unit threshold on :math:`A_u`.
    :param int batch_size: data per traced batch (and per block of the :math:`N^2` densities).
    :param int seed: seeds the draws (the caller's random stream is left alone).
    :param bool mutual_information: also estimate :math:`I_q` (:math:`N^2` guide densities).
    :param bool lower_bound: also Barber & Agakov's bound (draws ``x`` from the model: slow for an
        autoregressive likelihood).
    :returns: :class:`Diagnostics`.
    """
    sampler = Objective(1, vectorize_particles=False)
    recon = kl_all = 0.0
    kl_dims, analytic, means, draws, fns, own = 0.0, True, [], [], [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(data), batch_size):
            x = data[start:start + batch_size]
            ((model_trace, guide_trace),) = sampler.traces(model, guide, x)
            if site not in guide_trace.nodes or site not in model_trace.nodes:
                raise ValueError(f"no latent site {site!r} in both model and guide; they sample "
                                 f"{[n for n, _ in sample_sites(guide_trace)]} (pass site=)")
            for name, p_site in sample_sites(model_trace):
                if p_site["is_observed"]:
                    recon += p_site["log_prob"].sum().item()
                    continue
                q_site = guide_trace.nodes[name]
                kl, exact = site_kl(q_site, p_site)
                kl_all += scale_and_mask(kl, q_site["scale"], q_site["mask"]).sum().item()
                analytic &= exact
            q_site = guide_trace.nodes[site]
            fn, value = q_site["fn"], q_site["value"]
            _check_site(fn, site, len(x))
            per_dim, _ = site_kl(q_site, model_trace.nodes[site], per_dim=True)
            kl_dims = None if per_dim is None or kl_dims is None else kl_dims + per_dim.sum(0)
            means.append(_guide_mean(fn, value).reshape(len(x), -1))
            draws.append(value)
            fns.append(fn)
            own.append(q_site["unscaled_log_prob"])
        n = len(data)
        rate, distortion = kl_all / n, -recon / n
        unit_variances = torch.cat(means).var(0)
        active = unit_variances > threshold
        result = Diagnostics(rate, distortion, -(rate + distortion), None if kl_dims is None else kl_dims / n,
                             analytic, int(active.sum()), active, unit_variances, num_data=n, site=site,
                             threshold=threshold)
        if mutual_information:
            result.mutual_information, result.mi_se = aggregate_posterior_mi(fns, draws, own)
        if lower_bound:
            result.mi_lower_bound, result.mi_lower_bound_se = barber_agakov_bound(model, guide, data, site,
                                                                                  batch_size)
    return result


def _mean_and_se(terms):
    terms = torch.cat(terms).double()
    se = terms.std() / math.sqrt(len(terms)) if len(terms) > 1 else torch.tensor(math.nan)
    return terms.mean().item(), se.item()


def aggregate_posterior_mi(fns, draws, own=None):
    r""":math:`\hat I_q(x;z)` from the guide's distributions and one draw per datum, in blocks.

    :param list fns: the guide's distribution per block of data (batch shape ``(B_j,)``).
    :param list draws: :math:`z_i \sim q(z|x_i)`, one tensor per block, aligned with ``fns``.
    :param list own: :math:`\log q(z_i|x_i)` per block (recomputed where not given).
    :returns: ``(estimate, standard error)``; see the module docstring for the bias.
    """
    n = sum(len(z) for z in draws)
    terms = []
    for i, z in enumerate(draws):
        mixture = torch.logsumexp(torch.cat([fn.log_prob(z.unsqueeze(-1 - fn.event_dim)) for fn in fns], -1), -1)
        log_q = own[i] if own is not None else fns[i].log_prob(z)
        terms.append(log_q - (mixture - math.log(n)))
    return _mean_and_se(terms)


def barber_agakov_bound(model, guide, data, site="z", batch_size=500):
    r""":math:`H(z) + \mathbb E \log q(z|x)` with :math:`z \sim p(z)`, :math:`x \sim p(x|z)`: a lower
    bound on :math:`I_p(x;z)` (Barber & Agakov 2003).

    The model is run on ``data`` (which fixes the batch shapes) with its observations drawn
    instead (``poutine.uncondition``); the guide then reads those draws.

    :returns: ``(estimate, standard error)`` over the ``len(data)`` draws.
    """
    terms = []
    for start in range(0, len(data), batch_size):
        x = data[start:start + batch_size]
        model_trace = poutine.trace(poutine.uncondition(model)).get_trace(x)
        drawn = [s for _, s in sample_sites(model_trace) if s["infer"].get("was_observed")]
        if len(drawn) != 1:
            raise ValueError(f"the Barber-Agakov bound needs one observed site in the model, found {len(drawn)}")
        prior = model_trace.nodes[site]
        z = prior["value"]
        try:
            entropy = prior["fn"].entropy()
        except NotImplementedError:
            entropy = -prior["fn"].log_prob(z)
        guide_trace = poutine.trace(guide).get_trace(drawn[0]["value"])
        terms.append(entropy + guide_trace.nodes[site]["fn"].log_prob(z))
    return _mean_and_se(terms)


@torch.no_grad()
def latent_traversal(model, guide, x, dims, site="z", quantiles=(0.05, 0.15, 0.3, 0.45, 0.55, 0.7, 0.85, 0.95)):
    r"""Decoded means with one latent dimension varied at a time, the others at the guide's mean.

    The figure of :math:`\beta`-VAE papers (Higgins et al. 2017, fig. 7): for each dimension in
    ``dims``, :math:`z` is the guide's mean for the datum ``x`` with that dimension set to the
    prior's quantiles (a continuous prior with ``icdf``), or to each value of its support (a
    discrete prior: the bit off and on for Bernoulli latents).

    :param torch.Tensor x: one datum with its batch dim, ``(1, ...)``.
    :returns: ``(images, values)``: the likelihood's means (a draw where the likelihood has no closed-form
        mean, as an autoregressive one), ``(len(dims), V, ...)``, and the values
        of the varied dimension, ``(V, len(dims))``.
    """
    guide_trace = poutine.trace(guide).get_trace(x)
    q = guide_trace.nodes[site]
    center = _guide_mean(q["fn"], q["value"]).reshape(1, -1)
    model_trace = poutine.trace(model).get_trace(x)
    prior = model_trace.nodes[site]["fn"]
    prior = getattr(prior, "base_dist", prior)
    if prior.has_enumerate_support:
        values = prior.enumerate_support(expand=False).reshape(-1, 1).expand(-1, center.shape[-1])
    else:
        levels = torch.tensor(quantiles, dtype=center.dtype, device=center.device).unsqueeze(-1)
        values = prior.icdf(levels).expand(-1, center.shape[-1])
    dims = list(dims)
    z = center.repeat(len(dims) * len(values), 1).reshape(len(dims), len(values), -1)
    for row, dim in enumerate(dims):
        z[row, :, dim] = values[:, dim]
    z = z.reshape(-1, center.shape[-1]).to(center.dtype)
    images = decode_latents(model, z, x, site=site)
    return images.reshape(len(dims), len(values), *x.shape[1:]), values[:, dims]


def decode_latents(model, z, x, site="z"):
    """The likelihood's mean :math:`\mathbb E[x|z]` at each row of ``z`` (a draw where it has no
    closed-form mean, as the PixelCNN decoder's autoregressive Bernoulli).

    :param torch.Tensor z: ``(M, latent_dim)`` latent values.
    :param torch.Tensor x: a datum ``(1, ...)`` that fixes the data's shape (its values are not used).
    :returns: ``(M, ...)`` images.
    """
    batch = x[:1].expand(len(z), *x.shape[1:])
    decoded = poutine.trace(poutine.condition(model, data={site: z})).get_trace(batch)
    observed = [s for name, s in sample_sites(decoded) if s["is_observed"] and name != site]
    likelihood = observed[0]["fn"]
    try:
        return likelihood.mean
    except NotImplementedError:  # an autoregressive likelihood (PixelCNN): one draw instead
        return likelihood.sample()


class DiagnosticsCallback:
    """A :func:`~pyro_lvm.train.fit` callback that adds the diagnostics of a fixed data subset to each epoch's record.

    The keys of :meth:`Diagnostics.scalars` (``rate``, ``distortion``, ``active_units``,
    ``mutual_information``, ``mi_se``; not Barber & Agakov's bound unless ``lower_bound=True``)
    and ``kl_per_dim`` (a list) go into
    the record dict that ``fit`` keeps in its history, so they reach ``metrics.json``; the draws
    are seeded, so every epoch sees the same data and the same random numbers. It never stops
    training.

    :param data: the subset, e.g. the first 500 test images.
    :param modules: modules to put in eval mode first (``fit`` puts them back in train mode).
    :param kwargs: passed to :func:`collapse_diagnostics`.
    """

    def __init__(self, model, guide, data, modules=(), **kwargs):
        self.model, self.guide, self.data, self.modules = model, guide, data, list(modules)
        self.kwargs = {"lower_bound": False, **kwargs}

    def __call__(self, record, state):
        device = next((p.device for m in self.modules for p in m.parameters()), self.data.device)
        for m in self.modules:
            m.eval()
        result = collapse_diagnostics(self.model, self.guide, self.data.to(device), **self.kwargs)
        record.update(result.scalars())
        record["kl_per_dim"] = None if result.kl_per_dim is None else result.kl_per_dim.tolist()
        return False
