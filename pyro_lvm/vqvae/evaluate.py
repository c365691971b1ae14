r"""Test metrics: reconstruction error, codebook health, the prior's bits per code, bits per dim.

What a VQ-VAE's likelihood can honestly be stated as. The encoder is deterministic, so the
approximate posterior :math:`q(z \mid x)` puts all its mass on the codes :math:`z^*(x)`, its
entropy is zero and the evidence lower bound reads

.. math::

    \log p(x) \;\ge\; \log p(x \mid z^*(x)) + \log p(z^*(x)),

with :math:`p(z)` the learned PixelCNN prior. The model is trained with a squared error, i.e. a
Gaussian decoder of unstated variance; to turn the bound into a number we give the decoder a
single scale :math:`\sigma`, fitted on training images, and discretise it to the 256 intensity
levels of 8-bit images (:func:`discretized_gaussian_log_prob`). ``bits_per_dim_bound`` is then an
upper bound on :math:`-\log_2 p(x)` per pixel for *this* decoder likelihood; it is dominated by
the crude decoder term and is not comparable with models trained for likelihood.
``prior_bits_per_dim`` alone is the rate of the code maps per image dimension.
"""
import math

import torch

from pyro_lvm.nn.discretized import discretized_log_prob, levels_of
from pyro_lvm.vqvae.health import CodebookUsage
from pyro_lvm.vqvae.model import evaluating


def level_prefixes(levels):
    """Key prefixes for per-level metrics: none for one level, ``top_``/``bottom_`` for two."""
    return [""] if levels == 1 else ["top_", "bottom_"]


def images_of(batch):
    """The image tensor of a batch that is either a tensor or an ``(images, labels)`` pair."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def evaluate_reconstruction(model, loader, prefix="test_"):
    """Mean squared error per pixel and codebook usage over a whole loader, in eval mode.

    :returns: ``(metrics, usages)``: a dict with ``{prefix}mse`` and, for a VQ-VAE, each level's
        :meth:`CodebookUsage.summary`; and the list of :class:`CodebookUsage` (empty for a plain
        autoencoder).
    """
    squared, pixels, usages = 0.0, 0, None
    with evaluating(model):
        for batch in loader:
            x = images_of(batch)
            out = model(x)
            squared += float((out.reconstruction - x).pow(2).sum())
            pixels += x.numel()
            if usages is None:
                usages = [CodebookUsage(q.counts.numel()) for q in out.quantizer_outputs]
            for usage, q in zip(usages, out.quantizer_outputs):
                usage.update(q.counts)
    if not pixels:
        raise ValueError("the loader yielded no images")
    metrics = {prefix + "mse": squared / pixels}
    for level_prefix, usage in zip(level_prefixes(len(usages)), usages):
        metrics.update(usage.summary(prefix + level_prefix))
    return metrics, usages


def code_batches(codes, batch_size, shuffle=False, generator=None):
    """Yield lists of per-level code tensors, ``batch_size`` images at a time."""
    count = codes[0].shape[0]
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    for start in range(0, count, batch_size):
        chosen = order[start:start + batch_size]
        yield [c[chosen] for c in codes]


def prior_nll(prior, codes, batch_size=256):
    """The prior's negative log-likelihood of encoded images, in bits.

    :param list codes: per-level code maps ``(N, H_l, W_l)``, as :func:`~pyro_lvm.vqvae.train.encode_dataset` returns.
    :returns: dict with ``bits_per_code`` (over all levels' positions), ``bits_per_image`` and, with
        two levels, ``top_bits_per_code`` and ``bottom_bits_per_code``.
    """
    totals = torch.zeros(len(codes), dtype=torch.float64)
    with evaluating(prior):
        for batch in code_batches(codes, batch_size):
            totals += torch.stack([b.double().sum() for b in prior.nll_bits(batch)]).cpu()
    images = codes[0].shape[0]
    positions = [c[0].numel() for c in codes]
    result = {"bits_per_code": float(totals.sum()) / (images * sum(positions)),
              "bits_per_image": float(totals.sum()) / images}
    if len(codes) > 1:
        for prefix, total, n in zip(level_prefixes(len(codes)), totals, positions):
            result[prefix + "bits_per_code"] = float(total) / (images * n)
    return result


def discretized_gaussian_log_prob(x, mean, log_scale, num_bins=256):
    r"""Log-probability of the intensity bin holding ``x`` under :math:`\mathcal N(\mu, \sigma^2)`.

    The interval [0, 1] is cut into ``num_bins`` levels :math:`k / (\text{num\_bins} - 1)`; bin
    :math:`k` covers half a step either side, and the first and last bins extend to
    :math:`\mp\infty`, so the probabilities of all bins sum to one. ``x`` is rounded to its level.
    The discretization is the package's one implementation,
    :func:`pyro_lvm.nn.discretized.discretized_log_prob` (family ``"normal"``).

    :param torch.Tensor x: values in [0, 1].
    :param torch.Tensor mean: :math:`\mu`, broadcastable with ``x``.
    :param log_scale: :math:`\log \sigma`, a float or tensor broadcastable with ``x``.
    :returns: elementwise log-probabilities (nats).
    """
    return discretized_log_prob(levels_of(x, num_bins), mean, log_scale, "normal", num_bins)


def _reconstructions(model, loader, max_images):
    xs, means, seen = [], [], 0
    with evaluating(model):
        for batch in loader:
            x = images_of(batch)
            xs.append(x)
            means.append(model(x).reconstruction)
            seen += x.shape[0]
            if seen >= max_images:
                break
    return torch.cat(xs)[:max_images], torch.cat(means)[:max_images]


def fit_decoder_scale(model, loader, max_images=2000):
    r"""The :math:`\log\sigma` that maximises the discretised Gaussian likelihood of (at most
    ``max_images``) images from ``loader``, by a grid search over :math:`\sigma \in [10^{-3}, 10]`
    (steps of 10% in :math:`\sigma`)."""
    x, mean = _reconstructions(model, loader, max_images)
    grid = torch.linspace(math.log(1e-3), math.log(10.0), 97)
    scores = torch.stack([discretized_gaussian_log_prob(x, mean, s).sum() for s in grid])
    return float(grid[int(scores.argmax())])


def bits_per_dim(model, prior, loader, log_scale):
    """Rate and distortion terms of the bound above, in bits per image dimension, on ``loader``.

    :returns: dict with ``prior_bits_per_dim`` (:math:`-\\log_2 p(z^*)` per dimension),
        ``decoder_bits_per_dim`` (:math:`-\\log_2 p(x \\mid z^*)` per dimension, discretised
        Gaussian with :math:`\\log\\sigma` = ``log_scale``) and their sum ``bits_per_dim_bound``.
    """
    prior_bits = decoder_bits = 0.0
    dims = 0
    with evaluating(model), evaluating(prior):
        for batch in loader:
            x = images_of(batch)
            outputs = model.quantize(x)
            mean = model.decode_quantized([q.quantized for q in outputs])
            prior_bits += float(sum(b.sum() for b in prior.nll_bits([q.indices for q in outputs])))
            decoder_bits -= float(discretized_gaussian_log_prob(x, mean, log_scale).sum()) / math.log(2)
            dims += x.numel()
    return {"prior_bits_per_dim": prior_bits / dims,
            "decoder_bits_per_dim": decoder_bits / dims,
            "bits_per_dim_bound": (prior_bits + decoder_bits) / dims,
            "decoder_log_scale": float(log_scale)}
