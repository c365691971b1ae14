"""The ``pyro-lvm`` command.

``pyro-lvm train vae --data auto --objective iwae --particles 5 --epochs 10 --out runs/vae``
trains into a run folder (resuming if it holds a checkpoint) and prints the test
log-likelihood table; ``pyro-lvm evaluate runs/vae --samples 5000`` re-evaluates it.
``pyro-lvm train gmm ...`` fits a Gaussian mixture (enumerated assignments, EM beside it);
``pyro-lvm train vqvae ...`` trains the VQ-VAE of :mod:`pyro_lvm.vqvae` (and ``evaluate`` knows
its run folders).
"""
import argparse
import json
import sys

from pyro_lvm.errors import CheckpointError, NonFiniteLossError
from pyro_lvm.objectives import OBJECTIVES

SMOKE = {"data": "embedded", "eval_samples": 20, "eval_images": 50, "train_subset": 512}


def _add_vae_arguments(p):
    p.add_argument("--data", default="auto",
                   help="mnist, fashion-mnist, binarized-mnist, embedded, or auto (MNIST if found, else embedded)")
    p.add_argument("--data-root", default=None, help="folder with MNIST/raw etc. (default: $PYRO_LVM_DATA)")
    p.add_argument("--binarize", choices=["static", "dynamic"], default=None,
                   help="default: dynamic for a Bernoulli likelihood on grayscale data")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="elbo")
    p.add_argument("--particles", type=int, default=None,
                   help="samples per datum K (default: 1 for elbo/meanfield/tracegraph, 5 for iwae/renyi)")
    p.add_argument("--alpha", type=float, default=0.5, help="Renyi alpha (objective renyi)")
    p.add_argument("--epochs", type=int, default=None, help="default 10 (1 with --smoke)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=["constant", "exponential", "burda"], default="constant",
                   help="burda: Burda et al.'s 3^i-epoch stages (lr 1e-3 * 10^(-i/7)) scaled to --epochs")
    p.add_argument("--gamma", type=float, default=1.0, help="per-epoch decay of the exponential schedule")
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--latent-dim", type=int, default=50)
    p.add_argument("--hidden", type=int, nargs="+", default=[400], help="MLP hidden widths")
    p.add_argument("--channels", type=int, nargs=2, default=[32, 64], help="conv channels")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli")
    p.add_argument("--gaussian-scale", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-samples", type=int, default=1000, help="K for the final test log-likelihood")
    p.add_argument("--eval-images", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument("--out", required=True, help="run folder (checkpoint, metrics, PNGs)")
    p.add_argument("--smoke", action="store_true", help="a few seconds on the embedded data, to check the set-up")
    p.add_argument("--no-progress", action="store_true")


def build_parser():
    parser = argparse.ArgumentParser(prog="pyro-lvm", description="Deep latent-variable models on Pyro.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model into a run folder")
    models = train.add_subparsers(dest="model", required=True)
    _add_vae_arguments(models.add_parser("vae", help="Gaussian VAE (Pyro model/guide pair)"))
    from pyro_lvm.gmm_runs import add_gmm_arguments

    add_gmm_arguments(models.add_parser("gmm", help="Gaussian mixture, assignments enumerated (with an EM baseline)"))
    try:
        from pyro_lvm.vqvae.cli import add_train_arguments
    except ImportError:  # pragma: no cover - the VQ-VAE package is optional at import time
        add_train_arguments = None
    if add_train_arguments is not None:
        add_train_arguments(models.add_parser("vqvae", help="VQ-VAE in plain torch with a PixelCNN prior"))
    evaluate = commands.add_parser("evaluate", help="importance-sampled test log-likelihood of a run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--samples", type=int, default=5000, help="importance samples per image (K)")
    evaluate.add_argument("--images", type=int, default=None, help="only the first N test images")
    evaluate.add_argument("--batch-size", type=int, default=None)
    evaluate.add_argument("--data-root", default=None)
    evaluate.add_argument("--no-progress", action="store_true")
    return parser


def _train_vae(args):
    from pyro_lvm.runs import format_evaluation, train_vae

    options = {k: v for k, v in vars(args).items() if k not in ("command", "model", "smoke", "no_progress", "out")}
    options["hidden"] = tuple(options["hidden"])
    options["channels"] = tuple(options["channels"])
    options["train_subset"] = None
    if args.smoke:
        options.update(SMOKE)
    if options["epochs"] is None:
        options["epochs"] = 1 if args.smoke else 10
    summary = train_vae(args.out, progress=not args.no_progress, **options)
    last = summary["history"][-1] if summary["history"] else {}
    print(f"trained {last.get('epoch', 0)} epochs; run folder: {args.out}")
    print(format_evaluation(summary["evaluation"]))
    return summary


def _is_vqvae_run(run_dir):
    """Whether a run folder's checkpoint was written by :mod:`pyro_lvm.vqvae`."""
    import os

    import torch

    path = os.path.join(run_dir, "checkpoint.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # missing or corrupt: the VAE loader reports it with the right message
        return False
    return isinstance(state, dict) and state.get("format") == "pyro_lvm.vqvae.checkpoint"


def run(argv=None):
    """Parse ``argv`` and run the command; returns its summary (for tests and scripts)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "evaluate" and _is_vqvae_run(args.run_dir):
            from pyro_lvm.vqvae.cli import run_evaluate

            evaluation = run_evaluate(args.run_dir, args)
            print(json.dumps(evaluation, indent=2, default=str))
            return evaluation
        if args.command == "evaluate":
            from pyro_lvm.runs import evaluate_run, format_evaluation

            evaluation = evaluate_run(args.run_dir, samples=args.samples, batch_size=args.batch_size,
                                      images=args.images, data_root=args.data_root, progress=not args.no_progress)
            print(format_evaluation(evaluation))
            return evaluation
        if args.model == "vae":
            return _train_vae(args)
        if args.model == "gmm":
            from pyro_lvm.gmm_runs import run_gmm

            return run_gmm(args)
        from pyro_lvm.vqvae.cli import run_train

        summary = run_train(args)
        print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (list, dict))}, indent=2,
                         default=str))
        return summary
    except (CheckpointError, NonFiniteLossError, ValueError, FileNotFoundError) as e:
        print(f"pyro-lvm: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv=None):
    """Console entry point: exit status 0 on success, 2 on a named error."""
    run(argv)
    return 0


if __name__ == "__main__":
    main()
