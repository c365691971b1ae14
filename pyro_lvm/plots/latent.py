r"""Pictures of the latent space of a trained model/guide pair: manifold, scatter, interpolation.

* **Manifold** (Kingma & Welling 2014, fig. 4): decoded means :math:`\mathbb E[x|z]` over a grid
  of prior quantiles, :math:`z_{d} = F_d^{-1}(u)` for :math:`u` evenly spaced in
  :math:`[0.05, 0.95]`, in two latent dimensions; the others sit at the prior's median. For more
  than two dimensions the two chosen, or the two most active ones (the largest variance over the
  data of the guide's mean, Burda et al. 2016, sec. 5.2).
* **Scatter** of the guide's means :math:`\mathbb E_{q(z|x)}[z]` of test images, coloured by
  class; beyond two dimensions their first two principal components.
* **Interpolation** between the guide's means :math:`z_0, z_1` of two test images: linear,
  :math:`(1-t) z_0 + t z_1`, and, for a Gaussian prior, spherical (White 2016, sec. 2.1),

  .. math:: \mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1-t)\Omega)}{\sin\Omega} z_0
            + \frac{\sin(t\Omega)}{\sin\Omega} z_1, \qquad
            \cos\Omega = \frac{z_0 \cdot z_1}{\lVert z_0\rVert \lVert z_1\rVert},

  which keeps the norm near that of prior draws, where linear paths pass through the
  low-density region around the origin.

References:

1. D. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
2. Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
3. T. White, "Sampling Generative Networks", arXiv:1609.04468, 2016.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import pyro.poutine as poutine  # noqa: E402
import torch  # noqa: E402

from pyro_lvm.errors import UsageError  # noqa: E402
from pyro_lvm.evaluate.diagnostics import decode_latents  # noqa: E402
from pyro_lvm.plots.images import save_image_grid  # noqa: E402
from pyro_lvm.plots.figure import save_figure  # noqa: E402

#: the range of prior quantiles a manifold spans
MANIFOLD_QUANTILES = (0.05, 0.95)


def _prior(model, x, site):
    fn = poutine.trace(model).get_trace(x[:1]).nodes[site]["fn"]
    return getattr(fn, "base_dist", fn)


def _continuous_prior(model, x, site, what):
    prior = _prior(model, x, site)
    if prior.has_enumerate_support:
        raise UsageError(f"the {what} needs a continuous prior; latent site {site!r} is discrete "
                         f"({type(prior).__name__}): draw its traversal instead")
    return prior


@torch.no_grad()
def posterior_means(guide, x, site="z", batch_size=500):
    """:math:`\\mathbb E_{q(z|x_n)}[z]` of every datum, ``(N, latent_dim)`` (a draw where the guide has no mean)."""
    means = []
    for batch in x.split(batch_size):
        fn = poutine.trace(guide).get_trace(batch).nodes[site]
        try:
            means.append(fn["fn"].mean)
        except NotImplementedError:
            means.append(fn["value"])
    return torch.cat(means).reshape(len(x), -1)


def most_active_dims(guide, x, site="z", count=2):
    """The ``count`` latent dimensions whose guide mean varies most over the data ``x``."""
    variances = posterior_means(guide, x, site).var(0)
    return torch.argsort(variances, descending=True)[:count].sort().values.tolist()


@torch.no_grad()
def latent_manifold(model, guide, x, dims=None, size=15, site="z"):
    """Decoded means over a ``size x size`` grid of prior quantiles in two latent dimensions.

    :param torch.Tensor x: test data: the first fixes the data's shape, all choose the most
        active dimensions where ``dims`` is not given.
    :param dims: the two dimensions varied (rows, columns); default ``(0, 1)`` for a 2-D latent,
        else the two most active.
    :returns: ``(images, z, dims)``: ``(size, size, ...)`` images, the ``(size, size, latent_dim)``
        points they decode, and the dimensions varied.
    """
    prior = _continuous_prior(model, x, site, "manifold")
    like = x[:1].to(torch.get_default_dtype()) if not x.is_floating_point() else x[:1]
    center = prior.icdf(torch.full((1, 1), 0.5, dtype=like.dtype, device=x.device)).reshape(-1)
    latent_dim = center.numel()
    if dims is None:
        dims = [0, 1] if latent_dim <= 2 else most_active_dims(guide, x, site)
    dims = [int(d) for d in dims]
    if len(dims) != 2 or len(set(dims)) != 2 or not all(0 <= d < latent_dim for d in dims):
        raise UsageError(f"the manifold varies two distinct latent dimensions of 0..{latent_dim - 1}; got {dims}")
    levels = torch.linspace(*MANIFOLD_QUANTILES, size, dtype=center.dtype, device=center.device)
    values = prior.icdf(levels.unsqueeze(-1)).reshape(size, -1)  # (size, latent_dim)
    z = center.repeat(size, size, 1)
    z[:, :, dims[0]] = values[:, dims[0]].unsqueeze(1)
    z[:, :, dims[1]] = values[:, dims[1]].unsqueeze(0)
    images = decode_latents(model, z.reshape(size * size, -1), x, site)
    return images.reshape(size, size, *x.shape[1:]), z, dims


def plot_manifold(images, dims, path, title=None):
    """Save :func:`latent_manifold`'s ``(rows, columns, C, H, W)`` images as one grid."""
    rows, columns = images.shape[:2]
    return save_image_grid(images.reshape(rows * columns, *images.shape[2:]), path, nrow=columns,
                           title=title or f"latent manifold: rows = z[{dims[0]}], columns = z[{dims[1]}], "
                                          f"prior quantiles {MANIFOLD_QUANTILES[0]:g}-{MANIFOLD_QUANTILES[1]:g}")


def principal_components(points, count=2):
    """``(scores, explained)``: the centred ``points`` projected on their first ``count`` principal
    axes, and the share of the variance each explains."""
    centred = points - points.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    share = s.pow(2) / s.pow(2).sum().clamp_min(torch.finfo(s.dtype).tiny)
    return centred @ vh[:count].T, share[:count]


def plot_latent_scatter(means, labels, path, title="test images' posterior means", size=(5.0, 4.5)):
    """Scatter of posterior means, coloured by class (first two principal components beyond 2-D).

    :param means: ``(N, latent_dim)`` from :func:`posterior_means`.
    :param labels: ``(N,)`` integer classes, or ``None`` (one colour).
    :returns: the path written (``size`` inches at 100 dpi).
    """
    means = torch.as_tensor(means).detach().double().cpu()
    if means.shape[1] > 2:
        points, share = principal_components(means)
        names = [f"principal component {i + 1} ({100 * share[i].item():.0f}% of variance)" for i in range(2)]
    elif means.shape[1] == 2:
        points, names = means, ["z[0]", "z[1]"]
    else:
        points = torch.cat([means, torch.zeros_like(means)], 1)
        names = ["z[0]", ""]
    fig, ax = plt.subplots(figsize=size, dpi=100)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        labels = torch.as_tensor(labels).cpu()
        cloud = ax.scatter(points[:, 0], points[:, 1], c=labels.numpy(), cmap="tab10", s=4, alpha=0.7,
                           vmin=-0.5, vmax=9.5 if labels.max() < 10 else labels.max().item() + 0.5)
        fig.colorbar(cloud, ax=ax, label="class", ticks=sorted(set(labels.tolist()))[:20])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    return path


def slerp(z0, z1, t):
    """Spherical interpolation (White 2016) between rows of ``z0`` and ``z1`` at each ``t``: ``(len(t), N, D)``.

    Where the two are parallel (:math:`\\sin\\Omega = 0`) it is the linear path.
    """
    t = t.reshape(-1, 1, 1)
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=-1).clamp(-1, 1).unsqueeze(-1)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    curved = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / safe
    return torch.where(parallel, (1 - t) * z0 + t * z1, curved)


@torch.no_grad()
def latent_interpolation(model, guide, x0, x1, steps=10, site="z", spherical=None):
    """Decoded means along paths between the guide's means of ``x0[i]`` and ``x1[i]``.

    :param bool spherical: add the spherical path; default: where the prior is Gaussian.
    :returns: dict ``path name -> (images (N, steps, ...), z (N, steps, latent_dim))``, with
        ``"linear"`` and, where spherical, ``"spherical"``.
    """
    prior = _continuous_prior(model, x0, site, "interpolation")
    if spherical is None:
        spherical = isinstance(prior, dist.Normal)
    z0, z1 = posterior_means(guide, x0, site), posterior_means(guide, x1, site)
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)
    paths = {"linear": (1 - t.reshape(-1, 1, 1)) * z0 + t.reshape(-1, 1, 1) * z1}
    if spherical:
        paths["spherical"] = slerp(z0, z1, t)
    out = {}
    for name, z in paths.items():
        z = z.transpose(0, 1).contiguous()  # (N, steps, D)
        images = decode_latents(model, z.reshape(-1, z.shape[-1]), x0, site)
        out[name] = (images.reshape(*z.shape[:2], *x0.shape[1:]), z)
    return out


def plot_interpolation(paths, x0, x1, path):
    """One row per pair and path: the first image, the decoded path, the second image."""
    rows, names = [], list(paths)
    for i in range(len(x0)):
        for name in names:
            images = paths[name][0][i]
            rows.append(torch.cat([x0[i:i + 1].to(images), images, x1[i:i + 1].to(images)]))
    grid = torch.cat(rows)
    columns = rows[0].shape[0]
    return save_image_grid(grid, path, nrow=columns,
                           title=f"interpolation: test image, {len(rows[0]) - 2} steps, test image; rows per pair: "
                                 + ", ".join(names))
