"""8-bit MNIST and Fashion-MNIST with the convolutional VAE: dequantized Gaussian vs discrete likelihoods.

Rows (each trained for the same CPU budget, ``--minutes`` of this process's CPU time measured by
``time.process_time`` through ``TimeBudget(clock="cpu")``, one torch thread, the ELBO with one
particle, Adam lr 1e-3, checked after each epoch of the first ``--train-images`` training images):

``gaussian+uniform``
    a Gaussian likelihood (one learned scale) on (x + u) / 256, u ~ U[0, 1)^D (Theis et al. 2016);
``gaussian+variational``
    the same with the learned q(u|x) (spline flow ending with a sigmoid; Ho et al. 2019), sampled
    beside z, so training and evaluation bound log P(x) over (z, u) jointly;
``logistic``
    the discretized logistic (Salimans et al. 2017, eq. 2 with edge bins);
``logistic-mixture``
    its per-pixel mixture of ``--components`` logistics.

Every row reports the test bits per dimension of the 8-bit data, -log2 P(x) / 784 with log P(x)
estimated by importance sampling with K = ``--eval-samples`` (an upper bound on the true bits in
expectation), on the first ``--eval-images`` test images, with the Monte Carlo and the over-data
standard errors and the Pareto k-hat. All numbers are of the integer pixel values 0..255.

Usage: ``python benchmarks/eight_bit.py --data-root ../shared/data --minutes 15``
(``--minutes 0.05 --eval-images 20 --eval-samples 10`` checks the script in seconds).
"""
import argparse
import math
import time

import torch

from common import environment, prepare, print_table, write_json
from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.train import TimeBudget, fit

#: row name -> (likelihood, dequantize)
ROWS = {"gaussian+uniform": ("gaussian", "uniform"), "gaussian+variational": ("gaussian", "variational"),
        "logistic": ("discretized-logistic", "none"), "logistic-mixture": ("logistic-mixture", "none")}


def run_one(dataset_name, row, data, test, args):
    likelihood, dequantize = ROWS[row]
    torch.manual_seed(args.seed)
    vae = VAE(input_shape=(1, 28, 28), arch="conv", latent_dim=args.latent_dim, activation="relu",
              likelihood=likelihood, dequantize=dequantize, mixture_components=args.components)
    timer = TimeBudget(args.minutes, clock="cpu")
    result = fit(vae.model, vae.guide, get_objective("elbo", max_plate_nesting=1), data.train_loader(args.batch_size),
                 epochs=10 ** 6, batch_size=args.batch_size, lr=1e-3, callbacks=[timer], seed=args.seed,
                 progress=not args.quiet)
    train_minutes = timer.used(result.state) / 60  # before the evaluation below
    vae.eval()
    start = time.process_time()
    ll = log_likelihood(vae.model, vae.guide, test, num_samples=args.eval_samples, batch_size=10, seed=args.seed,
                        progress=not args.quiet)
    dims = test[0].numel()
    return {"data": dataset_name, "row": row, "steps": result.state.step, "cpu_minutes": train_minutes,
            "test_bits_per_dim": ll.bits_per_dim, "bpd_se_mc": ll.se_mc / (dims * math.log(2)),
            "bpd_se_data": ll.se_data / (dims * math.log(2)), "test_nll_nats": -ll.mean,
            "K": args.eval_samples, "test_images": len(test), "khat_max": ll.summary().get("khat_max"),
            "eval_cpu_seconds": time.process_time() - start}


def main(args):
    prepare(args.threads)
    rows = []
    for name in args.datasets:
        data = load_dataset(name, root=args.data_root, seed=args.seed, eight_bit=True).subset(train=args.train_images)
        test = data.test[: args.eval_images]
        for row in args.rows:
            rows.append(run_one(name, row, data, test, args))
            print_table([rows[-1]], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    path = write_json(args.output, {"environment": environment(), "args": vars(args), "rows": rows})
    print(f"wrote {path}")
    return rows


COLUMNS = ["data", "row", "steps", "cpu_minutes", "test_bits_per_dim", "bpd_se_mc", "bpd_se_data", "K",
           "test_images", "khat_max"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw and FashionMNIST/raw")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--minutes", type=float, default=15.0, help="CPU minutes of training per row")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--components", type=int, default=5, help="logistic-mixture components")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=12800,
                        help="train on the first N images (the budget is checked after each epoch)")
    parser.add_argument("--eval-images", type=int, default=500)
    parser.add_argument("--eval-samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="eight_bit.json")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
