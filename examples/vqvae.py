"""VQ-VAE on MNIST-like images, with a gated PixelCNN prior over its codes.

Trains the autoencoder (EMA codebook, k-means start, rarely used codes replaced at encoder outputs),
prints the codebook's health each epoch, fits the prior on the encoded training set, and writes reconstructions,
samples from the prior and a codebook-usage plot to ``--out``.

    python examples/vqvae.py --data mnist --epochs 10 --out runs/vqvae-example
    python examples/vqvae.py --smoke          # a few seconds on a tiny subset

References: van den Oord et al. 2017 (VQ-VAE), van den Oord et al. 2016 (gated PixelCNN).
"""
import argparse
import os

import torch

from pyro_lvm.vqvae import VQVAE, CodePrior, VQVAEConfig
from pyro_lvm.vqvae.datasets import load_images
from pyro_lvm.vqvae.evaluate import evaluate_reconstruction, prior_nll
from pyro_lvm.vqvae.figures import plot_codebook_usage, save_prior_samples, save_reconstructions
from pyro_lvm.vqvae.train import encode_dataset, fit_prior, fit_vqvae


def main(args):
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    subset = (256, 128) if args.smoke else (args.train_subset, None)
    epochs, prior_epochs = (1, 1) if args.smoke else (args.epochs, args.prior_epochs)
    name = args.data or ("embedded" if args.smoke else "auto")
    data = load_images(name, args.data_root, args.seed, *subset)

    config = VQVAEConfig(in_channels=data.input_shape[0], image_size=data.input_shape[1:],
                         num_codes=args.codebook_size, levels=args.levels,
                         num_downsamples=2 if args.levels == 1 else 1)
    model = VQVAE(config)
    train_loader = data.train_loader(args.batch_size, generator=torch.Generator().manual_seed(args.seed))
    test_loader = data.test_loader(args.batch_size)

    def report(row):
        health = ", ".join(f"{key[len('train_'):]} {value:.4g}" for key, value in row.items()
                           if key.startswith("train_") and ("codes_used" in key or "perplexity" in key))
        print(f"epoch {row['epoch']}: test mse {row['test_mse']:.5f}; over the epoch: {health}; "
              f"codes replaced {row['restarts']}")

    fit_vqvae(model, train_loader, epochs, args.lr, test_loader, progress=not args.smoke,
              on_epoch_end=report)

    prior = CodePrior(model.num_codes, model.grid_shapes)
    train_codes = encode_dataset(model, data.train_loader(args.batch_size, shuffle=False))
    test_codes = encode_dataset(model, test_loader)
    fit_prior(prior, train_codes, prior_epochs, batch_size=args.batch_size, seed=args.seed,
              progress=not args.smoke)
    bits = prior_nll(prior, test_codes)["bits_per_code"]
    metrics, usages = evaluate_reconstruction(model, test_loader)
    print(f"test mse {metrics['test_mse']:.5f}; prior: {bits:.3f} bits per code")

    os.makedirs(args.out, exist_ok=True)
    save_reconstructions(model, data.test[:50], os.path.join(args.out, "vqvae_reconstructions.png"))
    save_prior_samples(model, prior, os.path.join(args.out, "vqvae_samples.png"),
                       num_samples=20 if args.smoke else 100,
                       generator=torch.Generator().manual_seed(args.seed))
    plot_codebook_usage(usages, os.path.join(args.out, "vqvae_codebook_usage.png"))
    print(f"figures written to {args.out}")
    return {"test_mse": metrics["test_mse"], "prior_bits_per_code": bits}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None,
                        help="mnist, fashion-mnist, embedded, auto or synthetic "
                             "(default: auto; embedded with --smoke)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--prior-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--codebook-size", type=int, default=512)
    parser.add_argument("--levels", type=int, choices=(1, 2), default=1)
    parser.add_argument("--out", default=os.path.join("runs", "vqvae-example"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny data and one epoch")
    main(parser.parse_args())
