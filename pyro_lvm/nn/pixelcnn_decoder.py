r"""An autoregressive decoder for binary images: a gated PixelCNN conditioned on a latent ``z``.

.. math::

    p_\theta(x \mid z) = \prod_{i} \prod_{c} \mathrm{Bernoulli}\big(x_{c,i} \mid
        \sigma(\eta_{c,i}(x_{<i}, z))\big),

with pixels :math:`i` in raster order and the channels :math:`c` of one pixel independent given
the earlier pixels. The logits :math:`\eta` come from the gated stack of
:mod:`pyro_lvm.nn.masked`, conditioned on :math:`z` twice: globally, through a linear map added
inside every gate (van den Oord et al. 2016, eq. 4), and, when a ``latent_map`` network is given,
through a feature map :math:`s = m(z)` of the image's size (eq. 5), which tells each position
what :math:`z` says about it. A decoder with a small receptive field must take the image's
global structure from :math:`z`, as in PixelVAE (Gulrajani et al. 2017) and the variational lossy
autoencoder (Chen et al. 2017); a large field lets it model the data alone and ignore :math:`z`.

Receptive field: with ``layers`` :math:`L` and ``kernel_size`` :math:`k` (in every layer),
:math:`R = L \lfloor k/2 \rfloor` and the logits of pixel :math:`(i, j)` depend only on pixels
:math:`(i, c)` with :math:`j - R \le c < j` and :math:`(r, c)` with :math:`i - R - 1 \le r < i`,
:math:`|c - j| \le R` (and on :math:`z`). :attr:`PixelCNNDecoder.reach` is :math:`R`.

References

1. A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves, K. Kavukcuoglu.
   Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
2. I. Gulrajani, K. Kumar, F. Ahmed, A. A. Taiga, F. Visin, D. Vazquez, A. Courville.
   PixelVAE: A Latent Variable Model for Natural Images. ICLR 2017.
3. X. Chen, D. P. Kingma, T. Salimans, Y. Duan, P. Dhariwal, J. Schulman, I. Sutskever,
   P. Abbeel. Variational Lossy Autoencoder. ICLR 2017.
"""
import torch
from torch import nn

from pyro_lvm.nn.masked import GatedStack, output_head

#: without gradients, images are pushed through the stack in chunks of at most this many
#: ``channels * H * W`` elements, so scoring many particles at once stays within memory
_CHUNK_ELEMENTS = 2 ** 23


class PixelCNNDecoder(nn.Module):
    """Bernoulli logits of every pixel from ``(z, x)`` by teacher forcing, and sequential sampling.

    :param tuple input_shape: ``(C, H, W)`` of one image.
    :param int latent_dim: size of ``z``.
    :param int layers: gated layers :math:`L`; the receptive field grows with it (module docstring).
    :param int channels: channels of the gated stacks.
    :param int kernel_size: odd kernel width of every layer.
    :param torch.nn.Module latent_map: optional network ``z (.., latent_dim) -> (.., map_channels, H, W)``
        for the location-dependent conditioning.
    :param int map_channels: channels of ``latent_map``'s output (needed with ``latent_map``).
    """

    def __init__(self, input_shape, latent_dim, layers=4, channels=32, kernel_size=3, latent_map=None,
                 map_channels=0):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"the PixelCNN decoder needs images of shape (C, H, W), got {tuple(input_shape)}")
        if (latent_map is None) != (map_channels == 0):
            raise ValueError("give latent_map and map_channels together (or neither)")
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.latent_map = latent_map
        self.channels = channels
        self.stack = GatedStack(channels, layers, kernel_size, kernel_size, cond_channels=map_channels,
                                cond_features=latent_dim, in_channels=self.input_shape[0])
        self.head = output_head(channels, 2 * channels, self.input_shape[0])

    @property
    def reach(self):
        """:math:`R = L \\lfloor k/2 \\rfloor`, the receptive field's half-width."""
        return self.stack.reach

    def _maps(self, z):
        return None if self.latent_map is None else self.latent_map(z)

    def _logits(self, z, x, maps):
        return self.head(self.stack(x, maps, z))

    def forward(self, z, x):
        """Logits ``(*batch, C, H, W)`` of :math:`p(x_i = 1 \\mid x_{<i}, z)` for every pixel.

        :param torch.Tensor z: latents ``(*z_batch, latent_dim)``.
        :param torch.Tensor x: binary images ``(*x_batch, C, H, W)``; ``z_batch`` and ``x_batch``
            broadcast (``z`` of shape ``(K, N, d)`` with ``x`` of shape ``(N, C, H, W)``).
        """
        if tuple(x.shape[-3:]) != self.input_shape:
            raise ValueError(f"expected images of shape (.., {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        batch = torch.broadcast_shapes(z.shape[:-1], x.shape[:-3])
        z = z.expand(*batch, z.shape[-1]).reshape(-1, z.shape[-1])
        x = x.expand(*batch, *self.input_shape).reshape(-1, *self.input_shape).to(z.dtype)
        if torch.is_grad_enabled():
            logits = self._logits(z, x, self._maps(z))
        else:
            chunk = max(1, _CHUNK_ELEMENTS // (self.channels * x[0, 0].numel()))
            logits = torch.cat([self._logits(z[s:s + chunk], x[s:s + chunk], self._maps(z[s:s + chunk]))
                                for s in range(0, len(z), chunk)]) if len(z) else x
        return logits.reshape(*batch, *self.input_shape)

    @torch.no_grad()
    def sample(self, z, generator=None):
        """Binary images ``(*z.shape[:-1], C, H, W)`` drawn pixel by pixel in raster order.

        Each step runs the stack on the receptive field of one pixel only (the vertical stack
        once per row, :meth:`~pyro_lvm.nn.masked.GatedStack.from_rows_above`), so a step costs
        the same at every pixel.

        :param torch.Tensor z: latents ``(*batch, latent_dim)``.
        :param torch.Generator generator: random numbers for reproducible draws.
        """
        batch = z.shape[:-1]
        z = z.reshape(-1, z.shape[-1])
        maps = self._maps(z)
        channels, height, width = self.input_shape
        x = z.new_zeros(len(z), channels, height, width)
        for i in range(height):
            from_above = self.stack.from_rows_above(x, i, maps, z)
            for j in range(width):
                logits = self.head(self.stack.features_at(x, i, j, from_above, maps, z))[:, :, 0, 0]
                x[:, :, i, j] = torch.bernoulli(torch.sigmoid(logits), generator=generator)
        return x.reshape(*batch, *self.input_shape)
