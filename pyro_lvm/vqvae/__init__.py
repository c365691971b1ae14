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

Quantizers (all return :class:`VQOutput`): Euclidean codebooks learned by gradient or moving
averages (:mod:`~pyro_lvm.vqvae.quantizer`), cosine-similarity codebooks
(:mod:`~pyro_lvm.vqvae.cosine`), a low-dimensional codebook between projections
(:mod:`~pyro_lvm.vqvae.projection`), residual VQ (:mod:`~pyro_lvm.vqvae.residual`) and finite
scalar quantization (:mod:`~pyro_lvm.vqvae.fsq`); ``VQVAEConfig(quantizer=, codebook_dim=,
residual_depth=, fsq_levels=)`` picks one for a model.

References

1. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning. NeurIPS 2017.
2. A. Razavi, A. van den Oord, O. Vinyals. Generating Diverse High-Fidelity Images with VQ-VAE-2.
   NeurIPS 2019.
3. A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
"""
from pyro_lvm.vqvae.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from pyro_lvm.vqvae.cosine import CosineVectorQuantizer, CosineVectorQuantizerEMA
from pyro_lvm.vqvae.fsq import FiniteScalarQuantizer
from pyro_lvm.vqvae.health import CodebookUsage
from pyro_lvm.vqvae.model import PlainAutoencoder, VQVAE, VQVAEConfig, VQVAEOutput, make_quantizer
from pyro_lvm.vqvae.nets import Decoder, Encoder, ResidualBlock
from pyro_lvm.vqvae.prior import CodePrior, GatedPixelCNN, MaskedConv2d
from pyro_lvm.vqvae.projection import ProjectedQuantizer
from pyro_lvm.vqvae.quantizer import VectorQuantizer, VectorQuantizerEMA, VQOutput, perplexity
from pyro_lvm.vqvae.residual import ResidualVectorQuantizer

__all__ = [
    "Checkpoint",
    "CodePrior",
    "CodebookUsage",
    "CosineVectorQuantizer",
    "CosineVectorQuantizerEMA",
    "Decoder",
    "Encoder",
    "FiniteScalarQuantizer",
    "GatedPixelCNN",
    "MaskedConv2d",
    "PlainAutoencoder",
    "ProjectedQuantizer",
    "ResidualBlock",
    "ResidualVectorQuantizer",
    "VQOutput",
    "VQVAE",
    "VQVAEConfig",
    "VQVAEOutput",
    "VectorQuantizer",
    "VectorQuantizerEMA",
    "load_checkpoint",
    "make_quantizer",
    "perplexity",
    "save_checkpoint",
]
