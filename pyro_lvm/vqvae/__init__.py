"""VQ-VAE in plain PyTorch: quantizers with a healthy codebook, and a PixelCNN prior for sampling.

This package stands apart from the Pyro models and must not import Pyro.

Example::

    import torch
    from pyro_lvm.vqvae import VQVAE, CodePrior

    images = torch.rand(8, 1, 28, 28)
    model = VQVAE(num_codes=512)              # 28x28 images -> a 7x7 grid of codes
    out = model(images)                       # named outputs: out.loss, out.reconstruction, ...
    codes = model.encode(images)              # [LongTensor of shape (8, 7, 7)]
    prior = CodePrior(model.num_codes, model.grid_shapes)
    samples = model.decode(prior.sample(4))   # (4, 1, 28, 28)

Training, the prior's fit and the figures: :mod:`pyro_lvm.vqvae.train`,
:mod:`pyro_lvm.vqvae.figures`; the whole pipeline: ``pyro-lvm train vqvae`` (:mod:`pyro_lvm.runs.vqvae`).

References

1. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning. NeurIPS 2017.
2. A. Razavi, A. van den Oord, O. Vinyals. Generating Diverse High-Fidelity Images with VQ-VAE-2.
   NeurIPS 2019.
3. A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
"""
from pyro_lvm.vqvae.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from pyro_lvm.vqvae.health import CodebookUsage
from pyro_lvm.vqvae.model import PlainAutoencoder, VQVAE, VQVAEConfig, VQVAEOutput
from pyro_lvm.vqvae.nets import Decoder, Encoder, ResidualBlock
from pyro_lvm.vqvae.prior import CodePrior, GatedPixelCNN, MaskedConv2d
from pyro_lvm.vqvae.quantizer import VectorQuantizer, VectorQuantizerEMA, VQOutput, perplexity

__all__ = [
    "Checkpoint",
    "CodePrior",
    "CodebookUsage",
    "Decoder",
    "Encoder",
    "GatedPixelCNN",
    "MaskedConv2d",
    "PlainAutoencoder",
    "ResidualBlock",
    "VQOutput",
    "VQVAE",
    "VQVAEConfig",
    "VQVAEOutput",
    "VectorQuantizer",
    "VectorQuantizerEMA",
    "load_checkpoint",
    "perplexity",
    "save_checkpoint",
]
