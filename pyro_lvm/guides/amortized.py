"""What the encoder-plus-head guides share: one encoder, one head, one sample site in a data plate."""
import pyro
from torch import nn

from pyro_lvm.guides.heads import encode
from pyro_lvm.models.plates import data_plate
from pyro_lvm.models.registration import register
from pyro_lvm.nn import MLPEncoder


class EncodedGuide(nn.Module):
    """q(z|x) = ``head(*encode(encoder, x))`` at ``site`` inside ``pyro.plate(plate_name)``.

    :param encoder: an encoder with ``features(x)``, ``head``, ``feature_dim`` and ``latent_dim``
        (:class:`~pyro_lvm.nn.MLPEncoder`, :class:`~pyro_lvm.nn.ConvEncoder`).
    :param nn.Module head: ``(h, loc, scale) -> distribution`` (:mod:`pyro_lvm.guides.heads`).
    :param str site: the latent site name shared with the model.
    :param str plate_name: the data plate name shared with the model.
    :param str name: the name it registers itself under with ``pyro.module``, so that stock
        ``pyro.infer.SVI`` trains it (:mod:`pyro_lvm.models.registration`).
    """

    def __init__(self, encoder, head, site="z", plate_name="data", name="guide"):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.site, self.plate_name, self.name = site, plate_name, name

    def distribution(self, x):
        """q(z|x) for a batch ``x``, batch shape ``(N,)`` and event shape ``(k,)``."""
        return self.head(*encode(self.encoder, x))

    def forward(self, x):
        """Sample ``site`` from q(z|x) for a batch ``x``."""
        register(self.name, self)
        with data_plate(x, name=self.plate_name):
            pyro.sample(self.site, self.distribution(x))


def mlp_encoder(input_shape, latent_dim, hidden=(), activation="tanh"):
    """An :class:`~pyro_lvm.nn.MLPEncoder` from dimensions (``hidden=()``: linear in ``x``)."""
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    return MLPEncoder(tuple(input_shape), tuple(hidden), latent_dim, activation)
