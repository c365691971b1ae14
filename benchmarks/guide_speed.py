"""Time per training step of each guide family relative to the diagonal guide, interleaved.

The 784-200-200-50 tanh VAE of the quality benchmark with the diagonal, full-covariance and IAF
(T = 2, 4) guides, one ``fit``-style step each (the ELBO's loss, backward, Adam), batch 100 of
binary images; the guides take turns in rounds within one process (one thread), so drifts of
a shared machine hit them alike; the median of the rounds' CPU milliseconds per step is reported
with the ratio to the diagonal guide.

Usage: ``python benchmarks/guide_speed.py``
"""
import argparse
import statistics
import time

import pyro
import torch

from common import environment, print_table, write_json
from pyro_lvm.models import VAE
from pyro_lvm.models.registration import registration_enabled
from pyro_lvm.objectives import get_objective

GUIDES = {"diag": {}, "fullcov": {"guide": "fullcov"}, "iaf2": {"guide": "iaf", "flows": 2},
          "iaf4": {"guide": "iaf", "flows": 4}}


def main(args):
    pyro.enable_validation(False)
    torch.distributions.Distribution.set_default_validate_args(False)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x = torch.bernoulli(torch.rand(args.batch_size, 1, 28, 28))
    objective = get_objective("elbo")
    setups = {}
    for name, options in GUIDES.items():
        vae = VAE(hidden=(200, 200), latent_dim=50, activation="tanh", **options)
        setups[name] = (vae, torch.optim.Adam(vae.parameters(), lr=1e-3))
    times = {name: [] for name in GUIDES}
    with registration_enabled(False):
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name, (vae, optimizer) in setups.items():
                start = time.process_time()
                for _ in range(args.steps):
                    optimizer.zero_grad()
                    objective.differentiable_loss(vae.model, vae.guide, x).backward()
                    optimizer.step()
                if round_:
                    times[name].append(1e3 * (time.process_time() - start) / args.steps)
    base = statistics.median(times["diag"])
    rows = [{"guide": name, "cpu_ms_per_step": statistics.median(t), "ratio_to_diag": statistics.median(t) / base,
             "rounds": t} for name, t in times.items()]
    print_table(rows, ["guide", "cpu_ms_per_step", "ratio_to_diag"])
    path = write_json(args.output, {"environment": environment(), "args": vars(args), "rows": rows})
    print(f"wrote {path}")
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20, help="steps per guide per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="quality15/guide_speed.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
