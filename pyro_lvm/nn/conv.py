"""Convolutional encoder and decoder for image VAEs (two stride-2 stages)."""
import math

from torch import nn

from pyro_lvm.nn.heads import NormalHead
from pyro_lvm.nn.mlp import activation


def _check_image_shape(shape):
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"conv nets need (C, H, W) with H and W divisible by 4, got {tuple(shape)}")


class ConvEncoder(nn.Module):
    """``x (.., C, H, W) -> (loc, scale)``: two stride-2 convolutions, then a dense layer.

    :param tuple input_shape: ``(C, H, W)`` with H and W divisible by 4.
    :param channels: channels of the two convolutions.
    :param int hidden: width of the dense layer.
    :param int latent_dim: number of latent dimensions.
    """

    def __init__(self, input_shape, channels=(32, 64), hidden=256, latent_dim=50, act="relu"):
        super().__init__()
        _check_image_shape(input_shape)
        self.input_shape = tuple(input_shape)
        c, h, w = self.input_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, channels[0], 4, stride=2, padding=1), activation(act),
            nn.Conv2d(channels[0], channels[1], 4, stride=2, padding=1), activation(act),
            nn.Flatten(), nn.Linear(channels[1] * (h // 4) * (w // 4), hidden), activation(act))
        self.head = NormalHead(hidden, latent_dim)
        self.feature_dim, self.latent_dim = hidden, latent_dim

    def features(self, x):
        """The dense layer, ``(.., feature_dim)``: what richer guides' heads read."""
        return self.body(x.reshape(-1, *self.input_shape)).reshape(*x.shape[:-3], self.feature_dim)

    def forward(self, x):
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """``z (.., latent_dim) -> `` parameters of shape ``(.., C, H, W)``, mirroring :class:`ConvEncoder`."""

    def __init__(self, output_shape, channels=(64, 32), hidden=256, latent_dim=50, act="relu"):
        super().__init__()
        _check_image_shape(output_shape)
        self.output_shape = tuple(output_shape)
        c, h, w = self.output_shape
        self._grid = (channels[0], h // 4, w // 4)
        self.dense = nn.Sequential(nn.Linear(latent_dim, hidden), activation(act),
                                   nn.Linear(hidden, math.prod(self._grid)), activation(act))
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1), activation(act),
            nn.ConvTranspose2d(channels[1], c, 4, stride=2, padding=1))

    def forward(self, z):
        batch_shape = z.shape[:-1]
        h = self.dense(z.reshape(-1, z.shape[-1])).reshape(-1, *self._grid)
        return self.deconv(h).reshape(*batch_shape, *self.output_shape)
