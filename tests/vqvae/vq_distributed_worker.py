"""What each process runs in tests/vqvae/test_vq_distributed.py: one short VQ-VAE fit, then save.

``python tests/vqvae/vq_distributed_worker.py OUT_DIR``: a small EMA VQ-VAE with k-means
initialisation and restarts after one unused batch (so restarts happen) trains for two epochs on
random images, each process on its shard of every batch; every rank saves its state dict and
whether Pyro was imported.
"""
import os
import sys

import torch

from pyro_lvm import distributed
from pyro_lvm.data import TensorLoader
from pyro_lvm.vqvae.model import VQVAE, VQVAEConfig
from pyro_lvm.vqvae.train import fit_vqvae


def main(out):
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    torch.manual_seed(100 + distributed.rank())  # different draws per process: sync must not rely on luck
    config = VQVAEConfig(image_size=(8, 8), hidden_channels=8, residual_channels=4, num_residual_layers=1,
                         embedding_dim=4, num_codes=16, num_downsamples=1, kmeans_init=True, restart_after=1)
    model = VQVAE(config)
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loader = TensorLoader(images, 16, generator=torch.Generator().manual_seed(1))
    loader.shard(distributed.rank(), distributed.world_size())
    history = fit_vqvae(model, loader, epochs=2, lr=1e-2, progress=False, device="cpu")
    torch.save({"state": model.state_dict(), "restarts": [row["restarts"] for row in history],
                "train_loss": [row["train_loss"] for row in history], "pyro": "pyro" in sys.modules},
               os.path.join(out, f"rank{distributed.rank()}.pt"))
    distributed.barrier()


if __name__ == "__main__":
    main(sys.argv[1])
