"""Complete MNIST digits from some of their quadrants with a conditional VAE (Sohn et al. 2015).

Composes the pieces by hand: quadrant conditions, the deterministic baseline trained first, the
CVAE trained by the ELBO on (x, y) batches, the negative conditional log-likelihood of the
missing pixels by importance sampling (``log_likelihood(..., condition=y)``) and a figure of
completions.

    python examples/cvae.py --given 2 --epochs 10 --out runs/example_cvae
    python examples/cvae.py --smoke
"""
import argparse
import os

import pyro
import torch

from pyro_lvm.data import TensorLoader, load_dataset
from pyro_lvm.data.quadrants import mask_quadrants, missing_pixels
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.models import CVAE, CVAEConfig, DeterministicBaseline
from pyro_lvm.plots.conditional import save_completion_grid
from pyro_lvm.train import fit


def main(args):
    pyro.set_rng_seed(args.seed)
    data = load_dataset(args.data, root=args.data_root, binarize="static", seed=args.seed)
    train_x = data.train[: args.train_images]
    test_x = data.test[: args.test_images]
    train_y, test_y = mask_quadrants(train_x, args.given), mask_quadrants(test_x, args.given)
    config = CVAEConfig.quadrants(data.input_shape, latent_dim=args.latent_dim, hidden=tuple(args.hidden))

    results = {}
    for name, model in (("NN baseline", DeterministicBaseline(config)), ("CVAE", CVAE(config))):
        loader = TensorLoader(train_x, args.batch_size, labels=train_y)  # batches (x, y): model(x, y)
        fit(model.model, model.guide, "elbo", loader, epochs=args.epochs, lr=args.lr, seed=args.seed,
            progress=not args.smoke)
        samples = 2 if name == "NN baseline" else args.samples  # no latent variable: the value is exact
        ll = log_likelihood(model.model, model.guide, test_x, num_samples=samples, seed=args.seed,
                            progress=not args.smoke, condition=test_y)
        results[name] = {"nll": -ll.mean, "se_mc": ll.se_mc, "se_data": ll.se_data}
        print(f"{name}: NLL of the {4 - args.given} missing quadrant(s) = {-ll.mean:.2f} nats "
              f"(se {ll.se_mc:.3f} MC, {ll.se_data:.2f} data; K={samples})")
        results[name]["model"] = model

    y = test_y[:10]
    torch.manual_seed(args.seed)
    completions = torch.stack([results["CVAE"]["model"].sample(y) for _ in range(6)])
    save_completion_grid(y, test_x[:10], completions, os.path.join(args.out, "completions.png"),
                         missing=missing_pixels(y), baseline=results["NN baseline"]["model"].predict(y))
    return {name: {k: v for k, v in r.items() if k != "model"} for name, r in results.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="auto", help="mnist, fashion-mnist, embedded or auto")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--given", type=int, choices=[1, 2, 3], default=1, help="quadrants given")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[500, 500])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--samples", type=int, default=1000, help="importance samples K for the CVAE's NLL")
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--test-images", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example_cvae")
    parser.add_argument("--smoke", action="store_true", help="one epoch on a few embedded digits")
    args = parser.parse_args()
    if args.smoke:
        args.data, args.epochs, args.samples, args.train_images, args.test_images = "embedded", 1, 10, 256, 20
        args.hidden = [64]
    main(args)
