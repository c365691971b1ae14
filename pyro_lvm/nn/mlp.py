"""Multi-layer perceptrons and the MLP encoder/decoder pair of a VAE."""
import math

from torch import nn

from pyro_lvm.nn.heads import NormalHead

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "softplus": nn.Softplus,
                "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}


def activation(name):
    """Return a fresh activation module by name (``tanh``, ``relu``, ``elu``, ...)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}") from None


class MLP(nn.Sequential):
    """Fully connected layers ``sizes[0] -> ... -> sizes[-1]`` with an activation between them.

    :param sizes: layer widths, input first.
    :param str act: activation after every hidden layer.
    :param bool activate_last: also apply the activation after the last layer.
    """

    def __init__(self, sizes, act="tanh", activate_last=False):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least an input and an output size, got {sizes}")
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if activate_last or i < len(sizes) - 2:
                layers.append(activation(act))
        super().__init__(*layers)


class MLPEncoder(nn.Module):
    """``x -> (loc, scale)`` of a diagonal Normal over ``latent_dim`` latents.

    :param tuple input_shape: shape of one datum, e.g. ``(1, 28, 28)``; inputs are flattened.
    :param hidden: hidden widths, e.g. ``(400,)`` or ``(200, 200)`` (Burda et al. 2015).
    :param int latent_dim: number of latent dimensions.
    :param str act: hidden activation.
    """

    def __init__(self, input_shape, hidden=(400,), latent_dim=50, act="tanh"):
        super().__init__()
        self.input_shape = tuple(input_shape)
        in_features = math.prod(self.input_shape)
        self.body = MLP([in_features, *hidden], act=act, activate_last=True) if hidden else nn.Identity()
        self.feature_dim, self.latent_dim = (hidden[-1] if hidden else in_features), latent_dim
        self.head = NormalHead(self.feature_dim, latent_dim)

    def features(self, x):
        """The last hidden layer, ``(.., feature_dim)``: what richer guides' heads read."""
        batch_shape = x.shape[: x.dim() - len(self.input_shape)]
        return self.body(x.reshape(*batch_shape, -1))

    def forward(self, x):
        return self.head(self.features(x))


class MLPDecoder(nn.Module):
    """``z -> `` distribution parameters shaped ``(*sample_shape, *output_shape)``.

    :param tuple output_shape: shape of one datum.
    :param hidden: hidden widths, first layer nearest the latent.
    :param int latent_dim: number of latent dimensions.
    :param str act: hidden activation.
    """

    def __init__(self, output_shape, hidden=(400,), latent_dim=50, act="tanh"):
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.net = MLP([latent_dim, *hidden, math.prod(self.output_shape)], act=act)

    def forward(self, z):
        return self.net(z).reshape(*z.shape[:-1], *self.output_shape)
