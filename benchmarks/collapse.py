"""Posterior collapse with an autoregressive decoder, and its remedies, on binarized MNIST.

A VAE whose decoder is a gated PixelCNN conditioned on z (``VAE(decoder="pixelcnn")``) can model
the pixels without the latent code, and the plain ELBO then tends to switch the code off: the
rate KL(q(z|x) || p(z)) falls towards 0 (Bowman et al. 2016; Chen et al. 2017). Each variant below
trains the same network for the same CPU budget (``--minutes`` of this process's CPU time, one
thread, Adam lr 1e-3, dynamic binarization, the first ``--train-images`` training images so that
the budget, checked after each epoch, is not overshot by much) and is then measured on the first ``--eval-images``
test images (binarized once with the seed): rate, distortion, active units (Burda et al. 2015),
the aggregate-posterior mutual information I_q(x; z) with its standard error (Hoffman & Johnson
2016; at most log N), the test ELBO (plain, beta = 1, whatever the training objective) and the test
NLL by importance sampling with K = ``--eval-samples``.

Variants: ``plain`` (the ELBO), ``warmup`` (beta rising linearly from 0 to 1 over
``--warmup-steps``; Bowman et al. 2016, Sonderby et al. 2016), ``freebits-L`` (the free-bits
objective of Kingma et al. 2016 with lambda = L nats per latent dimension) and ``beta-B`` (a
constant KL weight B < 1; Higgins et al. 2017).

Usage: ``python benchmarks/collapse.py --data-root ../shared/data --minutes 5``
"""
import argparse
import math
import time

import torch

from common import environment, prepare, print_table, write_json
from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import collapse_diagnostics, elbo_terms, log_likelihood
from pyro_lvm.models import VAE
from pyro_lvm.objectives import LinearWarmup, get_objective
from pyro_lvm.train import TimeBudget, fit


def objective_for(variant, args):
    """The training objective of a variant name."""
    if variant == "plain":
        return get_objective("meanfield")
    if variant == "warmup":
        return get_objective("meanfield", beta=LinearWarmup(steps=args.warmup_steps, beta0=0.0))
    kind, _, value = variant.partition("-")
    if kind == "freebits":
        return get_objective("meanfield", free_bits=float(value))
    if kind == "beta":
        return get_objective("meanfield", beta=float(value))
    raise ValueError(f"unknown variant {variant!r}")


def run_one(variant, data, test, args):
    torch.manual_seed(args.seed)
    vae = VAE(hidden=tuple(args.hidden), latent_dim=args.latent_dim, activation="tanh", decoder="pixelcnn",
              pixelcnn_layers=args.layers, pixelcnn_channels=args.channels)
    timer = TimeBudget(args.minutes, clock="cpu")
    result = fit(vae.model, vae.guide, objective_for(variant, args), data.train_loader(args.batch_size),
                 epochs=10 ** 6, batch_size=args.batch_size, lr=1e-3, callbacks=[timer], seed=args.seed,
                 progress=not args.quiet)
    train_minutes = timer.used(result.state) / 60  # before the evaluation below
    vae.eval()
    start = time.process_time()
    diag = collapse_diagnostics(vae.model, vae.guide, test, lower_bound=False, batch_size=100, seed=args.seed)
    terms = elbo_terms(vae.model, vae.guide, test, num_samples=1, batch_size=100, seed=args.seed)
    ll = log_likelihood(vae.model, vae.guide, test, num_samples=args.eval_samples, batch_size=25,
                        seed=args.seed, progress=not args.quiet)
    return {"variant": variant, "steps": result.state.step, "cpu_minutes": train_minutes,
            "rate": diag.rate, "distortion": diag.distortion, "active_units": diag.active_units,
            "latent_dim": args.latent_dim, "mutual_information": diag.mutual_information, "mi_se": diag.mi_se,
            "log_n": math.log(len(test)), "test_elbo": terms["elbo"], "test_nll": -ll.mean, "nll_se_mc": ll.se_mc,
            "nll_se_data": ll.se_data, "khat_max": ll.summary().get("khat_max"),
            "kl_per_dim": diag.kl_per_dim.tolist() if diag.kl_per_dim is not None else None,
            "final_beta": result.history[-1].get("beta"), "eval_cpu_seconds": time.process_time() - start}


def main(args):
    prepare(args.threads)
    data = load_dataset("mnist", root=args.data_root, binarize="dynamic", seed=args.seed)
    # the budget is checked after each epoch: a subset keeps epochs short enough to stop near it
    data = data.subset(train=args.train_images)
    test = data.test[: args.eval_images]
    rows = []
    for variant in args.variants:
        rows.append(run_one(variant, data, test, args))
        print_table([rows[-1]], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    path = write_json(args.output, {"environment": environment(), "args": vars(args), "rows": rows})
    print(f"wrote {path}")
    return rows


COLUMNS = ["variant", "steps", "cpu_minutes", "rate", "distortion", "active_units", "mutual_information", "mi_se",
           "test_elbo", "test_nll", "nll_se_mc", "nll_se_data", "khat_max", "final_beta"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (default: $PYRO_LVM_DATA)")
    parser.add_argument("--variants", nargs="+",
                        default=["plain", "warmup", "freebits-0.1", "freebits-0.5", "beta-0.5"])
    parser.add_argument("--minutes", type=float, default=5.0, help="CPU minutes of training per variant")
    parser.add_argument("--warmup-steps", type=int, default=600)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[200, 200], help="MLP encoder widths")
    parser.add_argument("--layers", type=int, default=3, help="PixelCNN layers")
    parser.add_argument("--channels", type=int, default=16, help="PixelCNN channels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=12800,
                        help="train on the first N images (epochs of N / batch steps)")
    parser.add_argument("--eval-images", type=int, default=500)
    parser.add_argument("--eval-samples", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="collapse.json")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
