"""Training speed of our Pyro VAE against a hand-written plain-PyTorch loop of the same network.

For each architecture (784-400-50 and Burda et al.'s 784-200-200-50, tanh, Bernoulli output),
batch size (128, 20) and objective (elbo; iwae with K = 5 and 50), ``--epochs`` epochs over the
same binarized data are timed through :func:`pyro_lvm.train.fit` (set-up included) and through a
plain loop (same encoder/decoder modules, same loader, same fused Adam, loss written in PyTorch),
interleaved over ``--rounds``, best of ``--repeats``. Prints the table with the ratio ours/plain and writes JSON.

``--device cuda`` runs both on a GPU (data held on it, moved once), writing
``train_speed_cuda.json``; ``--precision bf16`` times ours under bf16 autocast (the plain loop stays float32).

Usage: ``python benchmarks/train_speed.py [--quick] [--device cpu|cuda] [--precision fp32|bf16]``
"""
import argparse

import pyro
import torch

from common import best_of, environment, plain_bound, print_table, write_json
from pyro_lvm.data import TensorLoader, load_dataset
from pyro_lvm.device import resolve_device
from pyro_lvm.models import VAE
from pyro_lvm.objectives import get_objective
from pyro_lvm.train import fit

ARCHS = {"784-400-50": (400,), "784-200-200-50": (200, 200)}


def time_ours(vae, objective, data, batch_size, epochs, repeats, precision="fp32"):
    def run():
        fit(vae.model, vae.guide, objective, TensorLoader(data, batch_size, generator=torch.Generator()),
            epochs=epochs, progress=False, device=data.device, precision=precision)
    return best_of(run, repeats)


def time_plain(vae, data, batch_size, num_samples, iwae, epochs, repeats):
    def run():
        optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3, fused=True)  # the optimizer fit uses
        loader = TensorLoader(data, batch_size, generator=torch.Generator())
        for _ in range(epochs):
            for x in loader:
                loss = -plain_bound(vae.encoder, vae.decoder, x, num_samples, iwae)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss.item()
    return best_of(run, repeats)


def main(args):
    pyro.enable_validation(False)
    torch.distributions.Distribution.set_default_validate_args(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_dataset("embedded", binarize="static").train.to(device)
    rows = []
    for arch, hidden in ARCHS.items():
        for batch_size in args.batch_sizes:
            for name, k in (("elbo", 1), ("iwae", 5), ("iwae", 50)):
                n = min(len(data), batch_size * (args.steps if k < 50 else max(4, args.steps // 4)))
                subset = data[:n]
                torch.manual_seed(0)
                vae = VAE(hidden=hidden, latent_dim=50, activation="tanh").to(device)
                objective = get_objective(name, num_particles=k, max_plate_nesting=1)
                time_ours(vae, objective, subset, batch_size, 1, 1)  # warm-up
                ours, plain = [], []
                for _ in range(args.rounds):  # interleave so drifting machine load hits both
                    ours.append(time_ours(vae, objective, subset, batch_size, args.epochs, args.repeats,
                                          args.precision))
                    plain.append(time_plain(vae, subset, batch_size, k, name == "iwae", args.epochs, args.repeats))
                steps = -(-n // batch_size) * args.epochs
                row = {"arch": arch, "batch": batch_size, "objective": name, "K": k, "steps": steps,
                       "ours_ms_per_step": 1e3 * min(ours) / steps, "plain_ms_per_step": 1e3 * min(plain) / steps}
                row["ratio"] = row["ours_ms_per_step"] / row["plain_ms_per_step"]
                rows.append(row)
                print_table([row], list(row))
    print()
    print_table(rows, list(rows[0]))
    name = "train_speed.json" if device.type == "cpu" and args.precision == "fp32" else \
        f"train_speed_{device.type}_{args.precision}.json"
    path = write_json(name, {"environment": environment(), "device": str(device), "precision": args.precision,
                             "rows": rows})
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 20])
    parser.add_argument("--steps", type=int, default=60, help="steps per timed epoch (K=50: a quarter)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed fit (amortises its set-up)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="a few steps, for a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="ours only")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.rounds, args.epochs = 8, 1, 1, 1
    main(args)
