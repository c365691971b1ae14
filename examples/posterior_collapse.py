r"""Diagnose posterior collapse in a VAE with an autoregressive (PixelCNN) decoder, and try its remedies.

**Posterior collapse.** The ELBO of a datum splits into distortion and rate (Alemi et al. 2018),
:math:`-\mathrm{ELBO} = D + R` with :math:`D = -\mathbb E_{q(z|x)} \log p(x|z)` and
:math:`R = \mathrm{KL}(q(z|x)\,\|\,p(z))`. Averaged over the data the rate is
:math:`I_q(x; z) + \mathrm{KL}(q(z)\,\|\,p(z))` (Hoffman & Johnson 2016, eq. 2): every nat the code
carries about :math:`x` is paid for in the rate. A decoder that can model the pixels without
:math:`z`, such as a PixelCNN that reads the earlier pixels, lowers :math:`D` by less than that
price, so the ELBO is best served by :math:`q(z|x) = p(z)` for every :math:`x`: the rate falls to 0,
no latent unit is active and the code says nothing about the image (Bowman et al. 2016; Chen et
al. 2017, sec. 2, who explain it by bits-back coding and keep :math:`z` in use by limiting the
decoder's receptive field, here ``--layers``). The ELBO alone cannot tell a collapsed model from a
useful one: models of the same ELBO can sit anywhere along the rate-distortion line (Alemi et al.
2018), hence the diagnostics below.

**Remedies**, each trained here from the same initialization on the same batches:

* ``plain``: the ELBO, :math:`\beta = 1` (the baseline that may collapse).
* ``warmup``: KL annealing, :math:`\beta` rising linearly from 0 to 1 over ``--warmup-steps``
  (Bowman et al. 2016, sec. 3.1; Sønderby et al. 2016, "warm-up"): early on the encoder is free to
  put information into :math:`z` before the KL is charged in full. At the end it is the ELBO again.
* ``freebits``: the KL of each latent dimension, averaged over the minibatch, is floored at
  :math:`\lambda` = ``--free-bits`` nats (Kingma et al. 2016, appendix, eq. 15): below the floor
  a dimension's KL costs a constant and gets no gradient pushing it to 0.
* ``beta``: a constant KL weight :math:`\beta` = ``--beta`` < 1 (the :math:`\beta`-VAE objective
  of Higgins et al. 2017, eq. 4, on the high-rate side): information in :math:`z` costs less, so
  the optimum moves to a higher rate and lower distortion, at the price of the ELBO itself.

**Diagnostics** (:func:`pyro_lvm.evaluate.collapse_diagnostics`, on the first ``--eval-images``
test images): the rate :math:`R`, the distortion :math:`D`, the ELBO :math:`-(R + D)` (with
:math:`\beta = 1`, whatever the training objective), the active units (Burda et al. 2016: the
variance over the data of the encoder's mean above 0.01) and the mutual information
:math:`\hat I_q(x; z)` under the aggregate posterior with its standard error (Hoffman & Johnson
2016), which cannot exceed :math:`\log N`. Barber & Agakov's bound is left out
(``lower_bound=False``): it draws images from the decoder, pixel by pixel. A bar chart of the KL
per latent dimension is saved for each remedy (``kl_per_dim_<remedy>.png``).

    python examples/posterior_collapse.py --out runs/example_collapse
    python examples/posterior_collapse.py --smoke

References:

1. S. Bowman, L. Vilnis, O. Vinyals, A. Dai, R. Jozefowicz, S. Bengio, "Generating Sentences from a
   Continuous Space", CoNLL 2016.
2. C. Sønderby, T. Raiko, L. Maaløe, S. Sønderby, O. Winther, "Ladder Variational Autoencoders",
   NeurIPS 2016.
3. D. Kingma, T. Salimans, R. Jozefowicz, X. Chen, I. Sutskever, M. Welling, "Improved Variational
   Inference with Inverse Autoregressive Flow", NeurIPS 2016 (free bits: appendix, eq. 15).
4. I. Higgins, L. Matthey, A. Pal, C. Burgess, X. Glorot, M. Botvinick, S. Mohamed, A. Lerchner,
   "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework", ICLR 2017.
5. X. Chen, D. Kingma, T. Salimans, Y. Duan, P. Dhariwal, J. Schulman, I. Sutskever, P. Abbeel,
   "Variational Lossy Autoencoder", ICLR 2017.
6. A. Alemi, B. Poole, I. Fischer, J. Dillon, R. Saurous, K. Murphy, "Fixing a Broken ELBO",
   ICML 2018.
7. M. Hoffman, M. Johnson, "ELBO surgery: yet another way to carve up the variational evidence
   lower bound", NIPS 2016 Workshop on Advances in Approximate Bayesian Inference.
8. Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
"""
import argparse
import math
import os
import time

import pyro

from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import collapse_diagnostics
from pyro_lvm.models import VAE
from pyro_lvm.objectives import LinearWarmup, get_objective
from pyro_lvm.plots import plot_kl_per_dim
from pyro_lvm.train import fit

REMEDIES = ("plain", "warmup", "freebits", "beta")


def objective_for(remedy, args):
    """The training objective of a remedy, and how the table names it."""
    if remedy == "plain":
        return get_objective("meanfield"), "plain ELBO"
    if remedy == "warmup":
        return (get_objective("meanfield", beta=LinearWarmup(steps=args.warmup_steps, beta0=0.0)),
                f"warm-up {args.warmup_steps} steps")
    if remedy == "freebits":
        return get_objective("meanfield", free_bits=args.free_bits), f"free bits {args.free_bits:g}"
    return get_objective("meanfield", beta=args.beta), f"beta = {args.beta:g}"


def train_and_diagnose(remedy, data, test, args):
    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)  # every remedy starts from the same weights
    vae = VAE(latent_dim=args.latent_dim, hidden=tuple(args.hidden), input_shape=data.input_shape,
              decoder="pixelcnn", pixelcnn_layers=args.layers, pixelcnn_channels=args.channels)
    objective, name = objective_for(remedy, args)
    start = time.process_time()
    result = fit(vae.model, vae.guide, objective, data.train_loader(args.batch_size), epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=not args.smoke)
    vae.eval()
    diag = collapse_diagnostics(vae.model, vae.guide, test, lower_bound=False, batch_size=100, seed=args.seed)
    plot_kl_per_dim(diag.kl_per_dim, diag.active_mask, os.path.join(args.out, f"kl_per_dim_{remedy}.png"),
                    title=f"{name}: rate {diag.rate:.2f} nats")
    return {"remedy": name, "final_beta": result.history[-1].get("beta", 1.0), "rate": diag.rate,
            "distortion": diag.distortion, "elbo": diag.elbo, "active_units": diag.active_units,
            "latent_dim": diag.latent_dim, "mutual_information": diag.mutual_information, "mi_se": diag.mi_se,
            "kl_per_dim": diag.kl_per_dim.tolist(), "cpu_seconds": time.process_time() - start}


def format_table(rows, log_n):
    header = (f"{'remedy':<22}{'beta':>6}{'rate R':>9}{'distortion D':>14}{'ELBO':>10}{'active':>9}"
              f"{'I_q(x;z) +- se':>17}{'CPU s':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        active = f"{r['active_units']}/{r['latent_dim']}"
        mi = f"{r['mutual_information']:.2f} +- {r['mi_se']:.2f}"
        lines.append(f"{r['remedy']:<22}{r['final_beta']:>6.2f}{r['rate']:>9.2f}{r['distortion']:>14.2f}"
                     f"{r['elbo']:>10.2f}{active:>9}{mi:>17}{r['cpu_seconds']:>8.0f}")
    lines.append(f"nats per image; beta at the last step; I_q(x;z) is at most log N = {log_n:.2f}")
    return "\n".join(lines)


def main(args):
    data = load_dataset(args.data, root=args.data_root, binarize="dynamic", seed=args.seed)
    data = data.subset(train=args.train_images)
    test = data.test[: args.eval_images]
    if args.warmup_steps is None:  # half of the training steps
        args.warmup_steps = max(1, args.epochs * math.ceil(len(data.train) / args.batch_size) // 2)
    rows = [train_and_diagnose(remedy, data, test, args) for remedy in args.remedies]
    print(f"{data.name}: {len(data.train)} training images, {args.epochs} epoch(s); diagnostics on {len(test)} "
          f"test images; PixelCNN decoder with {args.layers} layers of {args.channels} channels")
    print(format_table(rows, math.log(len(test))))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="auto", help="mnist, embedded or auto (MNIST if found, else embedded)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--remedies", nargs="+", choices=REMEDIES, default=list(REMEDIES))
    parser.add_argument("--warmup-steps", type=int, default=None, help="default: half of the training steps")
    parser.add_argument("--free-bits", type=float, default=0.25, help="lambda, nats per latent dimension")
    parser.add_argument("--beta", type=float, default=0.5, help="constant KL weight of the beta remedy")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[200, 200], help="MLP widths around z")
    parser.add_argument("--layers", type=int, default=3, help="PixelCNN layers (the receptive field grows with it)")
    parser.add_argument("--channels", type=int, default=16, help="PixelCNN channels")
    parser.add_argument("--train-images", type=int, default=9600)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example_collapse")
    parser.add_argument("--smoke", action="store_true", help="one epoch on a few embedded digits, a tiny PixelCNN")
    args = parser.parse_args()
    if args.smoke:
        args.data, args.epochs, args.train_images, args.eval_images = "embedded", 1, 256, 50
        args.layers, args.channels, args.hidden, args.latent_dim = 2, 8, [64], 8
    main(args)
