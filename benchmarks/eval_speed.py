"""Speed and peak memory of the K = 5000 importance-sampled log-likelihood on the MNIST test set.

Ours (:func:`pyro_lvm.evaluate.log_likelihood`, through Pyro traces) against a plain-PyTorch loop
of the same computation (same network, same chunking, log-weights written by hand). Each method
runs in its own subprocess so that its peak resident memory is its own; the table reports wall
time, peak RSS above the process's baseline, and both estimates (they agree within their
standard errors). Writes JSON.

Usage: ``python benchmarks/eval_speed.py --images 10000 --samples 5000 [--run-dir RUN]``
"""
import argparse
import json
import math
import subprocess
import sys
import time

import torch

from common import environment, plain_log_weights, print_table, write_json


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak():
    """Reset the kernel's peak-RSS counter (VmHWM) so the peak covers only what follows."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _model(args):
    from pyro_lvm.models import VAE

    if args.run_dir:
        from pyro_lvm.runs import load_model

        return load_model(args.run_dir)
    torch.manual_seed(0)
    return VAE(hidden=(200, 200), latent_dim=50).eval()


def _plain(vae, data, num_samples, batch_size, chunk):
    """The same estimator as pyro_lvm.evaluate.log_likelihood, in plain PyTorch."""
    out = []
    for start in range(0, len(data), batch_size):
        x = data[start:start + batch_size]
        lse = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
        for drawn in range(0, num_samples, chunk):
            log_w = plain_log_weights(vae.encoder, vae.decoder, x, min(chunk, num_samples - drawn)).double()
            lse = torch.logaddexp(lse, torch.logsumexp(log_w, 0))
        out.append(lse - math.log(num_samples))
    return torch.cat(out)


def child(args):
    import pyro

    from pyro_lvm.data import load_dataset
    from pyro_lvm.evaluate import log_likelihood

    pyro.enable_validation(False)
    torch.set_num_threads(args.threads)
    test = load_dataset("mnist", root=args.data_root, binarize="dynamic").test[: args.images]
    vae = _model(args)
    chunk = max(1, min(args.samples, args.max_elements // (args.batch_size * 784)))
    baseline = _status_mib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    with torch.no_grad():
        if args.method == "ours":
            per_datum = log_likelihood(vae.model, vae.guide, test, num_samples=args.samples,
                                       batch_size=args.batch_size, max_elements=args.max_elements,
                                       progress=False).per_datum
        else:
            per_datum = _plain(vae, test, args.samples, args.batch_size, chunk)
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM")
    print(json.dumps({"method": args.method, "seconds": seconds, "peak_rss_mib": peak,
                      "peak_above_baseline_mib": peak - baseline, "log_likelihood": per_datum.mean().item(),
                      "chunk": chunk}))


def main(args):
    rows = []
    for method in ("ours", "plain"):
        cmd = [sys.executable, __file__, "--child", "--method", method, "--images", str(args.images),
               "--samples", str(args.samples), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
               "--max-elements", str(args.max_elements)]
        for flag, value in (("--data-root", args.data_root), ("--run-dir", args.run_dir)):
            if value:
                cmd += [flag, value]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print_table([rows[-1]], list(rows[-1]))
    rows[0]["ratio_time"] = rows[0]["seconds"] / rows[1]["seconds"]
    print()
    print_table(rows, ["method", "seconds", "peak_rss_mib", "peak_above_baseline_mib", "log_likelihood", "chunk",
                       "ratio_time"])
    write_json("eval_speed.json", {"environment": environment(), "args": vars(args), "rows": rows})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-elements", type=int, default=2 ** 24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--run-dir", default=None, help="evaluate a trained run folder instead of a fresh network")
    parser.add_argument("--method", choices=["ours", "plain"], default="ours")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.child else main(args)
