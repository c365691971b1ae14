"""Figures of posterior collapse: KL per latent dimension, and latent traversals."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pyro_lvm.plots.images import save_image_grid  # noqa: E402


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
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
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
