r"""The amortised inverse-autoregressive-flow guide (Kingma et al. 2016)."""
from pyro_lvm.guides.amortized import EncodedGuide, mlp_encoder
from pyro_lvm.guides.heads import IAFHead

__all__ = ["IAFGuide", "iaf_guide"]


class IAFGuide(EncodedGuide):
    r"""q(z|x): the encoder's diagonal Normal through ``flows`` conditional IAF steps.

    :math:`z_0 \sim \mathcal N(\mu(x), \sigma^2(x))`, then
    :math:`z_t = f_t(z_{t-1}; c(x))` with Pyro's conditional affine autoregressive transforms and
    reversals between them; ``log q`` includes every step's :math:`\log|\det J|` (Kingma et al.
    2016, eqs. 10, 14 and algorithm 1; see :class:`~pyro_lvm.guides.heads.IAFHead`). With
    ``flows=0`` it is the diagonal guide: same draws, same ``log q``.

    :param encoder: :class:`~pyro_lvm.nn.MLPEncoder` or :class:`~pyro_lvm.nn.ConvEncoder` (or any
        module with ``features``, ``head``, ``feature_dim`` and ``latent_dim``).
    :param int flows: ``T >= 0`` steps.
    :param str update: ``"gated"`` (eq. 14, numerically stable; Pyro's ``stable=True``) or
        ``"affine"`` (eq. 10).
    :param int context_dim: width of the context ``c`` (default ``latent_dim``).
    :param hidden: hidden widths of each step's MADE (default ``(10 latent_dim,)``).

    Other parameters as :class:`~pyro_lvm.guides.amortized.EncodedGuide`. Example::

        guide = iaf_guide(input_shape=(1, 28, 28), latent_dim=16, hidden=(256,), flows=2)
        loss = get_objective("iwae", num_particles=5).differentiable_loss(my_model, guide, x)
    """

    def __init__(self, encoder, flows=2, update="gated", context_dim=None, hidden=None, site="z",
                 plate_name="data", name="iaf_guide"):
        head = IAFHead(encoder.feature_dim, encoder.latent_dim, flows=flows, context_dim=context_dim, hidden=hidden,
                       update=update)
        super().__init__(encoder, head, site, plate_name, name)


def iaf_guide(input_shape, latent_dim, hidden=(), activation="tanh", flows=2, **kwargs):
    """An :class:`IAFGuide` on a new MLP encoder (``hidden``: the encoder's hidden widths)."""
    return IAFGuide(mlp_encoder(input_shape, latent_dim, hidden, activation), flows=flows, **kwargs)
