"""Training curves from a fit history."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from pyro_lvm.plots.figure import save_figure  # noqa: E402


def plot_history(history, path, keys=None, xlabel="epoch", ylabel="loss (nats)", title=None):
    """Plot per-epoch metrics as lines and save a PNG.

    :param list history: one dict per epoch (for example ``{"epoch": 1, "train_loss": ...}``).
    :param str path: where to write the PNG.
    :param list keys: metric names to draw; default every numeric key but ``epoch``.
    :returns: the path written.
    """
    if not history:
        raise ValueError("plot_history needs at least one epoch of history")
    if keys is None:
        keys = [k for k, v in history[0].items()
                if k != "epoch" and isinstance(v, (int, float))]
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for key in keys:
        points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=key)
    if xlabel == "epoch":  # epochs are whole numbers
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(fig, ax, path, xlabel, ylabel, title)


def plot_estimator_curves(rows, path, exact=None, title="log-likelihood estimators"):
    """Estimate +- 2 standard errors against the number of samples K (log axis), one line per estimator.

    :param list rows: dicts with ``estimator``, ``K``, ``log_likelihood`` and ``se_mc``
        (as from :func:`pyro_lvm.evaluate.compare_likelihood_estimators`).
    :param float exact: draw the exact value as a horizontal line.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    for name in dict.fromkeys(r["estimator"] for r in rows):
        mine = [r for r in rows if r["estimator"] == name]
        ks = [r["K"] for r in mine]
        est = [r["log_likelihood"] for r in mine]
        err = [2 * r["se_mc"] for r in mine]
        ax.errorbar(ks, est, yerr=err, marker="o", markersize=3, capsize=3, label=name)
    if exact is not None:
        ax.axhline(exact, color="black", linestyle="--", linewidth=1, label="exact (enumeration)")
    ax.set_xscale("log")
    return _finish(fig, ax, path, "samples K", "log p(x) estimate (nats per datum)", title)


def _finish(fig, ax, path, xlabel, ylabel, title):
    """Label, legend and grid the axes, then write the PNG and close the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    return path
