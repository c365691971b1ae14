"""Helpers shared by the benchmarks: a plain-PyTorch VAE loss, timing and table output."""
import json
import math
import os
import platform
import time

import torch
import torch.nn.functional as F

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def plain_log_weights(encoder, decoder, x, num_samples):
    """``log p(x, z_k) - log q(z_k|x)`` of a Bernoulli VAE, written directly in PyTorch."""
    loc, scale = encoder(x)
    z = loc + scale * torch.randn((num_samples,) + loc.shape, dtype=loc.dtype, device=loc.device)
    logits = decoder(z)
    log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").flatten(2).sum(-1)
    log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    return log_px + log_pz - log_qz


def plain_bound(encoder, decoder, x, num_samples, iwae):
    """The ELBO (mean over samples) or the IWAE bound, summed over the batch."""
    log_w = plain_log_weights(encoder, decoder, x, num_samples)
    if iwae:
        return (torch.logsumexp(log_w, 0) - math.log(num_samples)).sum()
    return log_w.mean(0).sum()


def best_of(fn, repeats):
    """Minimum wall time of ``repeats`` calls (robust to other load on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def environment():
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version()}


def write_json(name, payload):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    return path


def print_table(rows, columns):
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def prepare(threads):
    """Set a benchmark process up: ``threads`` torch threads, Pyro's and torch's argument
    validation off (it checks every sample; the code under test is validated by the tests), and
    every module the package loads lazily (the run kinds, the VQ-VAE, plots) imported now.

    A benchmark runs for hours; a module first imported at its end (``save_model`` discovers the run
    kinds) would come from the files as they are then, and a tree edited in between can fail to
    import against the modules loaded at the start. Better still, run long benchmarks from a
    ``git worktree`` snapshot.
    """
    import importlib

    from pyro_lvm.runs import discover

    for name in ("pyro_lvm.plots.latent", "pyro_lvm.vqvae.model"):
        importlib.import_module(name)
    import pyro

    pyro.enable_validation(False)
    torch.distributions.Distribution.set_default_validate_args(False)
    torch.set_num_threads(threads)

    discover()
