r"""Residual vector quantization: several quantizers, each coding what the previous ones missed.

Zeghidour et al. (2021), Algorithm 1 (SoundStream): with quantizers :math:`Q_1, \dots, Q_{N_q}`,

.. math::

    r_1 = z, \qquad \hat e_i = Q_i(r_i), \qquad r_{i+1} = r_i - \hat e_i, \qquad
    z_q = \sum_{i=1}^{N_q} \hat e_i,

so a position is coded by :math:`N_q` indices, and :math:`N_q` codebooks of :math:`K` codes
describe :math:`K^{N_q}` vectors. Each stage keeps its own codebook, upkeep and loss (eq. 3 of
van den Oord et al. 2017 on its residual; the losses are summed). The whole sum passes the
decoder's gradient straight through to :math:`z`,
:math:`z_q = z + \mathrm{sg}[\sum_i \hat e_i - z]`, and a stage's residual input depends on
:math:`z` through :math:`r_i = z - \mathrm{sg}[\sum_{j<i} \hat e_j]`, so each commitment term pulls
the encoder towards its own stage's code.

``indices`` have shape ``(N, N_q, *spatial)``, and ``counts`` are the stages' counts side by side
(``N_q * K`` entries, stage :math:`i`'s codes at ``i*K:(i+1)*K``), so the codebook health of the
training loop covers every codebook. In a two-level VQ-VAE-2 (``levels=2``) each level gets its
own residual stack. The PixelCNN prior of :mod:`pyro_lvm.vqvae.prior` models one code per
position and so does not apply to residual codes.

References

1. N. Zeghidour, A. Luebs, A. Omran, J. Skoglund, M. Tagliasacchi. SoundStream: An End-to-End
   Neural Audio Codec. IEEE/ACM TASLP 2021 (Algorithm 1).
"""
import torch
from torch import nn

from pyro_lvm.vqvae.quantizer import VQOutput, check_indices, perplexity, working_dtype


class ResidualVectorQuantizer(nn.Module):
    """Residual VQ over a list of quantizers of the same dimension and codebook size.

    :param quantizers: the stages :math:`Q_1, \\dots, Q_{N_q}` (e.g. ``VectorQuantizerEMA``).
    """

    def __init__(self, quantizers):
        super().__init__()
        self.stages = nn.ModuleList(quantizers)
        if not len(self.stages):
            raise ValueError("residual VQ needs at least one quantizer")
        dims = {q.embedding_dim for q in self.stages}
        sizes = {q.num_codes for q in self.stages}
        if len(dims) != 1 or len(sizes) != 1:
            raise ValueError(f"every stage needs the same dimension and codebook size, got {dims} and {sizes}")
        self.embedding_dim, self.num_codes = dims.pop(), sizes.pop()

    @property
    def depth(self):
        return len(self.stages)

    @property
    def index_shape(self):
        return (self.depth,)

    @property
    def num_restarts(self):
        return sum(int(q.num_restarts) for q in self.stages)

    def extra_repr(self):
        return f"depth={self.depth}"

    def forward(self, z):
        z_work = z.to(working_dtype(z))  # residuals in float32 under autocast
        residual, total, outputs = z_work, 0, []
        for stage in self.stages:
            out = stage(residual)
            code = out.quantized.detach()  # its value is the chosen code
            residual = residual - code
            total = total + code
            outputs.append(out)
        counts = torch.cat([out.counts for out in outputs])
        return VQOutput(
            quantized=(z_work + (total - z_work).detach()).to(z.dtype),
            indices=torch.stack([out.indices for out in outputs], dim=1),
            loss=sum(out.loss for out in outputs),
            codebook_loss=sum(out.codebook_loss for out in outputs),
            commitment_loss=sum(out.commitment_loss for out in outputs),
            perplexity=perplexity(counts),
            counts=counts,
        )

    def lookup(self, indices):
        """:math:`\\sum_i e^{(i)}_{k_i}` for indices ``(N, N_q, *spatial)``, as ``(N, D, *spatial)``."""
        indices = check_indices(indices, self.num_codes)
        if indices.dim() < 2 or indices.shape[1] != self.depth:
            raise ValueError(f"residual codes need shape (N, {self.depth}, ...), got {tuple(indices.shape)}")
        return sum(q.lookup(indices[:, i]) for i, q in enumerate(self.stages))
