"""Estimator comparisons against the number of samples K: the bound, and the gradient's SNR.

Both take the rows of :func:`pyro_lvm.evaluate.compare_estimators` (an ``EstimatorTable`` or a
list of its row dicts) and draw one line per estimator family (``row["estimator"]``) over ``K``
on a log axis; rows that were skipped or have no value are left out.
"""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402
from pyro_lvm.plots.figure import save_figure  # noqa: E402


def _families(rows, key):
    """``family -> [(K, row)]`` sorted by K, for rows whose ``key`` is a number."""
    lines = {}
    for row in rows:
        value = row.get(key)
        if row.get("K") is None or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        lines.setdefault(row["estimator"], []).append((row["K"], row))
    return {name: sorted(points, key=lambda p: p[0]) for name, points in lines.items()}


def plot_bound_vs_k(rows, path, exact=None, title="bounds against K", exact_label="exact log p(x)"):
    """Each estimator's bound per datum +- 2 standard errors against K; the exact log p(x) dashed.

    :param rows: the harness's table or rows (``estimator``, ``K``, ``value``, ``value_se``).
    :param float exact: the exact log-likelihood per datum, if known (default: the table's), or
        a reference value (name it with ``exact_label``).
    :returns: the path written.
    """
    rows = list(rows)
    if exact is None:
        exact = next((r["exact"] for r in rows if r.get("exact") is not None), None)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, points in _families(rows, "value").items():
        ks = [k for k, _ in points]
        err = [2 * r["value_se"] if not math.isnan(r.get("value_se", math.nan)) else 0.0 for _, r in points]
        ax.errorbar(ks, [r["value"] for _, r in points], yerr=err, marker="o", markersize=3, capsize=3, label=name)
    if exact is not None:
        ax.axhline(exact, color="black", linestyle="--", linewidth=1, label=exact_label)
    _k_axis(ax, rows)
    ax.set_ylabel("bound (nats per datum)")
    ax.legend(fontsize="small")
    return _save(fig, path, title)


def plot_snr_vs_k(rows, path, groups=None, title="gradient signal-to-noise ratio"):
    """The mean SNR of each parameter group's gradient against K, one panel per group (log axes).

    :param groups: group names (default: every ``{group}_snr`` key of the rows).
    :returns: the path written.
    """
    rows = list(rows)
    if groups is None:
        groups = list(dict.fromkeys(k[: -len("_snr")] for r in rows for k in r if k.endswith("_snr")))
    if not groups:
        raise ValueError("no gradient SNR in these rows: run compare_estimators with gradients=True")
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.8), dpi=100, squeeze=False)
    for ax, group in zip(axes[0], groups):
        for name, points in _families(rows, f"{group}_snr").items():
            finite = [(k, r[f"{group}_snr"]) for k, r in points if 0 < r[f"{group}_snr"] < math.inf]
            if finite:
                ax.plot(*zip(*finite), marker="o", markersize=3, label=name)
        ax.set_yscale("log")
        _k_axis(ax, rows)
        ax.set_title(group)
    axes[0][0].set_ylabel("mean |E g| / sd(g) over coordinates")
    axes[0][-1].legend(fontsize="small")
    return _save(fig, path, title)


def _k_axis(ax, rows):
    """A log axis over K, ticked at the values of K compared."""
    ax.set_xscale("log")
    ks = sorted({r["K"] for r in rows if r.get("K") is not None})
    if ks:
        ax.set_xticks(ks)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("samples K")
    ax.grid(alpha=0.3)


def _save(fig, path, title):
    fig.suptitle(title)
    save_figure(fig, path)
    return path
