"""An inverse-autoregressive-flow guide on your own model: a curved posterior a diagonal Normal cannot fit.

The model is written from scratch as a user would (plain Pyro with ``pyro.module``):
``z ~ N(0, I_2)`` and ``x | z ~ N((z_1, z_2 + z_1^2 / 2), 0.3^2 I)`` repeated ``D / 2`` times, so
that p(z|x) is a bent, correlated "banana". Two guides read the same kind of encoder:
:class:`~pyro_lvm.guides.AmortizedNormalGuide` (diagonal) and
:class:`~pyro_lvm.guides.IAFGuide` (``--flows`` gated IAF steps, Kingma et al. 2016). Each is
trained with :func:`pyro_lvm.train.fit` on the IWAE bound, then scored on held-out data by its
ELBO and by the importance-sampled log p(x) (with Pareto k-hat). Writes
``posterior_samples.png``: draws of each q(z|x) for one held-out datum.

    python examples/flow_guide.py --out runs/flow_guide
    python examples/flow_guide.py --smoke
"""
import argparse
import os

import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_lvm.evaluate import elbo_terms, log_likelihood
from pyro_lvm.guides import AmortizedNormalGuide, IAFGuide
from pyro_lvm.nn import MLPEncoder
from pyro_lvm.train import fit


class BananaModel(nn.Module):
    """z ~ N(0, I_2); x | z ~ N(tile((z_1, z_2 + z_1^2 / 2)), sigma^2 I_D)."""

    def __init__(self, data_dim=6, sigma=0.3):
        super().__init__()
        self.repeats, self.sigma = data_dim // 2, sigma

    def mean(self, z):
        return torch.stack([z[..., 0], z[..., 1] + z[..., 0] ** 2 / 2], -1).repeat_interleave(self.repeats, -1)

    def model(self, x):
        pyro.module("banana_model", self)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(self.mean(z), self.sigma).to_event(1), obs=x)

    @torch.no_grad()
    def sample(self, n, generator):
        z = torch.randn(n, 2, generator=generator)
        return self.mean(z) + self.sigma * torch.randn(n, 2 * self.repeats, generator=generator)


def main(args):
    os.makedirs(args.out, exist_ok=True)
    pyro.set_rng_seed(args.seed)
    model = BananaModel()
    generator = torch.Generator().manual_seed(args.seed)
    train, test = model.sample(args.num_data, generator), model.sample(200, generator)
    guides = {"diagonal": AmortizedNormalGuide(MLPEncoder((6,), (32,), 2)),
              f"IAF ({args.flows} steps)": IAFGuide(MLPEncoder((6,), (32,), 2), flows=args.flows, hidden=(32,))}
    fig, axes = plt.subplots(1, len(guides), figsize=(4 * len(guides), 4), sharex=True, sharey=True)
    for ax, (name, guide) in zip(axes, guides.items()):
        fit(model.model, guide, "iwae", train, epochs=args.epochs, batch_size=100, lr=3e-3, seed=args.seed,
            modules={"guide": guide}, progress=False)
        ll = log_likelihood(model.model, guide, test, num_samples=args.samples, seed=args.seed, progress=False)
        elbo = elbo_terms(model.model, guide, test, num_samples=10, seed=args.seed)["elbo"]
        print(f"{name:16s} ELBO {elbo:8.3f}   log p(x) {ll.mean:8.3f} +- {ll.se_mc:.3f}   "
              f"k-hat max {ll.summary()['khat_max']:.2f}")
        with torch.no_grad():
            draws = guide.distribution(test[:1]).sample((1000,))[:, 0]
        ax.scatter(draws[:, 0], draws[:, 1], s=2, alpha=0.4)
        ax.set_title(f"q(z|x) for one test datum: {name}")
    fig.savefig(os.path.join(args.out, "posterior_samples.png"), dpi=100)
    print(f"wrote {os.path.join(args.out, 'posterior_samples.png')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/flow_guide")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--flows", type=int, default=2)
    parser.add_argument("--num-data", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=500, help="importance samples per test datum")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few seconds: 3 epochs on 300 data")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.num_data, args.samples = 3, 300, 50
    main(args)
