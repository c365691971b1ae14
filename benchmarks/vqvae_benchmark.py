"""VQ-VAE benchmark on MNIST and Fashion-MNIST: reconstruction, codebook health, prior, time.

(The quantizer variants side by side with vector-quantize-pytorch: ``benchmarks/vqvae_quantizers.py``.)

For each data set it trains, on the same data in the same order:

- ``vq-plain``: learned codebook (eq. 3 of van den Oord et al. 2017), uniform random start,
  no moving averages, no restarts;
- ``vq-ema``: moving-average codebook with a k-means start on the first batch;
- ``vq-ema-restarts``: the same plus restarts of codes unused for 20 batches (the package's
  default before the count floor);
- ``vq-ema-floor``: the package's default, the count floor (codes whose moving-average count
  falls below 2 move to encoder outputs), and a gated PixelCNN prior on its codes (test bits per
  code, samples, a bits-per-dim bound);
- ``ae``: the same encoder and decoder without quantization (a 16 x 7 x 7 continuous bottleneck);
- ``ae-1ch``: the same nets with a 1 x 7 x 7 continuous bottleneck, one number per code position.

It prints a markdown table and writes ``benchmarks/results/vqvae_benchmark.json`` and, per data
set, ``vqvae_samples_<data>.png``, ``vqvae_reconstructions_<data>.png`` and
``vqvae_codebook_usage_<data>.png``.

    python benchmarks/vqvae_benchmark.py --train-subset 10000 --epochs 8 --prior-epochs 8
    python benchmarks/vqvae_benchmark.py --smoke        # a quick check on the embedded subset
"""
import argparse
import json
import os
import time

import torch

from common import RESULTS, environment
from pyro_lvm.vqvae import VQVAE, CodePrior, PlainAutoencoder, VQVAEConfig
from pyro_lvm.vqvae.datasets import load_images
from pyro_lvm.vqvae.evaluate import (bits_per_dim, evaluate_reconstruction, fit_decoder_scale,
                                     prior_nll)
from pyro_lvm.vqvae.figures import plot_codebook_usage, save_prior_samples, save_reconstructions
from pyro_lvm.vqvae.train import encode_dataset, fit_prior, fit_vqvae

ROWS = {
    "vq-plain": dict(model=VQVAE, ema=False, kmeans_init=False, restart_after=None, dead_code_threshold=None),
    "vq-ema": dict(model=VQVAE, ema=True, kmeans_init=True, restart_after=None, dead_code_threshold=None),
    "vq-ema-restarts": dict(model=VQVAE, ema=True, kmeans_init=True, restart_after=20, dead_code_threshold=None),
    "vq-ema-floor": dict(model=VQVAE, ema=True, kmeans_init=True, restart_after=None, dead_code_threshold=2.0,
                         prior=True),
    "ae": dict(model=PlainAutoencoder),
    "ae-1ch": dict(model=PlainAutoencoder, embedding_dim=1),
}
FILE_NAMES = {"mnist": "mnist", "fashion-mnist": "fashion_mnist", "embedded": "embedded"}


def run_row(name, spec, data, args):
    spec = dict(spec)
    cls, with_prior = spec.pop("model"), spec.pop("prior", False)
    torch.manual_seed(args.seed)
    config = VQVAEConfig(num_codes=args.codebook_size, **spec)
    model = cls(config)
    train_loader = data.train_loader(args.batch_size, generator=torch.Generator().manual_seed(args.seed))
    test_loader = data.test_loader(256)
    history = fit_vqvae(model, train_loader, args.epochs, args.lr, progress=args.progress)
    metrics, usages = evaluate_reconstruction(model, test_loader)
    last = history[-1]
    row = {"row": name, "test_mse": metrics["test_mse"],
           "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
           "parameters": sum(p.numel() for p in model.parameters())}
    if usages:
        row.update({k: metrics[k] for k in ("test_codes_used", "test_usage", "test_perplexity")})
        row.update({k: last[k] for k in ("train_codes_used", "train_usage", "train_perplexity")})
        row["restarts"] = sum(r["restarts"] for r in history)
    prior = None
    if with_prior:
        train_codes = encode_dataset(model, data.train_loader(256, shuffle=False))
        test_codes = encode_dataset(model, test_loader)
        prior = CodePrior(model.num_codes, model.grid_shapes)
        prior_history = fit_prior(prior, train_codes, args.prior_epochs, batch_size=args.batch_size,
                                  seed=args.seed, progress=args.progress)
        row["prior_test_bits_per_code"] = prior_nll(prior, test_codes)["bits_per_code"]
        row["prior_seconds_per_epoch"] = sum(r["seconds"] for r in prior_history) / len(prior_history)
        log_scale = fit_decoder_scale(model, data.train_loader(256, shuffle=False))
        row.update(bits_per_dim(model, prior, test_loader, log_scale))
        history = {"vqvae": history, "prior": prior_history}
    return row, history, model, prior, usages


def draw(dataset, models, data, args):
    tag = FILE_NAMES.get(dataset, dataset)
    model, prior, _ = models["vq-ema-floor"]
    save_prior_samples(model, prior, os.path.join(args.out, f"vqvae_samples_{tag}.png"), 100,
                       generator=torch.Generator().manual_seed(args.seed))
    save_reconstructions(model, data.test[:30], os.path.join(args.out, f"vqvae_reconstructions_{tag}.png"))
    vq_rows = [name for name in models if name.startswith("vq")]
    plot_codebook_usage([models[n][2][0] for n in vq_rows],
                        os.path.join(args.out, f"vqvae_codebook_usage_{tag}.png"),
                        title=f"{dataset}: test-set code usage, K={args.codebook_size}", labels=vq_rows)


def markdown_table(rows):
    columns = [("data", "{}"), ("row", "{}"), ("test_mse", "{:.5f}"), ("test_codes_used", "{}"),
               ("test_perplexity", "{:.1f}"), ("train_codes_used", "{}"), ("restarts", "{}"),
               ("prior_test_bits_per_code", "{:.3f}"), ("bits_per_dim_bound", "{:.3f}"),
               ("seconds_per_epoch", "{:.1f}"), ("prior_seconds_per_epoch", "{:.1f}")]
    lines = ["| " + " | ".join(c for c, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = [fmt.format(row[c]) if row.get(c) is not None else "" for c, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(args):
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.datasets, args.train_subset, args.test_subset = ["embedded"], 512, 256
        args.epochs, args.prior_epochs = 1, 1
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    rows, histories = [], {}
    for dataset in args.datasets:
        data = load_images(dataset, args.data_root, args.seed, args.train_subset, args.test_subset)
        models = {}
        for name in args.rows:
            row, history, model, prior, usages = run_row(name, ROWS[name], data, args)
            row = {"data": dataset, **row}
            rows.append(row)
            histories[f"{dataset}/{name}"] = history
            if name.startswith("vq"):
                models[name] = (model, prior, usages)
            print(markdown_table([row]).splitlines()[-1], flush=True)
        if "vq-ema-floor" in models:
            draw(dataset, models, data, args)
        schedule = {k: v for k, v in vars(args).items() if k not in ("progress",)}
        payload = {"schedule": schedule, "environment": environment(),
                   "wall_seconds": time.perf_counter() - start, "results": rows,
                   "histories": histories}
        path = os.path.join(args.out, "vqvae_benchmark_smoke.json" if args.smoke else "vqvae_benchmark.json")
        with open(path, "w") as f:  # rewritten after each data set, so a cut-off run keeps the first
            json.dump(payload, f, indent=2)
    print()
    print(markdown_table(rows))
    print(f"\nwall time {time.perf_counter() - start:.0f} s on {args.threads} thread(s); written {path}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--data-root", default=os.environ.get("PYRO_LVM_DATA") or os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--train-subset", type=int, default=10000, help="first N training images")
    parser.add_argument("--test-subset", type=int, default=None, help="first N test images (all)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--prior-epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--codebook-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--progress", action="store_true", help="tqdm bars (off: logs stay short)")
    main(parser.parse_args())
