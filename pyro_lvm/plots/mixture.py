"""A Gaussian mixture drawn over its data: points coloured by assignment, 1- and 2-sigma ellipses."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from pyro_lvm.plots.figure import save_figure  # noqa: E402

__all__ = ["plot_mixture"]


def plot_mixture(x, labels, params, path, title=None, truth=None):
    """Scatter the first two coordinates coloured by ``labels`` with 1- and 2-sigma ellipses; save PNG.

    :param MixtureParams params: the learned mixture (solid ellipses).
    :param MixtureParams truth: optional generating mixture (dashed ellipses).
    """
    x, labels = x.detach().cpu(), labels.detach().cpu()
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    cmap = plt.get_cmap("tab10")
    ax.scatter(x[:, 0], x[:, 1], c=(labels % 10).numpy(), cmap=cmap, vmin=0, vmax=9, s=4, alpha=0.5, linewidths=0)
    for mixture, style in ((truth, "--"), (params, "-")):
        if mixture is None:
            continue
        for k in range(mixture.num_components):
            _ellipses(ax, mixture.locs[k, :2], mixture.covariances[k, :2, :2], cmap(k % 10), style)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    default = "points coloured by assignment;\nlearned 1- and 2-sigma ellipses" + (
        " (solid), true ones (dashed)" if truth is not None else "")
    ax.set_title(title or default, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    save_figure(fig, path)
    return path


def _ellipses(ax, loc, cov, colour, style):
    values, vectors = torch.linalg.eigh(cov.double())
    angle = math.degrees(math.atan2(vectors[1, 1].item(), vectors[0, 1].item()))
    for radius in (1, 2):
        width, height = (2 * radius * values.clamp_min(0).sqrt()).tolist()[::-1]
        ax.add_patch(Ellipse(loc.tolist(), width, height, angle=angle, fill=False, edgecolor="black" if
                             style == "--" else colour, linestyle=style, linewidth=1.5 if style == "-" else 1.0))
    ax.plot(*loc.tolist(), marker="x" if style == "-" else "+", color="black", markersize=8)
