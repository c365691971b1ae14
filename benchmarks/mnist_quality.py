"""Test log-likelihood of a VAE and of IWAE (k = 5, 50) on dynamically binarized MNIST.

Burda et al. (2015, Table 1) train 784-200-200-50 networks (tanh, Bernoulli output) for 3280
epochs with batch 20 and Adam; at ``--epoch-scale 1`` this script runs that schedule. ``--schedule burda
--epochs 0`` runs that schedule (8 stages of 3^i epochs, lr 1e-3 * 10^(-i/7)). A shortened CPU run
uses ``--schedule exponential --epochs E``: the same end points (1e-3 to 1e-4) reached
geometrically over E epochs, since scaling the paper's stages down would spend most of a short
run at the final rate. ``--max-minutes`` caps each model's training time. Each model is then evaluated with the importance-sampled
log-likelihood (K = ``--eval-samples``) on the first ``--eval-images`` test images (the test
set is binarized once with a fixed seed). A model is ``objective:k`` or ``objective:k:gradient``
(e.g. ``iwae:50:dreg`` for doubly reparameterized gradients), optionally followed by ``@guide`` for the
guide family (``elbo:1@fullcov``, ``elbo:1@iaf4`` for an IAF guide with 4 flows; default diagonal);
``--minutes`` trains every model for the same budget instead of a number of epochs (``--clock cpu``, the
default, counts this process's CPU time, which other jobs on a shared machine do not shrink; run with
one thread), ``--save-dir`` keeps each trained model (``pyro_lvm.load_model`` reads it back), and ``--snr`` adds the encoder's and the
decoder's gradient signal-to-noise ratio at the end of training (the estimator harness, 100 draws
on one batch of 20 test images, with the model's own objective). Prints a table with the paper's
numbers beside ours and writes JSON.

Usage: ``python benchmarks/mnist_quality.py --data-root ../shared/data --epochs 12 --eval-images 2000``
"""
import argparse
import math
import os
import time

import torch

from common import environment, prepare, print_table, write_json
from pyro_lvm import save_model
from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import elbo_terms, log_likelihood
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.train import BurdaSchedule, ExponentialDecay, TimeBudget, fit

PAPER_NLL = {("elbo", 1): 86.76, ("iwae", 5): 85.54, ("iwae", 50): 84.78}  # Burda et al. 2015, Table 1


def _snr(vae, objective, data, args):
    from pyro_lvm.evaluate import compare_estimators

    table = compare_estimators(vae.model, vae.guide, data.test[:20], [("trained", objective)], repeats=args.snr,
                               exact_log_prob=False, seed=args.seed)
    row = table.rows[0]
    return {f"{group}_snr": row.get(f"{group}_snr") for group in ("encoder", "decoder")}


def guide_options(guide):
    """``"diag"``, ``"fullcov"`` or ``"iafT"`` -> the VAE's guide keywords."""
    if guide.startswith("iaf"):
        return {"guide": "iaf", "flows": int(guide[3:] or 2)}
    return {} if guide == "diag" else {"guide": guide}


def model_label(name, k, guide):
    label = "VAE" if name == "elbo" else "IWAE"
    return label if guide == "diag" else f"{label}, {guide} guide"


def run_one(name, k, gradient, guide, data, args):
    torch.manual_seed(args.seed)
    vae = VAE(hidden=(200, 200), latent_dim=50, activation="tanh", likelihood="bernoulli", **guide_options(guide))
    if args.minutes:  # a fixed budget at a constant learning rate
        epochs, schedule, budget = 10 ** 6, None, args.minutes
    elif args.schedule == "burda":
        schedule = BurdaSchedule(epoch_scale=args.epoch_scale)
        epochs, budget = args.epochs or schedule.total_epochs, args.max_minutes
    else:  # the paper's end points, 1e-3 down to 1e-4, reached geometrically over a short run
        epochs, budget = args.epochs, args.max_minutes
        schedule = ExponentialDecay(gamma=0.1 ** (1 / max(1, epochs - 1)))
    options = {"gradient": gradient} if gradient else {}
    timer = TimeBudget(budget, clock=args.clock if args.minutes else "wall")
    objective = get_objective(name, num_particles=k, max_plate_nesting=1, **options)
    result = fit(vae.model, vae.guide, objective, data.train_loader(args.batch_size), epochs=epochs,
                 batch_size=args.batch_size, lr=1e-3, eps=1e-4, lr_schedule=schedule,
                 callbacks=[timer], seed=args.seed, progress=not args.quiet)
    steps, cpu_seconds = result.state.step, timer.used(result.state) if timer.clock == "cpu" else math.nan
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
        save_model(vae, os.path.join(args.save_dir, f"{name}{k}{'_' + gradient if gradient else ''}_{guide}.pt"),
                   overwrite=True)
    test = data.test[: args.eval_images]
    start = time.perf_counter()
    ll = log_likelihood(vae.model, vae.guide, test, num_samples=args.eval_samples, batch_size=args.eval_batch,
                        seed=args.seed, progress=not args.quiet)
    eval_seconds = time.perf_counter() - start
    terms = elbo_terms(vae.model, vae.guide, test, num_samples=10, seed=args.seed)
    row = {"model": model_label(name, k, guide), "k": k, "gradient": gradient or "standard", "guide": guide,
           "epochs": len(result.history), "steps": steps, "train_minutes": result.state.train_seconds / 60,
           "cpu_minutes": cpu_seconds / 60, "cpu_ms_per_step": 1e3 * cpu_seconds / max(steps, 1),
           "eval_images": len(test), "eval_samples": args.eval_samples,
           "ms_per_step": 1e3 * result.state.train_seconds / max(steps, 1), "test_nll": -ll.mean, "se_mc": ll.se_mc,
           "se_data": ll.se_data, "khat_max": ll.summary().get("khat_max"), "test_elbo": terms["elbo"],
           "kl": terms["kl"], "paper_nll": PAPER_NLL.get((name, k)), "eval_seconds": eval_seconds,
           "history": result.history}
    if args.snr:
        row.update(_snr(vae, objective, data, args))
    return row


def main(args):
    prepare(args.threads)
    data = load_dataset("mnist", root=args.data_root, binarize="dynamic", seed=args.seed)
    rows = []
    for spec in args.models:
        spec, _, guide = spec.partition("@")
        name, k, *gradient = spec.split(":")
        rows.append(run_one(name, int(k), gradient[0] if gradient else None, guide or "diag", data, args))
        print_table([{k_: v for k_, v in rows[-1].items() if k_ != "history"}], [c for c in rows[-1] if c != "history"])
    columns = ["model", "k", "gradient", "epochs", "train_minutes", "cpu_minutes", "ms_per_step", "cpu_ms_per_step", "test_nll", "se_mc", "se_data",
               "khat_max", "test_elbo", "kl", "encoder_snr", "decoder_snr", "paper_nll", "eval_seconds"]
    print()
    print_table(rows, columns)
    path = write_json(args.output, {"environment": environment(), "args": vars(args), "rows": rows})
    print(f"wrote {path}")
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (default: $PYRO_LVM_DATA)")
    parser.add_argument("--models", nargs="+", default=["elbo:1", "iwae:5", "iwae:50"],
                        help="objective:k[:gradient][@guide] (guide: diag, fullcov, iafT)")
    parser.add_argument("--schedule", choices=["exponential", "burda"], default="exponential",
                        help="burda: the paper's 3^i-epoch stages (scaled by --epoch-scale); exponential: "
                             "lr 1e-3 decayed geometrically to 1e-4 over --epochs")
    parser.add_argument("--epoch-scale", type=float, default=1.0,
                        help="fraction of each stage of Burda et al.'s 3280-epoch schedule (burda only)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs (burda: 0 means the schedule's own)")
    parser.add_argument("--max-minutes", type=float, default=20.0, help="training time cap per model")
    parser.add_argument("--minutes", type=float, default=None,
                        help="train every model for this budget (constant lr 1e-3) instead of --epochs")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="what --minutes counts: this process's CPU time (default) or wall time")
    parser.add_argument("--save-dir", default=None, help="save each trained model here (pyro_lvm.save_model)")
    parser.add_argument("--snr", type=int, default=0, help="gradient draws for the encoder/decoder SNR (0: skip)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument("--eval-images", type=int, default=10000)
    parser.add_argument("--eval-batch", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="mnist_quality.json")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
