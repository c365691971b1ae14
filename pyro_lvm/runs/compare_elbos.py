"""``pyro-lvm compare-elbos``: the estimator harness on a trained run, or on a model with exact answers.

``pyro-lvm compare-elbos --model linear-gaussian --out runs/elbos`` compares the ELBO family
(``elbo``, ``meanfield``, ``iwae`` and ``renyi`` at each ``--ks``, ``iwae`` with the ``dreg``/``stl``
gradients where the objectives offer them; ``elbo``, ``tracegraph``, ``iwae`` (VIMCO) and exact
enumeration for discrete latents) on a small built-in model whose :math:`\\log p(x)` is exact
(:mod:`pyro_lvm.evaluate.exact_cases`: ``linear-gaussian``, ``mixture``, ``bernoulli``), so each
bound's gap is known. ``pyro-lvm compare-elbos RUN_DIR --out DIR`` does the same for the model
of a ``vae`` or ``sbn`` run folder, on the first ``--images`` test images of the data it was
trained on. It prints the table (:func:`pyro_lvm.evaluate.compare_estimators`) and writes
``estimators.csv``, ``estimators.json``, ``bound_vs_k.png`` and ``snr_vs_k.png`` into ``--out``.
``--smoke`` takes seconds.
"""
import math
import os

import torch

from pyro_lvm.errors import UsageError
from pyro_lvm.evaluate import compare_estimators
from pyro_lvm.evaluate.exact_cases import CASES, exact_case
from pyro_lvm.evaluate.specs import has_discrete_latents, standard_specs
from pyro_lvm.plots import plot_bound_vs_k, plot_snr_vs_k
from pyro_lvm.runs.base import bounded_number, positive_float, positive_int

HELP = "compare ELBO estimators (bound, gap, k-hat, gradient SNR, time, memory) on a run or an exact model"
#: settings that --smoke fills in or caps: (normal, smoke)
SIZES = {"ks": ([1, 10, 100], [1, 5]), "repeats": (20, 4), "images": (100, 16)}
#: enumeration is offered while 2^latents x data x pixels stays below this
MAX_ENUMERATED = 2 ** 24

alpha_type = bounded_number(float, lambda v: math.isfinite(v) and v != 1, "a finite number other than 1")
repeats_type = bounded_number(int, lambda v: v >= 2, "an integer >= 2")


def add_arguments(parser):
    parser.add_argument("run_dir", nargs="?", default=None, help="a vae or sbn run folder (or its checkpoint)")
    parser.add_argument("--model", choices=CASES, default=None,
                        help="a built-in model with exact log p(x), instead of a run folder")
    parser.add_argument("--ks", type=positive_int, nargs="+", default=None, help="values of K (default 1 10 100)")
    parser.add_argument("--alphas", type=alpha_type, nargs="+", default=[0.5], help="Renyi alphas (default 0.5)")
    parser.add_argument("--repeats", type=repeats_type, default=None, help="draws of each estimator (default 20)")
    parser.add_argument("--images", type=positive_int, default=None,
                        help="data points: the first N test images of a run, or N draws of a built-in model "
                             "(default 100)")
    parser.add_argument("--guide-scale", type=positive_float, default=None,
                        help="built-in models: how far the guide is from the posterior (see pyro_lvm.evaluate."
                             "exact_cases)")
    parser.add_argument("--data", default=None, help="a run's data set, where its config does not say")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for estimators.csv/.json, bound_vs_k.png, snr_vs_k.png")
    parser.add_argument("--smoke", action="store_true", help="seconds: K in (1, 5), 4 repeats, 16 data")
    parser.add_argument("--no-progress", action="store_true")


def _sizes(args):
    sizes = {}
    for key, (normal, small) in SIZES.items():
        given = getattr(args, key)
        if given is None:
            sizes[key] = small if args.smoke else normal
        elif args.smoke and key == "ks":
            sizes[key] = [k for k in given if k <= max(small)] or small
        else:
            sizes[key] = min(given, small) if args.smoke else given
    return sizes


def _builtin(name, images, guide_scale, seed):
    case = exact_case(name, num_data=images, guide_scale=guide_scale, seed=seed)
    return case.model, case.guide, case.data, case.exact_log_prob, case.enumeration


def _from_run(path, data, data_root, images):
    """The model/guide pair of a run folder and the first ``images`` test images of its data."""
    from pyro_lvm.runs import get_run_kind, load_run, read_config

    fix = "give the --out folder of a pyro-lvm train vae or sbn run, or --model"
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "checkpoint.pt")):
        raise UsageError(f"no checkpoint.pt in {path}; {fix}")
    if os.path.isfile(path) and not path.endswith((".pt", ".pth")):
        raise UsageError(f"{path} is not a checkpoint; {fix}")
    if not os.path.exists(path):
        raise UsageError(f"no run folder at {path}; {fix}")
    model, state = load_run(path)
    if not (callable(getattr(model, "model", None)) and callable(getattr(model, "guide", None))):
        raise UsageError(f"{path} holds a {type(model).__name__}, which has no Pyro model/guide pair; "
                         "compare-elbos compares the estimators of vae and sbn runs")
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    kind = (read_config(run_dir) or {}).get("run_kind") or (state.get("config") or {}).get("run_kind")
    if kind is None:
        raise UsageError(f"{path} does not say which data it was trained on; pass --data")
    test = get_run_kind(kind).saved_dataset(run_dir, model, state, data, data_root).test[:images]
    enumeration = None
    if hasattr(model, "enum_model") and 2 ** model.latent_dim * test[0].numel() * len(test) <= MAX_ENUMERATED:
        enumeration = (model.enum_model, model.enum_guide)
    return model.model, model.guide, test, None, enumeration


def _output_folder(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path} is a file; give a folder for the tables and figures")
    os.makedirs(path, exist_ok=True)
    return path


def run(args):
    """Run the comparison ``args`` asks for; print the table, write the files.

    :returns: dict with ``rows`` (the table's rows), ``exact`` and ``files`` (paths written).
    """
    if (args.run_dir is None) == (args.model is None):
        raise UsageError("give either a run folder or --model (linear-gaussian, mixture or bernoulli), not "
                         + ("both" if args.model else "neither"))
    sizes = _sizes(args)
    out = _output_folder(args.out)
    if args.model:
        model, guide, data, exact, enumeration = _builtin(args.model, sizes["images"], args.guide_scale, args.seed)
        what = f"{args.model}, {len(data)} data"
    else:
        model, guide, data, exact, enumeration = _from_run(args.run_dir, args.data, args.data_root, sizes["images"])
        what = f"{args.run_dir}, {len(data)} test images"
    specs = standard_specs(sizes["ks"], args.alphas, discrete=has_discrete_latents(guide, data),
                           enumeration=enumeration)
    print(f"compare-elbos: {len(specs)} estimators on {what}, {sizes['repeats']} draws each", flush=True)
    with torch.random.fork_rng(devices=[]):
        table = compare_estimators(model, guide, data, specs, repeats=sizes["repeats"], exact_log_prob=exact,
                                   seed=args.seed, progress=not args.no_progress)
    print(table.format(), flush=True)
    files = [table.write_csv(os.path.join(out, "estimators.csv")),
             table.write_json(os.path.join(out, "estimators.json")),
             plot_bound_vs_k(table, os.path.join(out, "bound_vs_k.png"), title=f"bounds: {what}")]
    if table.groups:
        files.append(plot_snr_vs_k(table, os.path.join(out, "snr_vs_k.png"), table.groups,
                                   title=f"gradient SNR: {what}"))
    print(f"wrote {', '.join(os.path.basename(f) for f in files)} to {out}")
    return {"rows": table.rows, "exact": table.exact, "files": files}
