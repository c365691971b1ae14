"""The Gaussian variational autoencoder as a Pyro model/guide pair.

Generative model (Kingma & Welling 2014, sec. 3; Rezende et al. 2014):

.. math:: z \sim \mathcal N(0, I), \qquad x \mid z \sim p_\theta(x \mid \mathrm{decoder}(z)),

and amortised guide :math:`q_\phi(z|x) = \mathcal N(\mu_\phi(x), \mathrm{diag}\,\sigma^2_\phi(x))`.
The model and the guide share the site names ``"z"`` (latent) and ``"x"`` (observation) inside a
``pyro.plate("data")``, so any objective in :mod:`pyro_lvm.objectives` trains the pair.

8-bit data (integer pixel values 0..255, ``load_dataset(..., eight_bit=True)``) take either a
discrete likelihood (``"discretized-logistic"``, ``"logistic-mixture"``, ``"categorical"``) or a
Gaussian with ``dequantize="uniform"`` or ``"variational"``: the model then has a second latent
site ``"u"`` (dequantization noise, :math:`u \sim U[0,1)^D` a priori) and observes
:math:`x` with density :math:`p((x + u)/256 \mid z) / 256^D`
(:class:`~pyro_lvm.models.discretized.Dequantized`); the guide draws ``u`` from
:math:`q(u|x)` (:mod:`pyro_lvm.guides.dequantization`) beside ``z``, so every bound the objectives
and :func:`~pyro_lvm.evaluate.log_likelihood` compute over :math:`(z, u)` is a bound on the
log-probability of the 8-bit data. The encoder (and the dequantizer) see :math:`x / 255`.
"""
import warnings
from dataclasses import asdict, dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.infer.util import is_validation_enabled
from torch import nn

from pyro_lvm.data import NUM_LEVELS, check_eight_bit
from pyro_lvm.guides.dequantization import make_dequantizer
from pyro_lvm.guides.heads import encode, make_head
from pyro_lvm.errors import UsageError
from pyro_lvm.models.autoregressive import AutoregressiveBernoulli
from pyro_lvm.models.discretized import Dequantized
from pyro_lvm.models.likelihoods import make_likelihood
from pyro_lvm.models.plates import batch_size_of, data_plate
from pyro_lvm.models.registration import register
from pyro_lvm.nn import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, PixelCNNDecoder

#: channels of the feature map computed from z that conditions the PixelCNN decoder at each position
PIXELCNN_MAP_CHANNELS = 4


@dataclass
class VAEConfig:
    """Everything needed to rebuild a :class:`VAE` (stored in checkpoints).

    :param tuple input_shape: shape of one datum, ``(C, H, W)`` for images.
    :param int latent_dim: latent dimensions.
    :param str arch: ``"mlp"`` or ``"conv"``: the encoder, and the network from ``z`` of either decoder.
    :param tuple hidden: MLP hidden widths (encoder order; the decoder mirrors it).
    :param tuple channels: conv channels (encoder order; the decoder mirrors it).
    :param int conv_hidden: width of the dense layer of the conv nets.
    :param str activation: hidden activation.
    :param str likelihood: ``"bernoulli"`` (binary data), ``"gaussian"`` (a density), or for
        8-bit data ``"discretized-logistic"``, ``"logistic-mixture"`` or ``"categorical"``.
    :param float gaussian_scale: initial standard deviation of the Gaussian likelihood.
    :param bool learn_scale: learn the Gaussian standard deviation.
    :param str guide: the variational family: ``"diag"`` (the encoder's diagonal Normal),
        ``"fullcov"`` (full covariance) or ``"iaf"`` (inverse autoregressive flow); see
        :mod:`pyro_lvm.guides.heads`.
    :param int flows: IAF steps (``guide="iaf"`` only).
    :param str flow_update: IAF update, ``"gated"`` (Kingma et al. 2016, eq. 14) or ``"affine"`` (eq. 10).
    :param str decoder: ``"mlp"`` (the default: pixels independent given ``z``, from the ``arch``
        network) or ``"pixelcnn"`` (:class:`~pyro_lvm.nn.PixelCNNDecoder`, binary images only: a
        gated PixelCNN conditioned on ``z`` and on a ``PIXELCNN_MAP_CHANNELS``-channel map that the
        ``arch`` network computes from ``z``).
    :param int pixelcnn_layers: gated layers :math:`L` of the PixelCNN decoder (3x3 kernels: the
        receptive field reaches :math:`L` pixels left and right and :math:`L + 1` rows up).
    :param int pixelcnn_channels: channels of the PixelCNN decoder's stacks.
    :param str dequantize: ``"none"``, ``"uniform"`` or ``"variational"`` (Gaussian likelihood on
        8-bit data only; see the module docstring).
    :param int dequantize_flows: spline layers of the variational dequantizer.
    :param int mixture_components: components of the ``"logistic-mixture"`` likelihood.
    """

    input_shape: tuple = (1, 28, 28)
    latent_dim: int = 50
    arch: str = "mlp"
    hidden: tuple = (400,)
    channels: tuple = (32, 64)
    conv_hidden: int = 256
    activation: str = "tanh"
    likelihood: str = "bernoulli"
    gaussian_scale: float = 0.1
    learn_scale: bool = True
    guide: str = "diag"
    flows: int = 2
    flow_update: str = "gated"
    decoder: str = "mlp"
    pixelcnn_layers: int = 4
    pixelcnn_channels: int = 32
    dequantize: str = "none"
    dequantize_flows: int = 2
    mixture_components: int = 5

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for key in ("input_shape", "hidden", "channels"):
            if key in d:
                d[key] = tuple(d[key])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown VAE config keys: {sorted(unknown)}")
        return cls(**d)


def _make_nets(cfg):
    if cfg.decoder not in ("mlp", "pixelcnn"):
        raise UsageError(f"unknown VAE decoder {cfg.decoder!r}; choose 'mlp' or 'pixelcnn'")
    if cfg.decoder == "pixelcnn" and cfg.likelihood != "bernoulli":
        raise UsageError(f"the pixelcnn decoder models binary pixels and needs the bernoulli likelihood, "
                         f"not {cfg.likelihood!r}; use likelihood='bernoulli' (--likelihood bernoulli)")
    if cfg.dequantize not in ("none", "uniform", "variational"):
        raise UsageError(f"unknown dequantization {cfg.dequantize!r}; choose 'none', 'uniform' or 'variational'")
    if cfg.dequantize != "none" and cfg.likelihood != "gaussian":
        raise UsageError(f"dequantization turns a density into a bound on 8-bit probabilities; the "
                         f"{cfg.likelihood!r} likelihood is not a density of continuous data: use "
                         "likelihood='gaussian' with it, or dequantize='none'")
    # the pixelcnn decoder takes a feature map from z in place of the image; the others output
    # the likelihood's parameters, params_per_channel blocks of C channels
    params = _likelihood_class(cfg).params_per_channel if cfg.likelihood != "logistic-mixture" \
        else 3 * cfg.mixture_components
    from_z = ((params * cfg.input_shape[0], *cfg.input_shape[1:]) if cfg.decoder == "mlp"
              else (PIXELCNN_MAP_CHANNELS, *cfg.input_shape[1:]))
    if cfg.arch == "mlp":
        encoder = MLPEncoder(cfg.input_shape, cfg.hidden, cfg.latent_dim, cfg.activation)
        decoder = MLPDecoder(from_z, tuple(reversed(cfg.hidden)), cfg.latent_dim, cfg.activation)
    elif cfg.arch == "conv":
        encoder = ConvEncoder(cfg.input_shape, cfg.channels, cfg.conv_hidden, cfg.latent_dim, cfg.activation)
        decoder = ConvDecoder(from_z, tuple(reversed(cfg.channels)), cfg.conv_hidden, cfg.latent_dim,
                              cfg.activation)
    else:
        raise ValueError(f"unknown VAE arch {cfg.arch!r}; choose 'mlp' or 'conv'")
    if cfg.decoder == "pixelcnn":
        decoder = PixelCNNDecoder(cfg.input_shape, cfg.latent_dim, cfg.pixelcnn_layers, cfg.pixelcnn_channels,
                                  latent_map=decoder, map_channels=PIXELCNN_MAP_CHANNELS)
    return encoder, decoder


def _likelihood_class(cfg):
    from pyro_lvm.models.likelihoods import LIKELIHOODS

    if cfg.likelihood not in LIKELIHOODS:
        raise UsageError(f"unknown likelihood {cfg.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[cfg.likelihood]


def _likelihood_options(cfg):
    if cfg.likelihood == "gaussian":
        return {"scale": cfg.gaussian_scale, "learn_scale": cfg.learn_scale}
    if cfg.likelihood == "logistic-mixture":
        return {"components": cfg.mixture_components}
    return {}


class VAE(nn.Module):
    """A VAE whose :meth:`model` and :meth:`guide` are a Pyro model/guide pair.

    The model registers ``"decoder"`` and ``"likelihood"`` and the guide ``"encoder"`` with
    ``pyro.module`` (see :mod:`pyro_lvm.models.registration`), so stock ``pyro.infer.SVI``
    trains the pair; :func:`pyro_lvm.train.fit` skips that per-step cost.

    :param VAEConfig config: architecture and likelihood; keyword arguments override fields.
    :param bool register_params: deprecated; registration is on by default (``False`` still
        turns it off for this instance; prefer ``registration_enabled(False)``).

    Example::

        vae = VAE(latent_dim=20)
        loss = get_objective("iwae", num_particles=5).differentiable_loss(vae.model, vae.guide, x)
        svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), pyro.infer.Trace_ELBO())
        draws = pyro.infer.Predictive(vae.model, num_samples=10)(None, batch_size=64)["x"]  # (10, 64, 1, 28, 28)
    """

    latent_site = "z"
    obs_site = "x"
    noise_site = "u"

    def __init__(self, config=None, register_params=None, **overrides):
        super().__init__()
        config = config or VAEConfig()
        if overrides:
            config = VAEConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.encoder, self.decoder = _make_nets(config)
        #: the guide's head on the encoder (None for the diagonal guide, whose checkpoints it leaves alone)
        self.guide_head = make_head(config.guide, self.encoder, config.flows, config.flow_update)
        self.likelihood = make_likelihood(config.likelihood, **_likelihood_options(config))
        #: q(u|x) of the dequantization noise (None without dequantization)
        self.dequantizer = None if config.dequantize == "none" else make_dequantizer(
            config.dequantize, config.input_shape,
            **({"flows": config.dequantize_flows} if config.dequantize == "variational" else {}))
        if register_params is not None:
            warnings.warn("VAE(register_params=...) is deprecated: model and guide register their networks "
                          "with pyro.module by default, and pyro_lvm.train.fit skips it; use "
                          "pyro_lvm.models.registration_enabled(False) to switch it off", FutureWarning,
                          stacklevel=2)
        self._register = register_params is not False
        self._event_dim = len(config.input_shape)

    def _check_shape(self, x):
        if tuple(x.shape[-self._event_dim:]) != tuple(self.config.input_shape) or x.dim() != self._event_dim + 1:
            raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, self.config.input_shape))}), "
                             f"got {tuple(x.shape)}")

    def model(self, x=None, *, batch_size=None):
        """p(z) p(x|z) over a batch ``x`` of shape ``(N, *input_shape)``.

        With ``x=None`` the site ``"x"`` is sampled from the likelihood for ``batch_size`` data:
        ``Predictive(vae.model, num_samples=S)(None, batch_size=N)["x"]`` has shape
        ``(S, N, *input_shape)``.
        """
        n = batch_size_of(x, batch_size)
        if x is not None and is_validation_enabled():
            self._check_shape(x)
            self._validate(x)
        if self._register:
            register("decoder", self.decoder)
            register("likelihood", self.likelihood)
        like = x if x is not None else next(self.decoder.parameters())  # dtype and device
        with data_plate(x, size=n, device=like.device):
            shape = (n, self.config.latent_dim)
            prior = dist.Normal(like.new_zeros(()).expand(shape), like.new_ones(()).expand(shape)).to_event(1)
            z = pyro.sample(self.latent_site, prior)
            u = None
            if self.dequantizer is not None:
                noise = like.new_zeros(()).expand(n, *self.config.input_shape)
                u = pyro.sample(self.noise_site, dist.Uniform(noise, noise + 1).to_event(self._event_dim))
            pyro.sample(self.obs_site, self._observation(z, u), obs=x)

    def _observation(self, z, u=None):
        """p(x|z): the likelihood around the decoder's output, or the PixelCNN's autoregressive one;
        with dequantization noise ``u``, the density of ``x`` given ``u`` (:class:`Dequantized`)."""
        if self.config.decoder == "pixelcnn":
            return AutoregressiveBernoulli(self.decoder, z)
        observation = self.likelihood(self.decoder(z), self._event_dim)
        return observation if u is None else Dequantized(observation, u, NUM_LEVELS)

    @property
    def eight_bit(self):
        """Whether the model takes integer pixel values 0..255 (discrete likelihood or dequantization)."""
        return self.likelihood.data_kind == "eight_bit" or self.dequantizer is not None

    @property
    def reports_probability(self):
        """Whether :math:`\log p(x)` is (a bound on) a probability of discrete data, so that bits
        per dimension mean something: Bernoulli, the 8-bit likelihoods, or a dequantized density;
        not a Gaussian density of undequantized data."""
        return self.likelihood.data_kind != "density" or self.dequantizer is not None

    def _validate(self, x):
        if self.dequantizer is not None:
            check_eight_bit(x, what=f"data for a dequantized {self.config.likelihood} likelihood")
        else:
            self.likelihood.validate(x)

    def _encoder_input(self, x):
        return x / (NUM_LEVELS - 1) if self.eight_bit else x

    def _mean(self, params):
        if self.likelihood.data_kind == "eight_bit":
            return self.likelihood.mean(params, self._event_dim)
        return self.likelihood.mean(params)

    def display(self, x):
        """Data as intensities in [0, 1] for pictures (8-bit values divided by 255)."""
        return self._encoder_input(x)

    def guide(self, x):
        """q(z|x): the encoder's diagonal Normal, or the ``config.guide`` family on the encoder."""
        if self._register:
            register("encoder", self.encoder)
            if self.guide_head is not None:
                register("guide_head", self.guide_head)
            if self.dequantizer is not None:
                register("dequantizer", self.dequantizer)
        with data_plate(x):
            seen = self._encoder_input(x)
            if self.guide_head is None:
                loc, scale = self.encoder(seen)
                pyro.sample(self.latent_site, dist.Normal(loc, scale).to_event(1))
            else:
                pyro.sample(self.latent_site, self.guide_head(*encode(self.encoder, seen)))
            if self.dequantizer is not None:
                pyro.sample(self.noise_site, self.dequantizer(x))

    def to_config(self):
        """The architecture as a plain dict (:meth:`from_config` rebuilds the model from it)."""
        return self.config.to_dict()

    @classmethod
    def from_config(cls, config):
        """A new, untrained model of the architecture :meth:`to_config` described."""
        return cls(VAEConfig.from_dict(config))

    def validate_data(self, x):
        """Check a whole data tensor once (shape and support) before training."""
        self._check_shape(x[:1])
        self._validate(x)

    @torch.no_grad()
    def sample(self, num_samples):
        """Mean images ``E[x|z]`` for ``z`` drawn from the prior (divided by 255 for 8-bit data: intensities in [0, 1]).

        With the PixelCNN decoder, whose mean has no closed form, an image ``x`` is drawn pixel by
        pixel and the result holds the probabilities it was drawn with,
        :math:`p(x_i = 1 \mid x_{<i}, z)`.
        """
        p = next(self.parameters())
        z = torch.randn(num_samples, self.config.latent_dim, dtype=p.dtype, device=p.device)
        if self.config.decoder == "pixelcnn":
            return torch.sigmoid(self.decoder(z, self.decoder.sample(z)))
        return self._mean(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x):
        """Mean reconstructions ``E[x | z = mu(x)]`` through the encoder's mean.

        With the PixelCNN decoder: the probabilities :math:`p(x_i = 1 \mid x_{<i}, z = \mu(x))`
        given the true earlier pixels (teacher forcing), not a fresh draw.
        """
        loc, _ = self.encoder(self._encoder_input(x))
        if self.config.decoder == "pixelcnn":
            return torch.sigmoid(self.decoder(loc, x))
        return self._mean(self.decoder(loc))
