"""PNG figures of a VQ-VAE run: reconstructions, prior samples and codebook usage.

Image grids go through the shared :func:`pyro_lvm.plots.save_image_grid`; the usage histogram,
which the shared plots do not cover, is drawn here.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pyro_lvm.plots import save_image_grid  # noqa: E402
from pyro_lvm.plots.figure import save_figure  # noqa: E402
from pyro_lvm.vqvae.model import evaluating  # noqa: E402


def save_reconstructions(model, images, path, nrow=10):
    """Rows of originals, each followed by a row of their reconstructions."""
    with evaluating(model):
        recon = model(images).reconstruction
    pairs = []
    for start in range(0, images.shape[0], nrow):
        pairs += [images[start:start + nrow], recon[start:start + nrow]]
    return save_image_grid(torch.cat(pairs), path, nrow=nrow,
                           title="originals (odd rows) and reconstructions (even rows)")


def save_prior_samples(model, prior, path, num_samples=100, temperature=1.0, generator=None,
                       nrow=10):
    """Sample code maps from the prior, decode them, and save the grid. Returns the images."""
    with evaluating(model), evaluating(prior):
        images = model.decode(prior.sample(num_samples, temperature, generator))
    save_image_grid(images, path, nrow=nrow, title=f"samples from the PixelCNN prior (T={temperature:g})")
    return images


def plot_codebook_usage(usages, path, title=None, labels=None):
    """One panel per histogram: code counts sorted from most to least used, on a log scale.

    :param list usages: :class:`~pyro_lvm.vqvae.health.CodebookUsage` per level, coarsest first
        (or any list of histograms to compare side by side).
    :param list labels: a name per panel; default ``codes``, or ``top``/``bottom codes``.
    """
    names = labels or (["codes"] if len(usages) == 1 else ["top codes", "bottom codes"])
    fig, axes = plt.subplots(1, len(usages), figsize=(5 * len(usages), 3.5), dpi=100, squeeze=False)
    for ax, usage, name in zip(axes[0], usages, names):
        summary = usage.summary()
        counts = usage.counts.sort(descending=True).values.float()
        used = summary["codes_used"]
        ax.bar(range(used), counts[:used].numpy(), width=1.0, color="tab:blue")
        if used < usage.num_codes:
            ax.axvspan(used - 0.5, usage.num_codes - 0.5, color="tab:red", alpha=0.15,
                       label="dead: never assigned")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlim(-0.5, usage.num_codes - 0.5)
        if used:
            ax.set_yscale("log")
        ax.set_xlabel(f"{name}, most to least used")
        ax.set_ylabel("assignments")
        ax.set_title(f"{summary['codes_used']}/{usage.num_codes} used, "
                     f"perplexity {summary['perplexity']:.1f}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
    return path
