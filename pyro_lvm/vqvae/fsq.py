r"""Finite scalar quantization (FSQ): a fixed grid instead of a learned codebook.

Mentzer et al. (2023), section 3: each of the :math:`d` channels of the (projected) encoder
output is bounded to :math:`L_i` values and rounded,

.. math::

    f(z)_i = \left\lfloor L_i / 2 \right\rfloor \tanh(z_i) \quad\text{(odd } L_i\text{; eq. 1)},
    \qquad \hat z_i = \mathrm{round}(f(z)_i) / \lfloor L_i / 2 \rfloor,

with the straight-through gradient of the rounding,
:math:`\mathrm{round}_{ST}(x) = x + \mathrm{sg}[\mathrm{round}(x) - x]`. As in the paper's appendix
A.1 code, the bound is :math:`f(z)_i = h_i \tanh(z_i + s_i) - o_i` with
:math:`h_i = (L_i - 1)(1 - \epsilon)/2` (the margin :math:`\epsilon` keeps the ends off the
rounding boundaries), :math:`o_i = 1/2` for even :math:`L_i` and 0 for odd, and
:math:`s_i = \tan(o_i / h_i)`, so that exactly :math:`L_i` integers lie in its range for every
:math:`L_i \ge 2` (:math:`\operatorname{atanh}` would centre the grid exactly at :math:`z = 0` but is
undefined for :math:`L_i = 2`; the shift only moves the grid's centre). The implied codebook is the
product grid of :math:`\prod_i L_i` points; a point's index is its mixed-radix number
:math:`k = \sum_i (\hat z_i \lfloor L_i/2 \rfloor + \lfloor L_i/2 \rfloor)\, \prod_{j<i} L_j` for odd
:math:`L_i` (the levels counted from the lowest for even ones). There is nothing to learn, no
auxiliary loss (``loss``, ``codebook_loss`` and ``commitment_loss`` are zero) and no dead codes to
replace. The paper's recommended levels: :math:`2^8` codes ``(8, 6, 5)``, :math:`2^{10}`
``(8, 5, 5, 5)``, :math:`2^{12}` ``(7, 5, 5, 5, 5)`` (table 1); ``(8, 8, 8)`` gives 512.

References

1. F. Mentzer, D. Minnen, E. Agustsson, M. Tschannen. Finite Scalar Quantization: VQ-VAE Made
   Simple. ICLR 2024 (arXiv:2309.15505, 2023), section 3, eq. 1 and appendix A.1.
"""
import math

import torch
from torch import nn

from pyro_lvm.vqvae.quantizer import VQOutput, channels_last, check_indices, no_autocast, perplexity, working_dtype


def round_ste(x):
    """Round to the nearest integer with the straight-through (identity) gradient."""
    return x + (torch.round(x) - x).detach()


class FiniteScalarQuantizer(nn.Module):
    """FSQ with levels :math:`L = (L_1, \\dots, L_d)` per channel; ``embedding_dim = d``.

    :param levels: the number of values of each channel, each at least 2.
    :param float eps: the margin :math:`\\epsilon` that keeps the bound inside its top level.
    """

    def __init__(self, levels, eps=1e-3):
        super().__init__()
        levels = [int(level) for level in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ needs at least one channel with at least 2 levels each, got {levels}")
        self.levels = levels
        self.eps = eps
        self.embedding_dim = len(levels)
        self.num_codes = math.prod(levels)
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.float64), persistent=False)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)

    index_shape = ()
    num_restarts = 0

    def extra_repr(self):
        return f"levels={self.levels}, num_codes={self.num_codes}"

    def bound(self, z):
        """:math:`f(z)`, each channel in a range holding exactly :math:`L_i` integers; ``z`` is ``(M, d)``."""
        levels = self._levels.to(z.dtype)
        half = (levels - 1) * (1 - self.eps) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.tan(offset / half)
        return torch.tanh(z + shift) * half - offset

    def _half_width(self, dtype):
        return torch.div(self._levels, 2, rounding_mode="floor").to(dtype)

    def quantize(self, z):
        """The grid point :math:`\\hat z` in :math:`[-1, 1]^d` for rows ``z`` of shape ``(M, d)``."""
        return round_ste(self.bound(z)) / self._half_width(z.dtype)

    def codes_to_indices(self, codes):
        """Mixed-radix index of each grid point (rows of ``codes``, as :meth:`quantize` returns them)."""
        digits = torch.round(codes * self._half_width(codes.dtype) + self._half_width(codes.dtype)).long()
        return (digits * self._basis).sum(-1)

    def indices_to_codes(self, indices, dtype=torch.float32):
        """The grid points ``(..., d)`` of integer indices, in ``dtype``."""
        digits = torch.div(indices.unsqueeze(-1), self._basis, rounding_mode="floor") % self._levels.long()
        half = self._half_width(dtype)
        return (digits.to(dtype) - half) / half

    def forward(self, z):
        flat, shape = channels_last(z, self.embedding_dim)
        with no_autocast(z.device):
            codes = self.quantize(flat.to(working_dtype(z)))
            indices = self.codes_to_indices(codes.detach())
        counts = torch.bincount(indices, minlength=self.num_codes)
        zero = codes.new_zeros(())
        return VQOutput(
            quantized=codes.reshape(shape).movedim(-1, 1).to(z.dtype),
            indices=indices.reshape(shape[:-1]),
            loss=zero, codebook_loss=zero, commitment_loss=zero,
            perplexity=perplexity(counts),
            counts=counts,
        )

    def lookup(self, indices):
        """Grid points for a grid of indices ``(N, *spatial)``, as ``(N, d, *spatial)``."""
        return self.indices_to_codes(check_indices(indices, self.num_codes)).movedim(-1, 1)
