"""8-bit images done right: dequantization and discrete likelihoods, with honest bits per dimension.

Part 1, one pixel with four levels and a known probability table. A Normal density p on [0, 1)
gives level x the probability P(x) = mass of p on [x/4, (x+1)/4). Uniform dequantization scores
E_u log p((x+u)/4) - log 4 <= log P(x) (Jensen); a learned q(u|x) (a spline flow ending with a
sigmoid, :class:`~pyro_lvm.guides.dequantization.VariationalDequantizer`) closes most of the gap
(Ho et al. 2019, Flow++). Writes ``bounds.png``.

Part 2, the convolutional VAE on 8-bit digits (the embedded MNIST subset as integers 0..255):
a Gaussian on uniformly and on variationally dequantized pixels, the discretized logistic and its
mixture (Salimans et al. 2017), each trained for the same epochs and scored by the
importance-sampled test bits per dimension of the 8-bit data. A Gaussian on undequantized
[0, 1] pixels is scored too: its log-density has no bits per dimension, and the table says so.
Writes ``samples_<row>.png``.

    python examples/dequantization.py --out runs/dequantization
    python examples/dequantization.py --smoke
"""
import argparse
import math
import os

import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch

from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.guides.dequantization import UniformDequantizer, VariationalDequantizer
from pyro_lvm.models import VAE
from pyro_lvm.models.discretized import Dequantized
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import save_image_grid
from pyro_lvm.train import fit

LEVELS = 4


def one_pixel(steps, draws=20000):
    """Exact log P(x), the uniform bound and the trained variational bound for each of the four levels."""
    torch.manual_seed(0)
    x = torch.arange(LEVELS, dtype=torch.float64).reshape(LEVELS, 1, 1, 1)
    density = dist.Normal(torch.full((LEVELS, 1, 1, 1), 0.4, dtype=torch.float64), 0.1).to_event(3)
    cdf = torch.distributions.Normal(torch.tensor(0.4, dtype=torch.float64), 0.1).cdf
    edges = torch.arange(LEVELS + 1, dtype=torch.float64) / LEVELS
    exact = (cdf(edges[1:]) - cdf(edges[:-1])).log()

    def bound(q, n):
        qx = q(x)
        u = qx.rsample((n,))
        return Dequantized(density.expand((n, LEVELS)), u, LEVELS).log_prob(x) - qx.log_prob(u)

    q = VariationalDequantizer((1, 1, 1), flows=1, count_bins=8, hidden=16, num_bins=LEVELS).double()
    optimizer = torch.optim.Adam(q.parameters(), lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        (-bound(q, 64).mean(0).sum()).backward()
        optimizer.step()
    with torch.no_grad():
        uniform = bound(UniformDequantizer((1, 1, 1)), draws).mean(0)
        variational = bound(q, draws).mean(0)
    return exact, uniform, variational


def plot_bounds(exact, uniform, variational, path):
    fig, ax = plt.subplots(figsize=(5, 3))
    levels = torch.arange(LEVELS)
    for shift, (label, values) in zip((-0.25, 0, 0.25), (("exact log P(x)", exact), ("uniform", uniform),
                                                          ("variational", variational))):
        ax.bar(levels + shift, values, width=0.25, label=label)
    ax.set_xlabel("level x")
    ax.set_ylabel("nats")
    ax.set_xticks(levels)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


ROWS = {"gaussian, undequantized": ("gaussian", "none"), "gaussian + uniform": ("gaussian", "uniform"),
        "gaussian + variational": ("gaussian", "variational"), "discretized logistic": ("discretized-logistic", "none"),
        "logistic mixture": ("logistic-mixture", "none")}


def vae_rows(args):
    eight_bit = load_dataset("embedded", eight_bit=True).subset(train=args.train_images)
    unit = load_dataset("embedded").subset(train=args.train_images)
    results = []
    for name, (likelihood, dequantize) in ROWS.items():
        data = unit if (likelihood, dequantize) == ("gaussian", "none") else eight_bit
        pyro.set_rng_seed(0)
        vae = VAE(input_shape=(1, 28, 28), arch="conv", latent_dim=16, likelihood=likelihood, dequantize=dequantize,
                  activation="relu", mixture_components=3)
        fit(vae.model, vae.guide, get_objective("elbo", max_plate_nesting=1), data.train_loader(64),
            epochs=args.epochs, lr=1e-3, seed=0, progress=False)
        ll = log_likelihood(vae.model, vae.guide, data.test[:args.eval_images], num_samples=args.eval_samples,
                            batch_size=10, seed=0, progress=False)
        bpd = f"{ll.bits_per_dim:.3f} +- {ll.se_data / (784 * math.log(2)):.3f}" if ll.probability else \
            "none (a density, not a probability)"
        results.append((name, ll.mean, bpd))
        save_image_grid(vae.sample(16), os.path.join(args.out, f"samples_{likelihood}_{dequantize}.png"), nrow=4,
                        title=name)
    return results


def main(args):
    os.makedirs(args.out, exist_ok=True)
    exact, uniform, variational = one_pixel(args.steps)
    print("one pixel, four levels: log P(x) in nats")
    print("level  exact     uniform   variational")
    for k in range(LEVELS):
        print(f"{k:<5}  {exact[k]:<8.4f}  {uniform[k]:<8.4f}  {variational[k]:.4f}")
    plot_bounds(exact, uniform, variational, os.path.join(args.out, "bounds.png"))
    rows = vae_rows(args)
    print(f"\nconv VAE on 8-bit digits, {args.epochs} epochs; test log p(x) by importance sampling, "
          f"K={args.eval_samples}")
    width = max(len(r[0]) for r in rows)
    print(f"{'row'.ljust(width)}  log p(x) (nats)  bits per dimension")
    for name, log_p, bpd in rows:
        print(f"{name.ljust(width)}  {log_p:<15.1f}  {bpd}")
    return {"one_pixel": (exact, uniform, variational), "vae": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/dequantization")
    parser.add_argument("--steps", type=int, default=400, help="training steps of the one-pixel q(u|x)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--eval-images", type=int, default=200)
    parser.add_argument("--eval-samples", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few images")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.epochs, args.train_images, args.eval_images, args.eval_samples = 30, 1, 128, 10, 5
    main(args)
