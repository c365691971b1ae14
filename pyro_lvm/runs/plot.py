"""``pyro-lvm plot RUN_DIR --kind KIND``: draw one figure of a trained ``vae`` or ``sbn`` run.

The kinds (:data:`FIGURES`) and the PNG each writes into ``--out`` (default: the run folder):

* ``samples`` (``samples.png``), ``reconstructions`` (``reconstructions.png``: each test image
  with its reconstruction beside it), ``loss`` (``loss.png``, from ``metrics.json``);
* ``manifold`` (``manifold.png``: :func:`~pyro_lvm.plots.latent_manifold`), ``scatter``
  (``scatter.png``: test images' posterior means by class, PCA beyond 2-D), ``interpolation``
  (``interpolation.png``: linear and, for a Gaussian prior, spherical paths);
* ``kl`` (``kl_per_dim.png``) and ``traversal`` (``traversal.png``): the figures of
  ``pyro-lvm diagnose``, without its mutual-information estimates.

A training run draws :data:`TRAINING_FIGURES` (those that take a few seconds) itself;
:func:`draw_figure` is what both call. Manifold and interpolation need a continuous prior, so a
run with binary latents (``sbn``) has neither.
"""
import json
import os

import torch

from pyro_lvm.errors import UsageError
from pyro_lvm.evaluate import collapse_diagnostics, latent_traversal
from pyro_lvm.plots import (latent_interpolation, latent_manifold, plot_history, plot_interpolation,
                            plot_kl_per_dim, plot_latent_scatter, plot_manifold, plot_traversal, posterior_means,
                            save_image_grid, save_reconstruction_grid)
from pyro_lvm.runs.base import positive_int

HELP = "draw one figure of a vae or sbn run: manifold, scatter, interpolation, samples, reconstructions, loss, kl, ..."
FIGURES = ("manifold", "scatter", "interpolation", "samples", "reconstructions", "loss", "kl", "traversal")
#: drawn by every training run (a few seconds together on the CPU)
TRAINING_FIGURES = ("samples", "reconstructions", "loss", "manifold", "scatter", "interpolation")
#: figures that need a continuous prior
CONTINUOUS_ONLY = ("manifold", "interpolation")
MANIFOLD_SIZE, INTERPOLATION_PAIRS, INTERPOLATION_STEPS = 15, 4, 10
FILES = {"kl": "kl_per_dim.png"}


def add_arguments(parser):
    parser.add_argument("run_dir", help="a vae or sbn run folder (or its checkpoint.pt)")
    parser.add_argument("--kind", choices=FIGURES, required=True, action="append",
                        help="the figure (repeat for several)")
    parser.add_argument("--images", type=positive_int, default=1000,
                        help="test images for the scatter, the choice of active dimensions and the KL (default 1000)")
    parser.add_argument("--dims", type=int, nargs=2, default=None,
                        help="the manifold's two latent dimensions (default: the two most active)")
    parser.add_argument("--size", type=positive_int, default=MANIFOLD_SIZE, help="manifold grid side (default 15)")
    parser.add_argument("--data", default=None, help="a run's data set, where its config does not say")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=None, help="folder for the PNGs (default: the run folder)")


def has_continuous_prior(model, x):
    from pyro_lvm.plots.latent import _prior

    return not _prior(model.model, x, getattr(model, "latent_site", "z")).has_enumerate_support


def figures_for(model, x):
    """The figures of :data:`FIGURES` that make sense for ``model``."""
    continuous = has_continuous_prior(model, x)
    return tuple(f for f in FIGURES if continuous or f not in CONTINUOUS_ONLY)


def file_name(figure):
    return FILES.get(figure, f"{figure}.png")


@torch.no_grad()
def draw_figure(figure, out, model, test, labels=None, history=None, dims=None, size=MANIFOLD_SIZE, seed=0):
    """Draw ``figure`` of ``model`` (a package model with ``model``/``guide``) into the folder ``out``.

    :param test: test images (the scatter uses them all, the grids the first few).
    :param labels: their classes (the scatter's colours), or ``None``.
    :param history: the run's epochs (``loss``).
    :returns: the path written.
    :raises UsageError: for a figure the model has no sense for.
    """
    path = os.path.join(out, file_name(figure))
    site = getattr(model, "latent_site", "z")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if figure in CONTINUOUS_ONLY and not has_continuous_prior(model, test):
            raise UsageError(f"the {figure} needs a continuous prior; this model's latents are discrete: "
                             "draw --kind traversal instead")
        if figure == "samples":
            return save_image_grid(model.sample(64), path, nrow=8, title="64 samples from the model")
        if figure == "reconstructions":
            originals = test[:32]
            shown = model.display(originals) if hasattr(model, "display") else originals  # 8-bit -> [0, 1]
            return save_reconstruction_grid(shown, model.reconstruct(originals), path)
        if figure == "loss":
            if not history:
                raise UsageError("the run has no metrics.json with its epochs; the loss curve needs them")
            return plot_history(history, path, keys=[k for k in ("train_loss", "test_loss") if k in history[0]],
                                ylabel="loss (nats per image)", title="training curve")
        if figure == "manifold":
            images, _, chosen = latent_manifold(model.model, model.guide, test, dims=dims, size=size, site=site)
            return plot_manifold(images, chosen, path)
        if figure == "scatter":
            means = posterior_means(model.guide, test, site)
            return plot_latent_scatter(means, None if labels is None else labels[:len(test)], path,
                                       title=f"posterior means of {len(test)} test images"
                                             + (" (first 2 principal components)" if means.shape[1] > 2 else ""))
        if figure == "interpolation":
            pairs = min(INTERPOLATION_PAIRS, len(test) // 2)
            x0, x1 = test[:pairs], test[pairs:2 * pairs]
            paths = latent_interpolation(model.model, model.guide, x0, x1, INTERPOLATION_STEPS, site=site)
            return plot_interpolation(paths, x0, x1, path)
        result = collapse_diagnostics(model.model, model.guide, test, site=site, mutual_information=False,
                                      lower_bound=False, seed=seed)
        if figure == "kl":
            if result.kl_per_dim is None:
                raise UsageError("the guide does not factorize over the latent dimensions: no KL per dimension")
            return plot_kl_per_dim(result.kl_per_dim, result.active_mask, path)
        score = result.kl_per_dim if result.kl_per_dim is not None else result.unit_variances
        chosen = torch.argsort(score, descending=True)[:10].tolist()
        images, values = latent_traversal(model.model, model.guide, test[:1], chosen, site=site)
        return plot_traversal(images, chosen, path, varied="bit 0, 1" if len(values) == 2 else
                              "prior quantiles 5%-95%")


def read_history(run_dir):
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        history = json.load(f)
    return history if isinstance(history, list) else None


def run(args):
    """Draw each ``--kind`` of ``args.run_dir``; returns ``{"files": [...]}``."""
    from pyro_lvm.runs.diagnose import load_for_diagnosis

    model, test, run_dir, labels = load_for_diagnosis(args.run_dir, args.data, args.data_root, args.images,
                                                      labels=True)
    out = args.out or run_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file; give a folder for the PNGs")
    files = [draw_figure(figure, out, model, test, labels, read_history(run_dir), dims=args.dims, size=args.size)
             for figure in dict.fromkeys(args.kind)]
    print(f"wrote {', '.join(os.path.basename(f) for f in files)} to {out}")
    return {"files": files}
