r"""A gated PixelCNN over grids of code indices, the VQ-VAE's learned prior.

The prior factorises a grid of codes in raster order,
:math:`p(c) = \prod_{i,j} p(c_{ij} \mid c_{<(i,j)})`, with a gated PixelCNN (van den Oord et al.
2016b): the masked convolutions and gated layers are those of :mod:`pyro_lvm.nn.masked` (plain
torch, shared with the VAE's autoregressive decoder), which also documents the receptive field.

For a two-level VQ-VAE-2 the bottom grid is modelled conditionally on the top grid: a map of the
top codes' embeddings, resized to the bottom grid, enters every gate through a 1x1 convolution
(the location-dependent conditioning of eq. 5).

References

1. A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves, K. Kavukcuoglu.
   Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
2. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning. NeurIPS 2017.
3. A. Razavi, A. van den Oord, O. Vinyals. Generating Diverse High-Fidelity Images with VQ-VAE-2.
   NeurIPS 2019.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from pyro_lvm.nn.masked import (GatedLayer, GatedStack, MaskedConv2d, horizontal_mask, output_head,
                                vertical_mask)

__all__ = ["CodePrior", "GatedLayer", "GatedPixelCNN", "GatedStack", "MaskedConv2d", "horizontal_mask",
           "vertical_mask"]


class GatedPixelCNN(nn.Module):
    """Autoregressive categorical model of one grid of code indices.

    :param int num_codes: number of categories :math:`K`.
    :param int channels: channels of the gated stacks (and of the code embedding).
    :param int num_layers: gated layers; the first uses mask ``A``.
    :param int kernel_size: odd kernel width of layers after the first.
    :param int first_kernel_size: odd kernel width of the first layer.
    :param int hidden_channels: channels of the 1x1 output head; default ``2 * channels``.
    :param int cond_channels: channels of an optional spatial conditioning map.
    """

    def __init__(self, num_codes, channels=64, num_layers=6, kernel_size=3, first_kernel_size=5,
                 hidden_channels=None, cond_channels=0):
        super().__init__()
        self.num_codes = num_codes
        self.embedding = nn.Embedding(num_codes, channels)
        self.layers = GatedStack(channels, num_layers, kernel_size, first_kernel_size, cond_channels)
        self.head = output_head(channels, hidden_channels or 2 * channels, num_codes)

    def embed(self, indices):
        """Code indices ``(N, H, W)`` to the input map ``(N, channels, H, W)``."""
        if indices.dim() != 3:
            raise ValueError(f"expected code indices of shape (N, H, W), got {tuple(indices.shape)}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"code indices must lie in [0, {self.num_codes})")
        return self.embedding(indices.long()).permute(0, 3, 1, 2)

    def logits_from_embedding(self, x, cond=None):
        """Logits ``(N, K, H, W)`` from an embedded grid; logits at (i, j) see only earlier positions."""
        return self.head(self.layers(x, cond))

    def forward(self, indices, cond=None):
        """Logits ``(N, K, H, W)`` of :math:`p(c_{ij} \\mid c_{<(i,j)})`."""
        return self.logits_from_embedding(self.embed(indices), cond)

    @torch.no_grad()
    def sample(self, num_samples, shape, cond=None, temperature=1.0, generator=None):
        """Draw grids ``(num_samples, H, W)`` position by position in raster order.

        :param tuple shape: ``(H, W)``.
        :param torch.Tensor cond: conditioning map ``(num_samples, cond_channels, H, W)``, if the
            network takes one.
        :param float temperature: divides the logits; below 1 favours likely codes.
        :param torch.Generator generator: random numbers for reproducible samples.
        """
        height, width = shape
        device = self.embedding.weight.device
        codes = torch.zeros(num_samples, height, width, dtype=torch.long, device=device)
        for i in range(height):
            from_above = self.layers.from_rows_above(self.embed(codes), i, cond)
            for j in range(width):
                features = self.layers.features_at(self.embed(codes), i, j, from_above, cond)
                probs = torch.softmax(self.head(features)[:, :, 0, 0] / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return codes


class CodePrior(nn.Module):
    r"""Prior over the code maps of a one- or two-level VQ-VAE, coarsest level first.

    :math:`p(c_1, \ldots, c_L) = p(c_1) \prod_{l > 1} p(c_l \mid c_{l-1})`, each factor a
    :class:`GatedPixelCNN`; a lower level sees the level above through an embedding of its codes
    resized (nearest neighbour) to its own grid.

    :param list num_codes: codebook size of each level.
    :param list grid_shapes: ``(H, W)`` of each level's grid.
    :param int channels: see :class:`GatedPixelCNN`.
    :param int num_layers: see :class:`GatedPixelCNN`.
    :param int kernel_size: see :class:`GatedPixelCNN`.
    :param int first_kernel_size: see :class:`GatedPixelCNN`.
    :param int hidden_channels: see :class:`GatedPixelCNN`.
    """

    def __init__(self, num_codes, grid_shapes, channels=64, num_layers=6, kernel_size=3,
                 first_kernel_size=5, hidden_channels=None):
        super().__init__()
        num_codes, grid_shapes = list(num_codes), [tuple(s) for s in grid_shapes]
        if len(num_codes) != len(grid_shapes) or not num_codes:
            raise ValueError("num_codes and grid_shapes need one entry per level")
        self.config = dict(num_codes=num_codes, grid_shapes=grid_shapes, channels=channels,
                           num_layers=num_layers, kernel_size=kernel_size,
                           first_kernel_size=first_kernel_size, hidden_channels=hidden_channels)
        self.grid_shapes = grid_shapes
        self.nets = nn.ModuleList(
            GatedPixelCNN(k, channels, num_layers, kernel_size, first_kernel_size, hidden_channels,
                          cond_channels=channels if level else 0)
            for level, k in enumerate(num_codes))
        self.cond_embeddings = nn.ModuleList(nn.Embedding(k, channels) for k in num_codes[:-1])

    def _condition(self, level, codes_above):
        if level == 0:
            return None
        cond = self.cond_embeddings[level - 1](codes_above.long()).permute(0, 3, 1, 2)
        return F.interpolate(cond, size=self.grid_shapes[level], mode="nearest")

    def _check(self, codes):
        if len(codes) != len(self.nets):
            raise ValueError(f"expected {len(self.nets)} code map(s), got {len(codes)}")
        for level, (c, shape) in enumerate(zip(codes, self.grid_shapes)):
            if tuple(c.shape[1:]) != shape:
                raise ValueError(f"level {level}: expected code maps of shape (N, {shape[0]}, "
                                 f"{shape[1]}), got {tuple(c.shape)}")

    def forward(self, codes):
        """Logits for every level, a list of ``(N, K_l, H_l, W_l)``."""
        self._check(codes)
        return [net(c, self._condition(level, codes[level - 1] if level else None))
                for level, (net, c) in enumerate(zip(self.nets, codes))]

    def nll_bits(self, codes):
        r"""Negative log-likelihood in bits of each level's grid: a list of ``(N,)`` tensors,
        :math:`-\log_2 p(c_l \mid c_{l-1})` summed over the grid's positions."""
        return [F.cross_entropy(logits, c.long(), reduction="none").flatten(1).sum(1) / math.log(2)
                for logits, c in zip(self(codes), codes)]

    @torch.no_grad()
    def sample(self, num_samples, temperature=1.0, generator=None):
        """Draw code maps for every level, coarsest first."""
        codes = []
        for level, (net, shape) in enumerate(zip(self.nets, self.grid_shapes)):
            cond = self._condition(level, codes[-1] if codes else None)
            codes.append(net.sample(num_samples, shape, cond, temperature, generator))
        return codes
