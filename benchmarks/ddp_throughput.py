"""CPU throughput (images/s) of one against two data-parallel training processes (gloo).

For the MLP VAE (784-400-50) and the conv VAE, the same global batch of 128 binarized MNIST-sized
images is trained by :func:`pyro_lvm.train.fit` in one process and in two processes started the
way ``torchrun --nproc_per_node 2`` starts them (each process with **one** torch thread, so two
processes use two cores), timing ``--steps`` steps after one warm-up epoch. The efficiency is
``throughput_2 / (2 * throughput_1)``: 1 is perfect scaling; below it are the all-reduce of the
gradients per step and, on a shared machine, other jobs on the cores.

Usage: ``python benchmarks/ddp_throughput.py [--steps 40]``; writes
``benchmarks/results/ddp_throughput.json``. As a worker (``--worker ARCH``) it prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def worker(args):
    import torch

    from pyro_lvm import distributed
    from pyro_lvm.data import load_dataset
    from pyro_lvm.models import VAE
    from pyro_lvm.train import fit

    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    data = load_dataset("embedded", binarize="static").train[: args.batch_size * args.steps]
    torch.manual_seed(0)
    vae = VAE(arch=args.worker, hidden=(400,), latent_dim=50)
    run = dict(batch_size=args.batch_size, progress=False, device="cpu")
    fit(vae.model, vae.guide, "elbo", data[: args.batch_size * 2], epochs=1, **run)  # warm-up
    distributed.barrier()
    start = time.perf_counter()
    fit(vae.model, vae.guide, "elbo", data, epochs=1, **run)
    distributed.barrier()
    seconds = time.perf_counter() - start
    if distributed.is_main():
        print(json.dumps({"images_per_s": len(data) / seconds, "seconds": seconds}), flush=True)


def measure(arch, nproc, args):
    from distributed_launch import launch

    argv = [os.path.abspath(__file__), "--worker", arch, "--steps", str(args.steps),
            "--batch-size", str(args.batch_size)]
    out = launch(argv, nproc=nproc, timeout=900)
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main(args):
    from common import environment, print_table, write_json

    rows = []
    for arch in args.archs:
        one, two = measure(arch, 1, args), measure(arch, 2, args)
        rows.append({"model": arch, "threads_per_process": 1, "global_batch": args.batch_size,
                     "steps": args.steps, "images_per_s_1": one["images_per_s"],
                     "images_per_s_2": two["images_per_s"],
                     "efficiency": two["images_per_s"] / (2 * one["images_per_s"])})
        print_table(rows[-1:], list(rows[-1]))
    print()
    print_table(rows, list(rows[0]))
    path = write_json("ddp_throughput.json", {"environment": environment(), "cores": os.cpu_count(),
                                              "note": "shared machine: other jobs compete for the cores",
                                              "rows": rows})
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps of the global batch")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch")
    parser.add_argument("--archs", nargs="+", default=["mlp", "conv"])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    worker(parsed) if parsed.worker else main(parsed)
