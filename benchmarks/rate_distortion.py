"""A rate-distortion curve of the MLP VAE over the KL weight beta (beta-VAE; Alemi et al. 2018).

For each beta the 784-200-200-50 tanh VAE of the quality benchmark (Bernoulli output,
dynamically binarized MNIST, batch 100, Adam lr 1e-3, eps 1e-4) is trained with the beta-weighted
mean-field ELBO, E log p(x|z) - beta KL(q(z|x) || p(z)) (Higgins et al. 2017), for the same budget
of this process's CPU time (one thread). On the first ``--eval-images`` test images it reports the
rate R = E KL, the distortion D = -E log p(x|z), the ELBO -(R + D), active units (Burda et al. 2015)
and the aggregate-posterior mutual information I_q(x; z) (<= log N). Beta < 1 buys a lower
distortion with a higher rate, beta > 1 the reverse; at convergence beta = 1 has the best ELBO (it
optimizes it), though after a short budget a neighbouring beta can come out ahead. The curve is
saved as a PNG with the points labelled.

Usage: ``python benchmarks/rate_distortion.py --data-root ../shared/data --minutes 1.5``
"""
import argparse
import math
import os

import torch

from common import RESULTS, environment, prepare, print_table, write_json
from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import collapse_diagnostics
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import plot_rate_distortion
from pyro_lvm.train import TimeBudget, fit

COLUMNS = ["beta", "steps", "cpu_minutes", "rate", "distortion", "elbo", "active_units", "mutual_information",
           "mi_se"]


def run_one(beta, data, test, args):
    torch.manual_seed(args.seed)
    vae = VAE(hidden=(200, 200), latent_dim=50, activation="tanh", likelihood="bernoulli")
    timer = TimeBudget(args.minutes, clock="cpu")
    result = fit(vae.model, vae.guide, get_objective("meanfield", beta=beta), data.train_loader(args.batch_size),
                 epochs=10 ** 6, batch_size=args.batch_size, lr=1e-3, eps=1e-4, callbacks=[timer], seed=args.seed,
                 progress=not args.quiet)
    train_minutes = timer.used(result.state) / 60  # before the evaluation below
    vae.eval()
    diag = collapse_diagnostics(vae.model, vae.guide, test, lower_bound=False, seed=args.seed)
    return {"beta": beta, "steps": result.state.step, "cpu_minutes": train_minutes,
            "rate": diag.rate, "distortion": diag.distortion, "elbo": diag.elbo, "active_units": diag.active_units,
            "mutual_information": diag.mutual_information, "mi_se": diag.mi_se, "log_n": math.log(len(test))}


def main(args):
    prepare(args.threads)
    data = load_dataset("mnist", root=args.data_root, binarize="dynamic", seed=args.seed)
    test = data.test[: args.eval_images]
    rows = []
    for beta in args.betas:
        rows.append(run_one(beta, data, test, args))
        print_table([rows[-1]], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    path = write_json(args.output, {"environment": environment(), "args": vars(args), "rows": rows})
    figure = plot_rate_distortion([{**r, "label": f"{r['beta']:g}"} for r in rows],
                                  os.path.join(RESULTS, args.figure),
                                  title=f"MLP VAE on MNIST, {args.minutes:g} CPU min per beta, "
                                        f"{len(test)} test images")
    print(f"wrote {path} and {figure}")
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (default: $PYRO_LVM_DATA)")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1, 2, 4, 8])
    parser.add_argument("--minutes", type=float, default=1.5, help="CPU minutes of training per beta")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--eval-images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="rate_distortion.json")
    parser.add_argument("--figure", default="rate_distortion.png")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
