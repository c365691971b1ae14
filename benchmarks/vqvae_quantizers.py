"""Quantizers side by side on the same VQ-VAE nets, epochs interleaved, against vector-quantize-pytorch.

Every row is the package's one-level VQ-VAE (K = 512, code dimension 16, a 7x7 grid on MNIST)
with one quantizer swapped; the encoder and decoder start from the same weights (those of a
plain autoencoder built from the seed), every row reads the same batches in the same order, and
the epochs of all rows are interleaved in one process, so machine load drifts over all rows alike.
Per seed, per epoch, per row: one training epoch (Adam 1e-3, batch 128), timed (wall and CPU).
After the last epoch: test MSE per pixel, codes used and perplexity over the whole test set.

Rows (``--rows``):

- ``ours-unused20``: EMA codebook, k-means start, replacement of codes unused for 20 batches (the
  package's rule before the count floor);
- ``ours``: the package's default, EMA + k-means + the count floor 2 (counts from the clusters);
- ``ours-error``: the same with replacements drawn in proportion to their squared quantization
  error (``replacement="error"``);
- ``peer``: vector-quantize-pytorch's ``VectorQuantize`` (EMA decay 0.99, k-means init,
  ``threshold_ema_dead_code=2``, commitment 0.25, rotation trick off, straight-through), an
  optional benchmark dependency (``pip install vector-quantize-pytorch``);
- ``cosine``: l2-normalized codes (Yu et al. 2022) with the default upkeep;
- ``lowdim8``: an 8-dimensional codebook between learned projections (Yu et al. 2022);
- ``residual2``: residual VQ of depth 2, 512 codes per stage (Zeghidour et al. 2021);
- ``fsq``: finite scalar quantization with levels (8, 8, 8) = 512 codes (Mentzer et al. 2023);
- ``ae``: the same nets without a quantizer (a continuous 16 x 7 x 7 bottleneck).

It prints a markdown table (mean and standard deviation over seeds; s/epoch and the ratio to
the peer's, both from the interleaved epochs) and writes ``results/vqvae_quantizers.json``.

    python benchmarks/vqvae_quantizers.py                      # 10,000 images, 5 epochs, seeds 0 1 2
    python benchmarks/vqvae_quantizers.py --smoke              # embedded data, tiny
"""
import argparse
import importlib.util
import os
import statistics
import time
import zlib

import torch
from torch import nn

from common import environment, prepare, write_json
from pyro_lvm.vqvae import PlainAutoencoder, VQVAE, VQOutput, VQVAEConfig, perplexity
from pyro_lvm.vqvae.datasets import load_images
from pyro_lvm.vqvae.evaluate import evaluate_reconstruction
from pyro_lvm.vqvae.train import train_epoch

ROWS = {
    "ours-unused20": dict(dead_code_threshold=None, restart_after=20),
    "ours": dict(),
    "ours-error": dict(replacement="error"),
    "peer": dict(peer=True),
    "cosine": dict(quantizer="cosine"),
    "lowdim8": dict(codebook_dim=8),
    "residual2": dict(residual_depth=2),
    "fsq": dict(quantizer="fsq", fsq_levels=(8, 8, 8)),
    "ae": dict(autoencoder=True),
}


class PeerQuantizer(nn.Module):
    """vector-quantize-pytorch's ``VectorQuantize`` behind this package's quantizer interface.

    ``num_restarts`` counts the codes the peer replaces (its ``replace`` calls).
    """

    index_shape = ()

    def __init__(self, num_codes, embedding_dim, commitment_cost=0.25):
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize
        self.vq = VectorQuantize(dim=embedding_dim, codebook_size=num_codes, decay=0.99, kmeans_init=True,
                                 threshold_ema_dead_code=2, commitment_weight=commitment_cost,
                                 rotation_trick=False, accept_image_fmap=True)
        self.num_codes, self.embedding_dim, self.commitment_cost = num_codes, embedding_dim, commitment_cost
        self.register_buffer("num_restarts", torch.zeros((), dtype=torch.long))
        codebook, replace = self.vq._codebook, self.vq._codebook.replace

        def counting_replace(batch_samples, batch_mask, *args, **kwargs):
            self.num_restarts.add_(int(batch_mask.sum()))
            return replace(batch_samples, batch_mask, *args, **kwargs)

        codebook.replace = counting_replace

    def forward(self, z):
        quantized, indices, commitment = self.vq(z)
        counts = torch.bincount(indices.flatten(), minlength=self.num_codes)
        zero = commitment.new_zeros(())
        return VQOutput(quantized, indices, commitment, zero, commitment / self.commitment_cost,
                        perplexity(counts), counts)

    def lookup(self, indices):
        return self.vq.get_output_from_indices(indices).movedim(-1, 1)


def build(name, spec, seed, args):
    """The row's model, with the encoder and decoder of the seed's reference autoencoder."""
    spec = dict(spec)
    peer, autoencoder = spec.pop("peer", False), spec.pop("autoencoder", False)
    config = VQVAEConfig(num_codes=args.codebook_size, **spec)
    torch.manual_seed(seed)
    reference = PlainAutoencoder(config)
    model = PlainAutoencoder(config) if autoencoder else VQVAE(config)
    model.encoder.load_state_dict(reference.encoder.state_dict())
    model.decoder.load_state_dict(reference.decoder.state_dict())
    if peer:
        model.quantizers[0] = PeerQuantizer(config.num_codes, config.embedding_dim, config.commitment_cost)
    return model


def run_seed(seed, data, args):
    rows = {}
    for name in args.rows:
        model = build(name, ROWS[name], seed, args)
        rows[name] = dict(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=args.lr),
                          loader=data.train_loader(args.batch_size, generator=torch.Generator().manual_seed(seed)),
                          wall=[], cpu=[], restarts=[], stream=zlib.crc32(name.encode()))
    for epoch in range(args.epochs):
        for name, row in rows.items():
            # each row's own random stream (k-means rows, replacements), whatever the interleaving or row set
            torch.manual_seed((seed * 1000003 + epoch * 1009 + row["stream"]) % 2 ** 63)
            wall, cpu = time.perf_counter(), time.process_time()
            epoch_row, _ = train_epoch(row["model"], row["loader"], row["optimizer"])
            row["wall"].append(time.perf_counter() - wall)
            row["cpu"].append(time.process_time() - cpu)
            row["restarts"].append(epoch_row.get("restarts", 0))
            if not args.quiet:
                print(f"seed {seed} epoch {epoch + 1} {name}: train mse {epoch_row['train_mse']:.5f} "
                      f"{row['wall'][-1]:.2f} s, {row['restarts'][-1]} replacements", flush=True)
    results = {}
    test_loader = data.test_loader(256)
    for name, row in rows.items():
        metrics, _ = evaluate_reconstruction(row["model"], test_loader)
        results[name] = {"seed": seed, "test_mse": metrics["test_mse"],
                         "test_codes_used": metrics.get("test_codes_used"),
                         "test_perplexity": metrics.get("test_perplexity"),
                         "wall_seconds_per_epoch": row["wall"], "cpu_seconds_per_epoch": row["cpu"],
                         "replacements_per_epoch": row["restarts"],
                         "parameters": sum(p.numel() for p in row["model"].parameters())}
    return results


def summarize(per_seed, rows):
    def mean_sd(values):
        values = [v for v in values if v is not None]
        if not values:
            return None, None
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    summary = []
    for name in rows:
        runs = [seed_results[name] for seed_results in per_seed]
        mse, mse_sd = mean_sd([r["test_mse"] for r in runs])
        ppl, ppl_sd = mean_sd([r["test_perplexity"] for r in runs])
        used = [r["test_codes_used"] for r in runs if r["test_codes_used"] is not None]
        summary.append({
            "row": name, "test_mse": mse, "test_mse_sd": mse_sd, "test_perplexity": ppl,
            "test_perplexity_sd": ppl_sd, "codes_used_min": min(used) if used else None,
            "codes_used_max": max(used) if used else None,
            "wall_seconds_per_epoch": statistics.fmean(s for r in runs for s in r["wall_seconds_per_epoch"]),
            "cpu_seconds_per_epoch": statistics.fmean(s for r in runs for s in r["cpu_seconds_per_epoch"]),
            "replacements_per_epoch": statistics.fmean(s for r in runs for s in r["replacements_per_epoch"]),
        })
    peer = next((s for s in summary if s["row"] == "peer"), None)
    for s in summary:
        if peer is not None:
            s["peer_wall_over_row_wall"] = peer["wall_seconds_per_epoch"] / s["wall_seconds_per_epoch"]
            s["peer_cpu_over_row_cpu"] = peer["cpu_seconds_per_epoch"] / s["cpu_seconds_per_epoch"]
            s["mse_over_peer_mse"] = s["test_mse"] / peer["test_mse"]
    return summary


def markdown(summary):
    def cell(value, fmt):
        return "" if value is None else fmt.format(value)

    lines = ["| quantizer | test MSE/pixel (mean +- sd) | MSE / peer | codes used | perplexity | "
             "replacements/epoch | s/epoch wall (cpu) | peer s / row s |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        used = "" if s["codes_used_min"] is None else (
            f"{s['codes_used_min']}" if s["codes_used_min"] == s["codes_used_max"]
            else f"{s['codes_used_min']}-{s['codes_used_max']}")
        lines.append(
            f"| {s['row']} | {s['test_mse']:.5f} +- {s['test_mse_sd']:.5f} | {cell(s.get('mse_over_peer_mse'), '{:.3f}')} "
            f"| {used} | {cell(s['test_perplexity'], '{:.0f}')} | {s['replacements_per_epoch']:.1f} "
            f"| {s['wall_seconds_per_epoch']:.2f} ({s['cpu_seconds_per_epoch']:.2f}) "
            f"| {cell(s.get('peer_wall_over_row_wall'), '{:.2f}')} |")
    return "\n".join(lines)


def main(args):
    prepare(args.threads)
    if args.smoke:
        args.data, args.train_subset, args.test_subset, args.epochs, args.seeds = "embedded", 512, 256, 1, [0]
        args.codebook_size = 64
    if "peer" in args.rows and importlib.util.find_spec("vector_quantize_pytorch") is None:
        print("vector-quantize-pytorch is not installed (pip install vector-quantize-pytorch); "
              "leaving out the peer row")
        args.rows = [r for r in args.rows if r != "peer"]
    data = load_images(args.data, args.data_root, 0, args.train_subset, args.test_subset)
    start = time.perf_counter()
    per_seed = [run_seed(seed, data, args) for seed in args.seeds]
    summary = summarize(per_seed, args.rows)
    table = markdown(summary)
    print(table)
    payload = {"settings": vars(args), "environment": environment(), "wall_seconds": time.perf_counter() - start,
               "summary": summary, "per_seed": per_seed}
    path = write_json(args.output if not args.smoke else "vqvae_quantizers_smoke.json", payload)
    print(f"written {path}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--data-root", default=os.environ.get("PYRO_LVM_DATA"))
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--train-subset", type=int, default=10000, help="first N training images")
    parser.add_argument("--test-subset", type=int, default=None, help="first N test images (default all)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--codebook-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="vqvae_quantizers.json")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    main(parser.parse_args())
