"""Bernoulli latents: train with a score-function estimator, then compare likelihood estimators.

With K = 8 binary latents everything is exact by enumerating 2^8 configurations, so the trained
model's test log-likelihood is known and the two classic estimators -- naive sampling from the
prior, (1/K) sum p(x|z_k), and importance sampling from the trained guide -- can be watched
converging to it as the number of samples grows, with the Pareto k-hat that says when an
estimate's standard error cannot be trusted. Prints the table and saves the plot.

    python examples/bernoulli_latent.py --objective tracegraph --epochs 10 --out runs/bernoulli
    python examples/bernoulli_latent.py --smoke
"""
import argparse
import os

import pyro
import torch

from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import compare_likelihood_estimators
from pyro_lvm.models import BernoulliLatentModel
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import plot_estimator_curves, save_image_grid
from pyro_lvm.train import fit


def main(args):
    pyro.set_rng_seed(args.seed)
    data = load_dataset(args.data, root=args.data_root, binarize="static", seed=args.seed)
    train, test = data.train[: args.train_images], data.test[: args.test_images]
    model = BernoulliLatentModel(data.input_shape, latent_dim=args.latents, decoder_hidden=(args.hidden,),
                                 encoder_hidden=(args.hidden,), baseline="both" if args.objective == "tracegraph"
                                 else None)
    objective = get_objective(args.objective, num_particles=args.particles)
    fit(model.model, model.guide, objective, train, test, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, progress=not args.smoke)

    with torch.no_grad():
        exact = model.exact_log_prob(test).mean().item()
        exact_elbo = model.exact_elbo(test).mean().item()
    rows = compare_likelihood_estimators(model.model, {"prior sampling": model.prior_guide,
                                                        "importance sampling (guide)": model.guide},
                                         test, args.samples, exact=exact, seed=args.seed)
    print(f"exact test log p(x) = {exact:.3f} nats, exact ELBO = {exact_elbo:.3f} (enumerating 2^{args.latents})")
    print(f"{'estimator':<30}{'K':>8}{'estimate':>12}{'se':>10}{'gap':>10}{'k-hat':>8}")
    for r in rows:  # k-hat > 0.7: the estimate and its standard error are unreliable (needs K >= 21)
        print(f"{r['estimator']:<30}{r['K']:>8}{r['log_likelihood']:>12.3f}{r['se_mc']:>10.3f}{r['gap']:>10.3f}"
              f"{r['khat_max']:>8.2f}")
    plot_estimator_curves(rows, os.path.join(args.out, "estimators.png"), exact=exact,
                          title=f"{args.latents} Bernoulli latents, {len(test)} test images")
    save_image_grid(model.sample(64), os.path.join(args.out, "samples.png"), nrow=8)
    return {"exact_log_likelihood": exact, "exact_elbo": exact_elbo, "rows": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="auto", help="mnist, binarized-mnist, embedded or auto")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--objective", default="tracegraph", help="elbo, tracegraph or iwae (VIMCO)")
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--latents", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bernoulli")
    parser.add_argument("--smoke", action="store_true", help="one epoch on a few embedded digits")
    args = parser.parse_args()
    if args.smoke:
        args.data, args.epochs, args.train_images, args.test_images, args.samples = "embedded", 1, 300, 20, [1, 10]
    main(args)
