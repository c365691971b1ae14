r"""Importance-sampled log-likelihood of held-out data.

For each datum, with :math:`K` samples from the guide (Burda et al. 2015, eq. 8; Rezende et al.
2014, appendix E),

.. math:: \log \hat p(x) = \log \frac1K \sum_{k=1}^K w_k, \qquad
          w_k = \frac{p(x, z_k)}{q(z_k|x)}, \quad z_k \sim q(z|x).

Its Monte Carlo standard error follows from the delta method,
:math:`\mathrm{se} \approx \sqrt{(\overline{w^2} / \bar w^2 - 1) / K}`, computed from running
log-sum-exps of :math:`\log w` and :math:`2 \log w` so that ``K = 5000`` samples can be drawn in
chunks that bound memory. The estimate is a stochastic lower bound: its bias is about
:math:`-\mathrm{se}^2/2` and vanishes as ``K`` grows.

That standard error is honest only when the weights have a finite variance. A guide narrower
than the posterior gives heavy-tailed weights, and the error can be ten times the reported
standard error. Every estimate therefore comes with the Pareto :math:`\hat k` of its datum's
weights (:mod:`pyro_lvm.evaluate.psis`; Vehtari et al. 2024; Yao et al. 2018), and data with
:math:`\hat k > 0.7` are counted as unreliable in :meth:`LogLikelihood.summary`. The fit needs
the whole set of log-weights of a datum, not the running sums: the first ``khat_samples``
draws of each datum in the current batch are kept (``khat_samples x batch_size`` float64
values, 4 MB for ``K = 5000`` and 100 data; the draws are independent, so a prefix is a fair
subset), and :math:`\hat k` is fitted once the batch is done.

Bits per dimension, :math:`-\log_2 \hat p(x) / D`, are a code length only when :math:`\hat p` is
(a bound on) the probability of discrete data: a Bernoulli likelihood of binary data, a
discrete likelihood of 8-bit pixel values, or a density of dequantized 8-bit data
(:mod:`pyro_lvm.guides.dequantization`). A density of undequantized data in [0, 1]^D can exceed
one and give negative "bits"; :class:`LogLikelihood` then holds ``probability=False``, its
:attr:`~LogLikelihood.bits_per_dim` raises and its summary reports ``None`` with
``log_p_kind = "density"`` (Theis et al. 2016).
"""
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from pyro_lvm import distributed
from pyro_lvm.device import resolve_device
from pyro_lvm.evaluate.psis import KHAT_THRESHOLD, khat_summary, pareto_khat
from pyro_lvm.objectives import Objective
from pyro_lvm.objectives.base import sample_sites


#: why a density's evaluation has no bits per dimension
DENSITY_NOTE = ("log p(x) here is a log-density of continuous data, not the log-probability of discrete data, so "
                "bits per dimension are undefined (they can be negative); dequantize the 8-bit data "
                "(--dequantize uniform|variational) or use a discrete likelihood")


@dataclass
class LogLikelihood:
    """Per-datum estimates and the summary of a test set.

    :ivar per_datum: ``log p(x_i)`` estimates, shape ``(N,)``.
    :ivar per_datum_se: their Monte Carlo standard errors.
    :ivar mean: average log-likelihood (nats per datum).
    :ivar se_mc: Monte Carlo standard error of ``mean`` (from the K samples).
    :ivar se_data: standard error of ``mean`` as an estimate over the data distribution.
    :ivar bits_per_dim: ``-mean / (D log 2)``; only for ``probability=True``.
    :ivar probability: whether ``log p(x)`` is a log-probability of discrete data (else a
        log-density, for which bits per dimension are undefined).
    :ivar khat: Pareto :math:`\\hat k` of each datum's importance weights, shape ``(N,)``
        (NaN where not estimated, e.g. ``K < 21``); above 0.7 the datum's estimate and standard
        error are unreliable.
    """

    per_datum: torch.Tensor
    per_datum_se: torch.Tensor
    num_samples: int
    data_dim: int
    khat: torch.Tensor = None
    probability: bool = True

    @property
    def mean(self):
        return self.per_datum.mean().item()

    @property
    def se_mc(self):
        return (self.per_datum_se.pow(2).sum().sqrt() / len(self.per_datum)).item()

    @property
    def se_data(self):
        n = len(self.per_datum)
        return (self.per_datum.std() / math.sqrt(n)).item() if n > 1 else float("nan")

    @property
    def bits_per_dim(self):
        if not self.probability:
            raise ValueError(DENSITY_NOTE)
        return -self.mean / (self.data_dim * math.log(2))

    @property
    def unreliable(self):
        """Boolean mask of the data whose :math:`\\hat k` exceeds 0.7."""
        khat = self.khat if self.khat is not None else torch.full_like(self.per_datum, math.nan)
        return khat > KHAT_THRESHOLD

    def summary(self):
        """The numbers of a results table, with ``khat_max``, ``khat_mean`` and ``unreliable``."""
        khat = self.khat if self.khat is not None else torch.full_like(self.per_datum, math.nan)
        return {"log_likelihood": self.mean, "se_mc": self.se_mc, "se_data": self.se_data,
                "nll": -self.mean, "bits_per_dim": self.bits_per_dim if self.probability else None,
                "log_p_kind": "probability" if self.probability else "density", "num_samples": self.num_samples,
                "num_data": len(self.per_datum), **khat_summary(khat)}


def _log_weights(model, guide, x, num_samples, max_plate_nesting, condition=None):
    sampler = Objective(num_samples, max_plate_nesting=max_plate_nesting)
    traces = sampler.traces(model, guide, x) if condition is None else sampler.traces(model, guide, x, condition)
    for trace in traces[0]:
        for name, site in sample_sites(trace):
            if not (torch.as_tensor(site["scale"]) == 1).all():
                raise ValueError(f"site {name!r} is scaled (poutine.scale or a subsampled plate); the importance-"
                                 "sampled log-likelihood needs unscaled log-densities of the data it is given")
    log_w = sampler._log_weights(traces).reshape(num_samples, -1)
    if log_w.shape[1] != x.shape[0]:
        raise ValueError("importance-sampled log-likelihood needs every site inside a plate over the data's "
                         f"first dimension; got weights of shape {tuple(log_w.shape)} for {x.shape[0]} data")
    return log_w


@torch.no_grad()
def log_likelihood(model, guide, data, num_samples=5000, batch_size=100, max_elements=2 ** 24,
                   max_plate_nesting=1, progress=True, seed=None, khat_samples=20000, condition=None,
                   device=None, split=False, probability=None):
    """Importance-sampled :math:`\\log p(x)` of every datum in ``data`` (or :math:`\\log p(x|y)`
    with ``condition=y``).

    :param model: a Pyro model taking a batch ``x`` with its sites in a data plate.
    :param guide: the proposal :math:`q(z|x)`.
    :param torch.Tensor data: shape ``(N, ...)``.
    :param int num_samples: ``K`` importance samples per datum.
    :param int batch_size: data per batch.
    :param int max_elements: bounds ``chunk * batch * data_dim`` (the decoder's output; a conv
        decoder's hidden feature maps can be several times larger) by drawing the ``K``
        samples in chunks.
    :param torch.Tensor condition: optional, one condition per datum (labels, partial images):
        each batch calls ``model(x, y)`` and ``guide(x, y)``, and the estimate is the
        conditional :math:`\\log p(x|y)` of a conditional model (Sohn et al. 2015).
    :param int seed: fix the samples drawn: the CPU's random stream and, for data on a GPU, that
        GPU's stream are seeded inside a fork, so the caller's streams are left alone.
    :param int khat_samples: fit :math:`\\hat k` to the first this many draws of each datum
        (all ``K`` by default up to 20000; memory ``min(K, khat_samples) * batch_size * 8`` bytes;
        0 skips the fit: :math:`\\hat k` is NaN).
    :param device: where the data go (``"auto"``, ``"cpu"``, ``"cuda:N"``); ``None``: where they are.
    :param bool split: under ``torchrun``, each process estimates its contiguous share of ``data``
        (seeded ``seed + rank``) and every process gets all the per-datum results, in order.
    :param bool probability: whether the model's :math:`\log p(x)` is a probability of discrete
        data (see the module docstring); ``None``: the model's ``reports_probability`` attribute
        (a bound method's object, e.g. :class:`~pyro_lvm.models.VAE`), else ``True``.
    :returns: :class:`LogLikelihood` (on the CPU).
    """
    if probability is None:
        probability = getattr(getattr(model, "__self__", None), "reports_probability", True)
    if condition is not None and len(condition) != len(data):
        raise ValueError(f"got {len(condition)} conditions for {len(data)} data; give one per datum")
    if device is not None:
        device = resolve_device(device)
        data, condition = data.to(device), None if condition is None else condition.to(device)
    split = split and distributed.world_size() > 1
    if split:
        start, stop = distributed.shard_bounds(len(data))
        data, condition = data[start:stop], None if condition is None else condition[start:stop]
        seed = None if seed is None else seed + distributed.rank()
    data_dim = data[0].numel()
    chunk = max(1, min(num_samples, max_elements // max(1, batch_size * data_dim)))
    per_datum, per_datum_se, khat = [], [], []
    gpus = [data.device] if data.device.type == "cuda" else []  # the samples are drawn where the data are
    with torch.random.fork_rng(devices=gpus, enabled=seed is not None, device_type="cuda"):
        if seed is not None:  # seed the forked streams only: the CPU's and the data's GPU's
            torch.random.default_generator.manual_seed(seed)
            for gpu in gpus:
                with torch.cuda.device(gpu):
                    torch.cuda.manual_seed(seed)
        for start in tqdm(range(0, len(data), batch_size), desc=f"log p(x), K={num_samples}",
                          disable=not progress, leave=False):
            x = data[start:start + batch_size]
            y = None if condition is None else condition[start:start + batch_size]
            lse = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
            lse2 = lse.clone()
            kept = []  # the first khat_samples log-weights of each datum
            for drawn in range(0, num_samples, chunk):
                log_w = _log_weights(model, guide, x, min(chunk, num_samples - drawn), max_plate_nesting,
                                     y).double()
                lse = torch.logaddexp(lse, torch.logsumexp(log_w, 0))
                lse2 = torch.logaddexp(lse2, torch.logsumexp(2 * log_w, 0))
                if drawn < khat_samples:
                    kept.append(log_w[: khat_samples - drawn])
            khat.append(pareto_khat(torch.cat(kept), dim=0) if kept else torch.full_like(lse, math.nan))
            log_mean = lse - math.log(num_samples)
            ratio = torch.exp(lse2 - math.log(num_samples) - 2 * log_mean)  # mean(w^2) / mean(w)^2
            per_datum.append(log_mean)
            se = ((ratio - 1).clamp(min=0) / num_samples).sqrt()
            per_datum_se.append(se if num_samples > 1 else torch.full_like(se, math.nan))  # one draw: unknown
    results = [torch.cat(part).cpu() for part in (per_datum, per_datum_se, khat)]
    if split:
        results = [distributed.all_gather_rows(part) for part in results]
    return LogLikelihood(results[0], results[1], num_samples, data_dim, results[2], probability=probability)
