r"""The amortised full-covariance Normal guide (Kingma & Welling 2019, sec. 2.5.1)."""
from pyro_lvm.guides.amortized import EncodedGuide, mlp_encoder
from pyro_lvm.guides.heads import FullCovarianceHead

__all__ = ["FullCovarianceGuide", "full_covariance_guide"]


class FullCovarianceGuide(EncodedGuide):
    r"""q(z|x) = N(mu(x), L(x) L(x)^T) with :math:`L = \mathrm{strictly\_lower}(L'(h)) + \mathrm{diag}\,\sigma(x)`.

    The encoder's ``(loc, scale)`` give :math:`\mu` and :math:`\sigma`; a linear map of its
    features ``h``, started at zero, gives the strictly lower triangle (see
    :class:`~pyro_lvm.guides.heads.FullCovarianceHead`). Pairs with any model whose site
    ``site`` holds a vector of ``encoder.latent_dim`` values inside ``pyro.plate(plate_name)``.

    :param encoder: :class:`~pyro_lvm.nn.MLPEncoder` or :class:`~pyro_lvm.nn.ConvEncoder` (or any
        module with ``features``, ``head``, ``feature_dim`` and ``latent_dim``).

    Other parameters as :class:`~pyro_lvm.guides.amortized.EncodedGuide`. Example::

        guide = full_covariance_guide(input_shape=4, latent_dim=2)      # linear in x
        loss = get_objective("elbo").differentiable_loss(model.model, guide, x)
    """

    def __init__(self, encoder, site="z", plate_name="data", name="full_covariance_guide"):
        super().__init__(encoder, FullCovarianceHead(encoder.feature_dim, encoder.latent_dim), site, plate_name,
                         name)


def full_covariance_guide(input_shape, latent_dim, hidden=(), activation="tanh", **kwargs):
    """A :class:`FullCovarianceGuide` on a new MLP encoder (``hidden=()``: linear in ``x``)."""
    return FullCovarianceGuide(mlp_encoder(input_shape, latent_dim, hidden, activation), **kwargs)
