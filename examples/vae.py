"""Train a Gaussian VAE on MNIST (or the embedded digits) and report its test log-likelihood.

Composes the library's pieces by hand: a data set, a VAE's model/guide pair, an objective by
name, the fit loop, the importance-sampled log-likelihood and the plots.

    python examples/vae.py --objective iwae --particles 5 --epochs 10 --out runs/example_vae
    python examples/vae.py --smoke
"""
import argparse
import os

import pyro

from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import elbo_terms, log_likelihood
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import plot_history, save_image_grid
from pyro_lvm.train import fit


def main(args):
    pyro.set_rng_seed(args.seed)
    data = load_dataset(args.data, root=args.data_root, binarize="dynamic", seed=args.seed)
    train = data.train_loader(args.batch_size)
    if args.smoke:
        train.data = train.data[:256]
    vae = VAE(latent_dim=args.latent_dim, hidden=tuple(args.hidden), arch=args.arch,
              input_shape=data.input_shape)
    objective = get_objective(args.objective, num_particles=args.particles)
    result = fit(vae.model, vae.guide, objective, train, data.test[: args.test_images], epochs=args.epochs,
                 lr=args.lr, seed=args.seed, checkpoint=os.path.join(args.out, "checkpoint.pt"),
                 progress=not args.smoke)

    test = data.test[: args.test_images]
    ll = log_likelihood(vae.model, vae.guide, test, num_samples=args.samples, seed=args.seed,
                        progress=not args.smoke)
    terms = elbo_terms(vae.model, vae.guide, test)
    print(f"test log p(x) = {ll.mean:.2f} nats (K={args.samples}; se {ll.se_mc:.3f} MC, {ll.se_data:.2f} data), "
          f"ELBO = {terms['elbo']:.2f} = {terms['reconstruction']:.2f} reconstruction - {terms['kl']:.2f} KL")

    save_image_grid(vae.sample(64), os.path.join(args.out, "samples.png"), nrow=8)
    save_image_grid(vae.reconstruct(test[:64]), os.path.join(args.out, "reconstructions.png"), nrow=8)
    plot_history(result.history, os.path.join(args.out, "loss.png"), keys=["train_loss", "test_loss"])
    return {"log_likelihood": ll.mean, "history": result.history, **terms}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="auto", help="mnist, fashion-mnist, embedded or auto")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--objective", default="elbo", help="elbo, meanfield, iwae or renyi")
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--arch", default="mlp", choices=["mlp", "conv"])
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--hidden", type=int, nargs="+", default=[400])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--samples", type=int, default=1000, help="importance samples for log p(x)")
    parser.add_argument("--test-images", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example_vae")
    parser.add_argument("--smoke", action="store_true", help="one epoch on a few embedded digits")
    args = parser.parse_args()
    if args.smoke:
        args.data, args.epochs, args.samples, args.test_images = "embedded", 1, 10, 20
    main(args)
