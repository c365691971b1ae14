r"""VQ-VAE models: one code map (van den Oord et al. 2017) or a top and bottom map (Razavi et al. 2019).

A model maps an image to one or more grids of code indices and back. Its training loss is eq. 3
of van den Oord et al. (2017) with a Gaussian decoder of fixed variance, so that
:math:`-\log p(x \mid z_q)` becomes the per-pixel mean squared error:

.. math::

    \mathcal{L} = \tfrac{1}{CHW}\|x - \hat x\|_2^2 + \sum_{\text{levels}}
        \Big(\|\mathrm{sg}[z_e] - e\|_2^2 + \beta \|z_e - \mathrm{sg}[e]\|_2^2\Big)

(with the codebook term replaced by moving averages for :class:`VectorQuantizerEMA`). A
:class:`PlainAutoencoder` with the same encoder and decoder but no quantizer is the reference for
reconstruction error.

References

1. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning. NeurIPS 2017.
2. A. Razavi, A. van den Oord, O. Vinyals. Generating Diverse High-Fidelity Images with VQ-VAE-2.
   NeurIPS 2019.
"""
import contextlib
import dataclasses
import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from pyro_lvm.vqvae.nets import Decoder, Encoder
from pyro_lvm.vqvae.cosine import CosineVectorQuantizer, CosineVectorQuantizerEMA
from pyro_lvm.vqvae.fsq import FiniteScalarQuantizer
from pyro_lvm.vqvae.projection import ProjectedQuantizer
from pyro_lvm.vqvae.quantizer import VectorQuantizer, VectorQuantizerEMA
from pyro_lvm.vqvae.residual import ResidualVectorQuantizer


@dataclasses.dataclass
class VQVAEConfig:
    """Everything needed to rebuild a model; stored in checkpoints.

    :param int in_channels: image channels.
    :param tuple image_size: ``(H, W)``; each side must be divisible by ``2**num_downsamples``
        (by ``2**(num_downsamples + 1)`` with two levels).
    :param int hidden_channels: channels of the encoder and decoder.
    :param int residual_channels: inner channels of the residual blocks.
    :param int num_residual_layers: residual blocks in each stack.
    :param int embedding_dim: code dimension :math:`D`.
    :param int num_codes: codebook size :math:`K` (per level).
    :param int num_downsamples: stride-2 convolutions down to the (bottom) code grid.
    :param int levels: 1 for a VQ-VAE, 2 for a VQ-VAE-2 style top and bottom map.
    :param float commitment_cost: :math:`\\beta`.
    :param bool ema: moving-average codebook instead of a learned one.
    :param float decay: moving-average decay :math:`\\gamma`.
    :param float epsilon: Laplace smoothing of the moving-average counts.
    :param bool kmeans_init: k-means initialisation of the codebook on the first batch.
    :param int restart_after: replace codes unused for this many training batches; ``None`` never.
    :param float dead_code_threshold: replace, every step, each code whose moving-average count
        is below this floor (counts start at the k-means cluster sizes); ``None`` turns it off.
        The default (2.0, no ``restart_after``) measured best in ``benchmarks/vqvae_benchmark.py``.
    :param str replacement: where a replaced code goes, ``"uniform"`` (a random encoder output of
        the batch) or ``"error"`` (one drawn in proportion to its squared quantization error).
    :param str quantizer: ``"vq"`` (Euclidean codes), ``"cosine"`` (l2-normalized codes,
        :mod:`pyro_lvm.vqvae.cosine`) or ``"fsq"`` (finite scalar quantization,
        :mod:`pyro_lvm.vqvae.fsq`; ``num_codes`` becomes the product of ``fsq_levels``).
    :param int codebook_dim: search codes of this dimension between learned projections from and
        to ``embedding_dim`` (:mod:`pyro_lvm.vqvae.projection`); ``None`` searches in
        ``embedding_dim``. FSQ always projects to ``len(fsq_levels)`` channels.
    :param int residual_depth: quantizers per level in a residual stack
        (:mod:`pyro_lvm.vqvae.residual`); 1 is plain VQ.
    :param tuple fsq_levels: levels per FSQ channel, e.g. ``(8, 8, 8)`` for 512 codes.
    """

    in_channels: int = 1
    image_size: Tuple[int, int] = (28, 28)
    hidden_channels: int = 64
    residual_channels: int = 32
    num_residual_layers: int = 2
    embedding_dim: int = 16
    num_codes: int = 512
    num_downsamples: int = 2
    levels: int = 1
    commitment_cost: float = 0.25
    ema: bool = True
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = True
    restart_after: Optional[int] = None
    dead_code_threshold: Optional[float] = 2.0
    replacement: str = "uniform"
    quantizer: str = "vq"
    codebook_dim: Optional[int] = None
    residual_depth: int = 1
    fsq_levels: Optional[Tuple[int, ...]] = None

    #: values of the fields added after the first release, for configs saved without them
    LEGACY = {"dead_code_threshold": None, "replacement": "uniform", "quantizer": "vq", "codebook_dim": None,
              "residual_depth": 1, "fsq_levels": None}

    @classmethod
    def from_dict(cls, values):
        """The config saved by :meth:`to_dict`; fields it lacks take their pre-upgrade values."""
        return cls(**{**cls.LEGACY, **values})

    def __post_init__(self):
        self.image_size = tuple(int(s) for s in self.image_size)
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}")
        if self.residual_depth < 1:
            raise ValueError(f"residual_depth must be at least 1, got {self.residual_depth}")
        if self.codebook_dim is not None and self.codebook_dim < 1:
            raise ValueError(f"codebook_dim must be a positive dimension or None, got {self.codebook_dim}")
        if self.quantizer == "fsq":
            if not self.fsq_levels or min(self.fsq_levels) < 2:
                raise ValueError(f"the fsq quantizer needs fsq_levels, each at least 2 "
                                 f"(e.g. (8, 8, 8) for 512 codes), got {self.fsq_levels}")
            if self.residual_depth != 1 or self.codebook_dim is not None:
                raise ValueError("the fsq quantizer takes no residual_depth or codebook_dim "
                                 "(its dimension is len(fsq_levels))")
            self.fsq_levels = tuple(int(level) for level in self.fsq_levels)
            self.num_codes = math.prod(self.fsq_levels)
        if self.levels not in (1, 2):
            raise ValueError(f"levels must be 1 or 2, got {self.levels}")
        factor = 2 ** (self.num_downsamples + self.levels - 1)
        if any(s % factor for s in self.image_size):
            raise ValueError(
                f"image size {self.image_size} is not divisible by {factor} "
                f"(2**num_downsamples{' * 2 for the top level' if self.levels == 2 else ''}); "
                f"for 28x28 images use num_downsamples={2 if self.levels == 1 else 1}")

    @property
    def grid_shapes(self):
        """``(H, W)`` of each code map, coarsest first."""
        shapes = []
        for level in reversed(range(self.levels)):
            factor = 2 ** (self.num_downsamples + level)
            shapes.append(tuple(s // factor for s in self.image_size))
        return shapes

    @property
    def input_shape(self):
        return (self.in_channels,) + self.image_size

    def to_dict(self):
        return dataclasses.asdict(self)


class VQVAEOutput(NamedTuple):
    """What a model's forward pass returns.

    :ivar reconstruction: decoder mean :math:`\\hat x`, the input's shape.
    :ivar loss: the training loss (reconstruction plus every quantizer's loss).
    :ivar reconstruction_loss: per-pixel mean squared error.
    :ivar quantizer_outputs: one :class:`~pyro_lvm.vqvae.quantizer.VQOutput` per level, coarsest
        first; empty for a :class:`PlainAutoencoder`.
    """

    reconstruction: torch.Tensor
    loss: torch.Tensor
    reconstruction_loss: torch.Tensor
    quantizer_outputs: tuple


@contextlib.contextmanager
def evaluating(module):
    """Put ``module`` in eval mode (no codebook updates) and turn off gradients for a while."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


QUANTIZERS = ("vq", "cosine", "fsq")


def make_quantizer(config):
    """The quantizer of one level that ``config`` describes (see :class:`VQVAEConfig`)."""
    if config.quantizer == "fsq":
        return ProjectedQuantizer(FiniteScalarQuantizer(config.fsq_levels), config.embedding_dim)
    dim = config.codebook_dim or config.embedding_dim
    common = dict(num_codes=config.num_codes, embedding_dim=dim, decay=config.decay,
                  commitment_cost=config.commitment_cost, kmeans_init=config.kmeans_init,
                  restart_after=config.restart_after, dead_code_threshold=config.dead_code_threshold,
                  replacement=config.replacement)
    cosine = config.quantizer == "cosine"
    if config.ema:
        cls = CosineVectorQuantizerEMA if cosine else VectorQuantizerEMA
        common["epsilon"] = config.epsilon
    else:
        cls = CosineVectorQuantizer if cosine else VectorQuantizer
    stages = [cls(**common) for _ in range(config.residual_depth)]
    quantizer = stages[0] if len(stages) == 1 else ResidualVectorQuantizer(stages)
    if dim != config.embedding_dim:
        quantizer = ProjectedQuantizer(quantizer, config.embedding_dim)
    return quantizer


def _encoder(config, in_channels, out_channels, num_downsamples):
    return Encoder(in_channels, config.hidden_channels, config.residual_channels,
                   config.num_residual_layers, out_channels, num_downsamples)


def _decoder(config, in_channels, out_channels, num_upsamples):
    return Decoder(out_channels, config.hidden_channels, config.residual_channels,
                   config.num_residual_layers, in_channels, num_upsamples)


class _ImageModel(nn.Module):
    """Input checks and the loss shared by the VQ-VAEs and the plain autoencoder."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def check_input(self, x):
        expected = self.config.input_shape
        if not torch.is_tensor(x) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, expected))}), "
                             f"got {shape}")
        return x

    def _output(self, x, reconstruction, quantizer_outputs):
        reconstruction_loss = F.mse_loss(reconstruction, x)
        loss = reconstruction_loss + sum(q.loss for q in quantizer_outputs)
        return VQVAEOutput(reconstruction, loss, reconstruction_loss, tuple(quantizer_outputs))


class VQVAE(_ImageModel):
    """VQ-VAE with one or two levels of codes (``config.levels``).

    One level: ``x -> Encoder -> quantizer -> Decoder``.

    Two levels (Razavi et al. 2019, fig. 2a): the bottom encoder gives features :math:`h_b`; a
    further stride-2 encoder gives the top map, quantized to :math:`e_t`; the bottom map is
    quantized from :math:`h_b` together with a decoding of :math:`e_t`; the decoder reads the
    bottom codes and an upsampled copy of the top codes.

    :param VQVAEConfig config: sizes and quantizer options; ``VQVAE()`` uses the defaults.
    """

    def __init__(self, config=None, **kwargs):
        super().__init__(config if config is not None else VQVAEConfig(**kwargs))
        config, d = self.config, self.config.embedding_dim
        self.quantizers = nn.ModuleList(make_quantizer(config) for _ in range(config.levels))
        if config.levels == 1:
            self.encoder = _encoder(config, config.in_channels, d, config.num_downsamples)
            self.decoder = _decoder(config, d, config.in_channels, config.num_downsamples)
        else:
            h = config.hidden_channels
            self.encoder = _encoder(config, config.in_channels, h, config.num_downsamples)
            self.top_encoder = _encoder(config, h, d, 1)
            self.top_decoder = _decoder(config, d, d, 1)
            self.bottom_projection = nn.Conv2d(h + d, d, 1)
            self.top_upsample = nn.ConvTranspose2d(d, d, 4, stride=2, padding=1)
            self.decoder = _decoder(config, 2 * d, config.in_channels, config.num_downsamples)

    @property
    def grid_shapes(self):
        return self.config.grid_shapes

    @property
    def num_codes(self):
        """Codebook size of each level, coarsest first."""
        return [q.num_codes for q in self.quantizers]


    def quantize(self, x):
        """Quantizer outputs for each level, coarsest first."""
        features = self.encoder(self.check_input(x))
        if self.config.levels == 1:
            return [self.quantizers[0](features)]
        top = self.quantizers[0](self.top_encoder(features))
        bottom_in = torch.cat([features, self.top_decoder(top.quantized)], dim=1)
        return [top, self.quantizers[1](self.bottom_projection(bottom_in))]

    def decode_quantized(self, quantized):
        """Decoder mean from the quantized vectors of each level, coarsest first."""
        if self.config.levels == 1:
            return self.decoder(quantized[0])
        top, bottom = quantized
        return self.decoder(torch.cat([bottom, self.top_upsample(top)], dim=1))

    def forward(self, x):
        outputs = self.quantize(x)
        return self._output(x, self.decode_quantized([q.quantized for q in outputs]), outputs)

    def encode(self, x):
        """Code maps ``(N, H_l, W_l)`` of each level, coarsest first (eval mode, no gradient)."""
        with evaluating(self):
            return [q.indices for q in self.quantize(x)]

    def decode(self, codes):
        """Images from code maps, coarsest first (as :meth:`encode` returns them)."""
        if len(codes) != self.config.levels:
            raise ValueError(f"expected {self.config.levels} code map(s), got {len(codes)}")
        for c, shape, q in zip(codes, self.grid_shapes, self.quantizers):
            expected = tuple(q.index_shape) + shape
            if c.dim() != 1 + len(expected) or tuple(c.shape[1:]) != expected:
                raise ValueError(f"expected code maps of shape (N, {', '.join(map(str, expected))}), "
                                 f"got {tuple(c.shape)}")
        return self.decode_quantized([q.lookup(c) for q, c in zip(self.quantizers, codes)])


class PlainAutoencoder(_ImageModel):
    """The one-level VQ-VAE's encoder and decoder with nothing in between: a deterministic
    autoencoder with a continuous ``embedding_dim x H/4 x W/4`` bottleneck, trained on the
    per-pixel squared error alone. It is the yardstick for reconstruction error.

    :param VQVAEConfig config: only the network sizes are used.
    """

    def __init__(self, config=None, **kwargs):
        super().__init__(config if config is not None else VQVAEConfig(**kwargs))
        config = self.config
        self.encoder = _encoder(config, config.in_channels, config.embedding_dim,
                                config.num_downsamples)
        self.decoder = _decoder(config, config.embedding_dim, config.in_channels,
                                config.num_downsamples)

    def forward(self, x):
        return self._output(x, self.decoder(self.encoder(self.check_input(x))), ())


MODEL_KINDS = {"vqvae": VQVAE, "autoencoder": PlainAutoencoder}


def model_kind(model):
    """The name under which :data:`MODEL_KINDS` knows ``model``'s class."""
    for name, cls in MODEL_KINDS.items():
        if type(model) is cls:
            return name
    raise TypeError(f"not a VQ-VAE package model: {type(model).__name__}")
