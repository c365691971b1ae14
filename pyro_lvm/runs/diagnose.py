"""``pyro-lvm diagnose RUN_DIR``: posterior-collapse diagnostics of a trained ``vae`` or ``sbn`` run.

On the first ``--images`` test images of the data the run was trained on, it prints rate,
distortion, ELBO, active units, KL per latent dimension and the mutual information estimates of
:func:`pyro_lvm.evaluate.collapse_diagnostics`, and writes into ``--out`` (default: the run
folder) ``diagnostics.json``, ``kl_per_dim.png`` (a bar per latent dimension, active ones in
colour) and ``traversal.png`` (each active dimension, the most informative first, varied over the
prior's quantiles, or for Bernoulli latents switched off and on, with the others at the first
test image's posterior mean: the figure of beta-VAE papers).
"""
import os

import torch

from pyro_lvm.errors import UsageError
from pyro_lvm.evaluate import collapse_diagnostics, latent_traversal
from pyro_lvm.evaluate.diagnostics import ACTIVE_THRESHOLD
from pyro_lvm.files import write_json
from pyro_lvm.plots import plot_kl_per_dim, plot_traversal
from pyro_lvm.runs.base import positive_float, positive_int

HELP = "posterior-collapse diagnostics of a vae or sbn run: rate, distortion, active units, KL per dimension, MI"
FIX = "give the --out folder of a pyro-lvm train vae or sbn run"


def add_arguments(parser):
    parser.add_argument("run_dir", help="a vae or sbn run folder (or its checkpoint.pt)")
    parser.add_argument("--images", type=positive_int, default=1000,
                        help="the first N test images (default 1000; the mutual information costs N^2 densities)")
    parser.add_argument("--threshold", type=positive_float, default=ACTIVE_THRESHOLD,
                        help="a unit is active when Var_x E_q[z_u] exceeds this (default 0.01, Burda et al.)")
    parser.add_argument("--max-dims", type=positive_int, default=10, help="rows of traversal.png (default 10)")
    parser.add_argument("--data", default=None, help="a run's data set, where its config does not say")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for diagnostics.json and the PNGs (default: the run)")


def load_for_diagnosis(path, data=None, data_root=None, images=None, labels=False):
    """The model, the first ``images`` test images and the folder of the run at ``path`` (and, with
    ``labels=True``, their class labels or ``None``).

    :raises UsageError: for a path that is not a run, or a run without a Pyro model/guide pair.
    """
    from pyro_lvm.runs import get_run_kind, load_run, read_config
    from pyro_lvm.runs.fitted import FitRunKind
    from pyro_lvm.runs.saved import checkpoint_path, run_kind_of_checkpoint

    if not os.path.exists(path):
        raise UsageError(f"no run folder at {path}; {FIX}")
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    checkpoint = checkpoint_path(path)
    if not os.path.isfile(checkpoint):
        raise UsageError(f"{path} is not a run folder (it has no checkpoint.pt); {FIX}")
    name = (read_config(run_dir) or {}).get("run_kind") or run_kind_of_checkpoint(checkpoint)
    kind = get_run_kind(name)
    if not isinstance(kind, FitRunKind):
        raise UsageError(f"{path} is a {name} run, whose model is not a Pyro model/guide pair with a latent "
                         f"site; diagnose reads vae and sbn runs")
    model, state = load_run(checkpoint)
    dataset = kind.saved_dataset(run_dir, model, state, data, data_root)
    if labels:
        classes = None if dataset.test_labels is None else dataset.test_labels[:images]
        return model, dataset.test[:images], run_dir, classes
    return model, dataset.test[:images], run_dir


def _traversal_dims(result, max_dims):
    """Active dimensions, the largest KL (or mean's variance) first."""
    score = result.kl_per_dim if result.kl_per_dim is not None else result.unit_variances
    order = torch.argsort(score, descending=True).tolist()
    return [d for d in order if result.active_mask[d]][:max_dims]


def run(args):
    """Diagnose the run ``args.run_dir``: print the table, write the JSON and the PNGs.

    :returns: dict with ``diagnostics`` (:class:`~pyro_lvm.evaluate.Diagnostics`) and ``files``.
    """
    model, test, run_dir = load_for_diagnosis(args.run_dir, args.data, args.data_root, args.images)
    out = args.out or run_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file; give a folder for diagnostics.json and the PNGs")
    site = getattr(model, "latent_site", "z")
    print(f"diagnose: {len(test)} test images of {run_dir}", flush=True)
    result = collapse_diagnostics(model.model, model.guide, test, site=site, threshold=args.threshold,
                                  seed=args.seed)
    print(result.format(), flush=True)
    files = [write_json(os.path.join(out, "diagnostics.json"), result.to_dict())]
    if result.kl_per_dim is not None:
        files.append(plot_kl_per_dim(result.kl_per_dim, result.active_mask, os.path.join(out, "kl_per_dim.png"),
                                     title=f"KL per latent dimension: {os.path.basename(os.path.abspath(run_dir))}"))
    else:
        print("note: no kl_per_dim.png: the guide does not factorize over the latent dimensions")
    dims = _traversal_dims(result, args.max_dims)
    if dims:
        images, values = latent_traversal(model.model, model.guide, test[:1], dims, site=site)
        varied = "bit 0, 1" if len(values) == 2 else "prior quantiles 5%-95%"
        files.append(plot_traversal(images, dims, os.path.join(out, "traversal.png"), varied=varied))
    else:
        print("note: no traversal.png: no latent dimension is active")
    print(f"wrote {', '.join(os.path.basename(f) for f in files)} to {out}")
    return {"diagnostics": result, "files": files}
