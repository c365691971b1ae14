"""Convolutional encoder and decoder with residual blocks.

The layout follows the VQ-VAE of van den Oord et al. (2017): strided convolutions halve the
resolution, a short stack of residual blocks works at the coarsest resolution, and a 1x1
convolution maps to (or from) the ``embedding_dim`` channels that the quantizer sees. With the
defaults a 28x28 image becomes a 7x7 grid and a 32x32 image an 8x8 grid.

References

1. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning. NeurIPS 2017.
"""
from torch import nn


class ResidualBlock(nn.Module):
    r"""Pre-activation residual block :math:`x + W_2\,\mathrm{ReLU}(W_1\,\mathrm{ReLU}(x))`.

    :math:`W_1` is a 3x3 convolution to ``hidden_channels`` and :math:`W_2` a 1x1 convolution
    back to ``channels``, so the block keeps the shape of its input.

    :param int channels: channels in and out.
    :param int hidden_channels: channels of the inner 3x3 convolution.
    """

    def __init__(self, channels, hidden_channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, channels, 1),
        )

    def forward(self, x):
        return x + self.body(x)


def residual_stack(channels, hidden_channels, num_layers):
    """``num_layers`` residual blocks followed by a ReLU, as in the VQ-VAE paper."""
    blocks = [ResidualBlock(channels, hidden_channels) for _ in range(num_layers)]
    return nn.Sequential(*blocks, nn.ReLU())


class Encoder(nn.Module):
    """Image to a grid of continuous vectors :math:`z_e(x)`.

    ``num_downsamples`` 4x4 stride-2 convolutions (each halving height and width), a 3x3
    convolution, the residual stack and a 1x1 convolution to ``embedding_dim`` channels.

    :param int in_channels: image channels (1 for MNIST, 3 for RGB).
    :param int hidden_channels: channels of the convolutions and residual stack.
    :param int residual_channels: inner channels of each residual block.
    :param int num_residual_layers: residual blocks.
    :param int embedding_dim: channels of the output, the dimension of the code vectors.
    :param int num_downsamples: stride-2 convolutions; the grid is ``H / 2**num_downsamples``.
    """

    def __init__(self, in_channels=1, hidden_channels=64, residual_channels=32,
                 num_residual_layers=2, embedding_dim=16, num_downsamples=2):
        super().__init__()
        if num_downsamples < 1:
            raise ValueError(f"num_downsamples must be at least 1, got {num_downsamples}")
        layers = []
        channels = in_channels
        for i in range(num_downsamples):
            out = hidden_channels if i == num_downsamples - 1 else max(hidden_channels // 2, 1)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.ReLU()]
            channels = out
        layers.append(nn.Conv2d(channels, hidden_channels, 3, padding=1))
        layers.append(residual_stack(hidden_channels, residual_channels, num_residual_layers))
        layers.append(nn.Conv2d(hidden_channels, embedding_dim, 1))
        self.net = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """Grid of code vectors to an image, the mirror image of :class:`Encoder`.

    A 3x3 convolution from ``embedding_dim`` channels, the residual stack, then
    ``num_upsamples`` 4x4 stride-2 transposed convolutions, the last one to ``out_channels``.
    The output is unconstrained (the mean of the pixel intensities); no sigmoid is applied.

    :param int out_channels: image channels.
    :param int hidden_channels: channels of the convolutions and residual stack.
    :param int residual_channels: inner channels of each residual block.
    :param int num_residual_layers: residual blocks.
    :param int embedding_dim: channels of the input grid.
    :param int num_upsamples: stride-2 transposed convolutions.
    """

    def __init__(self, out_channels=1, hidden_channels=64, residual_channels=32,
                 num_residual_layers=2, embedding_dim=16, num_upsamples=2):
        super().__init__()
        if num_upsamples < 1:
            raise ValueError(f"num_upsamples must be at least 1, got {num_upsamples}")
        layers = [nn.Conv2d(embedding_dim, hidden_channels, 3, padding=1),
                  residual_stack(hidden_channels, residual_channels, num_residual_layers)]
        channels = hidden_channels
        for i in range(num_upsamples):
            last = i == num_upsamples - 1
            out = out_channels if last else max(hidden_channels // 2, 1)
            layers.append(nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
            channels = out
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)
