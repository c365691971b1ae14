"""Bernoulli latents on binarized MNIST: gradient variance of each estimator, and a trained SBN.

1. Trains a sigmoid belief net with 200 Bernoulli latents (linear decoder, linear inference
   network; the SBN-200 of Mnih & Gregor 2014) on the fixed binarization of Larochelle & Murray
   with one estimator (default: ``tracegraph`` with a decaying-average plus neural baseline, as in
   NVIL) under a wall-time budget, and reports the test ELBO and the importance-sampled test
   log-likelihood next to the published figures (NVIL: about 113.1 nats test NLL for SBN-200).
2. At the trained parameters and on one fixed batch, draws ``--draws`` gradients from each
   estimator (REINFORCE ``elbo``; ``tracegraph`` with an average baseline; with average plus
   neural baseline; VIMCO ``iwae`` with K = 5) and reports, per parameter group (prior, encoder,
   decoder), the total variance (trace of the covariance), the squared norm of the mean and the
   mean signal-to-noise ratio, through the estimator harness (:mod:`pyro_lvm.evaluate.harness`).

Usage: ``python benchmarks/bernoulli_benchmark.py --data-root ../shared/data --minutes 15``
"""
import argparse
import os

import pyro
import torch

from common import RESULTS, environment, print_table, write_json
from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import EstimatorSpec, compare_estimators, elbo_terms, log_likelihood
from pyro_lvm.models import BernoulliLatentModel
from pyro_lvm.objectives import get_objective
from pyro_lvm.train import TimeBudget, fit

PUBLISHED = "NVIL SBN-200: ~113.1 nats test NLL (Mnih & Gregor 2014, Table 1); REBAR/RELAX: ~111.2-111.6 " \
            "nats training ELBO after hundreds of epochs (Tucker et al. 2017; Grathwohl et al. 2018)"


def estimators(model):
    """name -> (objective, baseline mode of the guide)."""
    return {"elbo (REINFORCE)": (get_objective("elbo"), None),
            "tracegraph, average baseline": (get_objective("tracegraph"), "average"),
            "tracegraph, average + neural": (get_objective("tracegraph"), "both"),
            "iwae K=5 (VIMCO)": (get_objective("iwae", num_particles=5), None)}


def _fit_neural_baseline(model, objective, batch, steps=300):
    """Train only the baseline network (model frozen) on its least-squares loss."""
    optimizer = torch.optim.Adam(model.baseline_net.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        objective.differentiable_loss(model.model, model.guide, batch).backward()
        optimizer.step()  # only the baseline net is stepped; other gradients are discarded
    model.zero_grad(set_to_none=True)


def _with_baseline(model, baseline, batch):
    """Set the guide's baseline mode before an estimator is measured (and fit a neural baseline)."""
    def prepare(objective):
        model.baseline = baseline
        if baseline == "both":  # a neural baseline helps only once fitted (NVIL trains it alongside)
            _fit_neural_baseline(model, objective, batch)
    return prepare


def gradient_variance(model, batch, draws, warmup=20, seed=0):
    """Per group: trace of the gradient's covariance, squared norm of its mean, and mean SNR (the harness)."""
    specs = [EstimatorSpec(name, objective, prepare=_with_baseline(model, baseline, batch), warmup=warmup)
             for name, (objective, baseline) in estimators(model).items()]  # warm-up lets the average settle
    groups = {"prior": [model.prior_logits], "encoder": model.encoder, "decoder": model.decoder}
    table = compare_estimators(model.model, model.guide, batch, specs, repeats=draws, exact_log_prob=False,
                               groups=groups, seed=seed, errors="raise")
    return [{"estimator": row["label"], "ms_per_gradient": row["ms_per_draw"],
             **{f"{g}_{stat}": row[f"{g}_{stat}"] for g in groups for stat in ("variance", "mean_sq", "snr")}}
            for row in table]


def main(args):
    pyro.enable_validation(False)
    torch.distributions.Distribution.set_default_validate_args(False)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_dataset("binarized-mnist", root=args.data_root)
    model = BernoulliLatentModel(data.input_shape, latent_dim=200, baseline="both" if "both" in args.baseline else
                                 (None if args.baseline == "none" else "average"), baseline_hidden=(100,))
    objective = get_objective(args.objective, num_particles=args.particles, max_plate_nesting=1)
    result = fit(model.model, model.guide, objective, data.train_loader(args.batch_size), data.valid[:2000],
                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                 callbacks=[TimeBudget(args.minutes)], progress=not args.quiet)
    model.eval()
    torch.save(model.state_dict(), os.path.join(RESULTS, "bernoulli_sbn200.pt"))
    test = data.test[: args.eval_images]
    terms = elbo_terms(model.model, model.guide, test, num_samples=10, seed=args.seed)
    train_terms = elbo_terms(model.model, model.guide, data.train[:10000], num_samples=10, seed=args.seed)
    ll = log_likelihood(model.model, model.guide, test, num_samples=args.eval_samples, batch_size=50,
                        seed=args.seed, progress=not args.quiet)
    training = {"objective": args.objective, "particles": args.particles, "baseline": args.baseline,
                "epochs": len(result.history), "train_minutes": result.state.train_seconds / 60,
                "test_elbo": terms["elbo"], "train_elbo_first_10000": train_terms["elbo"], "test_nll": -ll.mean,
                "se_mc": ll.se_mc, "se_data": ll.se_data, "eval_samples": args.eval_samples,
                "eval_images": len(test), "published": PUBLISHED}
    print_table([training], [k for k in training if k != "published"])
    batch = data.train[: args.variance_batch]
    variance = gradient_variance(model, batch, args.draws, seed=args.seed)
    print()
    print_table(variance, list(variance[0]))
    path = write_json("bernoulli_benchmark.json", {"environment": environment(), "args": vars(args),
                                                   "training": training, "history": result.history,
                                                   "gradient_variance": variance})
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--objective", default="tracegraph")
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--baseline", choices=["none", "average", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-time budget")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--eval-images", type=int, default=10000)
    parser.add_argument("--variance-batch", type=int, default=100)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    main(parser.parse_args())
