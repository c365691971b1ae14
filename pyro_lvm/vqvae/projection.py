r"""A lower-dimensional codebook between learned linear projections ("factorized codes").

Yu et al. (2022), section 3.2: the encoder output :math:`z \in \mathbb{R}^D` is projected to
:math:`d < D` dimensions for the code search and the chosen code is projected back,

.. math::

    z_q = W_{out}\, Q(W_{in} z + b_{in}) + b_{out},

with :math:`Q` any quantizer of dimension :math:`d` (the paper uses :math:`d = 8` or 32, with
l2-normalized codes). The search in a low-dimensional space uses more of the codebook; the
projections are ordinary parameters learned by the training loss, and the straight-through
gradient of :math:`Q` carries the decoder's gradient through :math:`W_{out}` and :math:`W_{in}` to
the encoder. The same wrapper gives finite scalar quantization its few dimensions
(:mod:`pyro_lvm.vqvae.fsq`, where Mentzer et al. 2023 project the encoder output to
:math:`d = \text{len}(L)` channels).

References

1. J. Yu et al. Vector-quantized Image Modeling with Improved VQGAN. ICLR 2022 (section 3.2).
"""
from torch import nn

from pyro_lvm.vqvae.quantizer import VQOutput, channels_last


class ProjectedQuantizer(nn.Module):
    """Any quantizer of dimension ``quantizer.embedding_dim`` used on ``input_dim``-channel grids.

    :param nn.Module quantizer: the inner quantizer (it keeps its own upkeep and statistics).
    :param int input_dim: channels :math:`D` of the encoder output and of the returned ``quantized``.
    """

    def __init__(self, quantizer, input_dim):
        super().__init__()
        self.quantizer = quantizer
        self.embedding_dim = input_dim
        self.project_in = nn.Linear(input_dim, quantizer.embedding_dim)
        self.project_out = nn.Linear(quantizer.embedding_dim, input_dim)

    @property
    def num_codes(self):
        return self.quantizer.num_codes

    @property
    def num_restarts(self):
        return self.quantizer.num_restarts

    @property
    def index_shape(self):
        return self.quantizer.index_shape

    def extra_repr(self):
        return f"input_dim={self.embedding_dim}, codebook_dim={self.quantizer.embedding_dim}"

    def _out(self, low):
        return self.project_out(low.movedim(1, -1).to(self.project_out.weight.dtype)).movedim(-1, 1)

    def forward(self, z):
        flat, shape = channels_last(z, self.embedding_dim)
        low = self.project_in(flat).reshape(shape[:-1] + (-1,)).movedim(-1, 1)
        inner = self.quantizer(low)
        return VQOutput(self._out(inner.quantized).to(z.dtype), *inner[1:])

    def lookup(self, indices):
        """The projected-back codes for a grid of indices, ``(N, D, *spatial)``."""
        return self._out(self.quantizer.lookup(indices))
