"""Figures of posterior collapse: KL per latent dimension, and latent traversals."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pyro_lvm.plots.images import save_image_grid  # noqa: E402
from pyro_lvm.plots.figure import save_figure  # noqa: E402


def plot_kl_per_dim(kl_per_dim, active_mask, path, title="KL per latent dimension"):
    """Bar chart of the mean KL of each latent dimension, active units in colour, inactive in grey.

    :param kl_per_dim: one number per dimension (nats), as :attr:`~pyro_lvm.evaluate.Diagnostics.kl_per_dim`.
    :param active_mask: one bool per dimension.
    :returns: the path written.
    """
    kl = [float(v) for v in kl_per_dim]
    active = [bool(a) for a in active_mask]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.25 * len(kl) + 1.5), 3.2), dpi=100)
    ax.bar(range(len(kl)), kl, color=["tab:blue" if a else "lightgrey" for a in active])
    ax.set_xlabel(f"latent dimension ({sum(active)} of {len(kl)} active: blue)")
    ax.set_ylabel("KL(q(z_u|x) || p(z_u)) (nats)")
    ax.set_xticks(range(len(kl)) if len(kl) <= 32 else range(0, len(kl), max(1, len(kl) // 16)))
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    return path


def plot_traversal(images, dims, path, varied="prior quantiles"):
    """One row per latent dimension, its values varied along the row (:func:`~pyro_lvm.evaluate.latent_traversal`).

    :param images: ``(len(dims), V, C, H, W)`` decoded means.
    :returns: the path written.
    """
    rows, columns = images.shape[:2]
    shown = ", ".join(str(d) for d in dims)
    return save_image_grid(images.reshape(rows * columns, *images.shape[2:]), path, nrow=columns,
                           title=f"traversal: rows = latent dims {shown}; columns = {varied}")


def plot_rate_distortion(points, path, label="beta", title="Rate-distortion (Alemi et al. 2018)"):
    """Distortion against rate, one labelled point per model (e.g. per KL weight beta).

    Lines of constant ELBO, :math:`R + D = c`, are drawn dashed through each point: a model
    further down-left has the better ELBO, and beta-VAEs trace the frontier of Alemi et al.
    (2018, fig. 1).

    :param points: dicts with ``rate``, ``distortion`` and ``label`` (nats per datum).
    :returns: the path written.
    """
    fig, ax = plt.subplots(figsize=(5.2, 4.0), dpi=100)
    rates = [p["rate"] for p in points]
    distortions = [p["distortion"] for p in points]
    ax.plot(rates, distortions, "o-", color="tab:blue")
    for p in points:
        ax.annotate(f"{label}={p['label']}", (p["rate"], p["distortion"]), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    lo, hi = min(rates), max(rates)
    for p in points:
        total = p["rate"] + p["distortion"]
        ax.plot([lo, hi], [total - lo, total - hi], ":", color="lightgrey", linewidth=0.8, zorder=0)
    span = max(distortions) - min(distortions) or 1.0
    ax.set_ylim(min(distortions) - 0.1 * span, max(distortions) + 0.1 * span)
    ax.set_xlabel("rate R = E KL(q(z|x) || p(z)) (nats)")
    ax.set_ylabel("distortion D = -E log p(x|z) (nats)")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    return path
