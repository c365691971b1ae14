"""Amortised Normal guides for models with a per-datum latent site."""
import pyro
import pyro.distributions as dist
from torch import nn

from pyro_lvm.models.registration import register


class AmortizedNormalGuide(nn.Module):
    r"""q(z|x) = N(loc(x), diag scale(x)^2) for any encoder returning ``(loc, scale)``.

    Pairs with any model that samples ``site`` inside ``pyro.plate(plate_name)`` over the batch,
    e.g. :class:`~pyro_lvm.models.LinearGaussian` with a linear
    :class:`~pyro_lvm.nn.MLPEncoder` (``hidden=()``).

    :param nn.Module encoder: maps a batch ``x`` to ``(loc, scale)`` of shape ``(N, k)``.
    :param str site: the latent site name shared with the model.
    :param str plate_name: the data plate name shared with the model.
    :param str name: the name it registers itself under with ``pyro.module`` (see
        :mod:`pyro_lvm.models.registration`), so that stock ``pyro.infer.SVI`` trains the encoder.
    """

    def __init__(self, encoder, site="z", plate_name="data", name="amortized_normal_guide"):
        super().__init__()
        self.encoder = encoder
        self.site, self.plate_name, self.name = site, plate_name, name

    def distribution(self, x):
        """q(z|x) for a batch ``x``, batch shape ``(N,)`` and event shape ``(k,)``."""
        loc, scale = self.encoder(x)
        return dist.Normal(loc, scale).to_event(1)

    def forward(self, x):
        """Sample ``site`` from q(z|x) for a batch ``x``."""
        register(self.name, self)
        with pyro.plate(self.plate_name, x.shape[0]):
            pyro.sample(self.site, self.distribution(x))
