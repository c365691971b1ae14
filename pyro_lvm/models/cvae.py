r"""The conditional VAE of Sohn et al. (2015) as a Pyro model/guide pair, and its deterministic baseline.

Given a condition :math:`y` (a one-hot label, or a partial image), the generative model
(Sohn et al. 2015, sec. 3, "CVAE") is

.. math:: z \mid y \sim p_\theta(z \mid y) = \mathcal N(\mu_\theta(y), \mathrm{diag}\,\sigma^2_\theta(y))
          \ \text{(the prior network; or } \mathcal N(0, I)\text{)}, \qquad
          x \mid z, y \sim p_\theta(x \mid \mathrm{generation}(z, y)),

with the recognition network :math:`q_\phi(z|x, y)` as the guide. The conditional ELBO
(their eq. 4) is :math:`\log p(x|y) \ge \mathbb E_q[\log p(x|z,y)] - \mathrm{KL}(q(z|x,y)\,\|\,p(z|y))`,
so every objective of :mod:`pyro_lvm.objectives` trains the pair, called as ``model(x, y)``
and ``guide(x, y)``; :func:`pyro_lvm.train.fit` does so for loaders of ``(x, y)`` batches and
:func:`pyro_lvm.evaluate.log_likelihood` (``condition=y``) estimates :math:`\log p(x|y)`.

Conditions that are partial images (:mod:`pyro_lvm.data.quadrants`) mark the missing pixels
with ``missing_value``; the likelihood then counts only those pixels,
:math:`\log p(x|z,y) = \sum_{i\ \text{missing}} \log p(x_i|z,y)` (the given ones are known),
so :math:`\log p(x|y)` is the conditional log-likelihood of the missing pixels that Sohn et
al. report (their Table 1).

The networks are MLPs: the prior network reads :math:`y`, the recognition network
:math:`[x, y]` and the generation network :math:`[z, y]` (concatenated, flattened). The
:class:`DeterministicBaseline` ("NN" in Sohn et al.) maps :math:`y` straight to pixel
probabilities; the CVAE does not use it (the tutorial of Pyro feeds its prediction to the prior
network; here the prior network reads the condition alone).
"""
import math
from dataclasses import asdict, dataclass

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer.util import is_validation_enabled
from torch import nn

from pyro_lvm.data.quadrants import MISSING
from pyro_lvm.models.likelihoods import make_likelihood
from pyro_lvm.models.plates import batch_size_of, data_plate
from pyro_lvm.models.registration import register
from pyro_lvm.nn import MLP, MLPDecoder, MLPEncoder

_TUPLES = ("input_shape", "condition_shape", "hidden")


@dataclass
class CVAEConfig:
    """Everything needed to rebuild a :class:`CVAE` or a :class:`DeterministicBaseline`.

    :param tuple input_shape: shape of one datum ``x``.
    :param tuple condition_shape: shape of one condition ``y``: ``(10,)`` for one-hot labels
        (integer class labels are one-hot encoded on the way in), the image shape for partial images.
    :param int latent_dim: latent dimensions.
    :param tuple hidden: MLP hidden widths (encoder order; the generation network mirrors it).
    :param str activation: hidden activation.
    :param str prior: ``"learned"`` (the prior network :math:`p(z|y)`) or ``"standard"`` (:math:`N(0, I)`).
    :param str likelihood: ``"bernoulli"`` or ``"gaussian"``.
    :param float gaussian_scale: initial standard deviation of a Gaussian likelihood.
    :param bool learn_scale: learn that standard deviation.
    :param float missing_value: condition pixels equal to this are missing; ``x`` is observed
        only there. ``None``: every pixel of ``x`` is observed (label conditions).
    """

    input_shape: tuple = (1, 28, 28)
    condition_shape: tuple = (10,)
    latent_dim: int = 32
    hidden: tuple = (500, 500)
    activation: str = "relu"
    prior: str = "learned"
    likelihood: str = "bernoulli"
    gaussian_scale: float = 0.1
    learn_scale: bool = True
    missing_value: float = None

    def __post_init__(self):
        if self.prior not in ("learned", "standard"):
            raise ValueError(f"unknown CVAE prior {self.prior!r}; choose 'learned' or 'standard'")
        if self.missing_value is not None and tuple(self.condition_shape) != tuple(self.input_shape):
            raise ValueError("missing_value marks missing pixels of image conditions: condition_shape must equal "
                             f"input_shape, got {tuple(self.condition_shape)} and {tuple(self.input_shape)}")

    @classmethod
    def quadrants(cls, input_shape=(1, 28, 28), **kwargs):
        """The configuration of the masked-quadrant task (:mod:`pyro_lvm.data.quadrants`)."""
        return cls(input_shape=tuple(input_shape), condition_shape=tuple(input_shape), missing_value=MISSING,
                   **kwargs)

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for key in _TUPLES:
            if key in d:
                d[key] = tuple(d[key])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown CVAE config keys: {sorted(unknown)}")
        return cls(**d)


def _config(config, overrides):
    config = config or CVAEConfig()
    return CVAEConfig.from_dict({**config.to_dict(), **overrides}) if overrides else config


class _Conditional(nn.Module):
    """What the CVAE and its baseline share: the condition's encoding and the masked likelihood."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.likelihood = make_likelihood(
            config.likelihood,
            **({"scale": config.gaussian_scale, "learn_scale": config.learn_scale}
               if config.likelihood == "gaussian" else {}))
        self._event_dim = len(config.input_shape)
        self._condition_dim = math.prod(config.condition_shape)

    def condition_vector(self, y, like):
        """``y`` flattened to ``(N, prod(condition_shape))`` in ``like``'s dtype; integer labels one-hot."""
        if not y.is_floating_point():
            y = F.one_hot(y.long(), self._condition_dim)
        if tuple(y.shape[1:]) != tuple(self.config.condition_shape):
            raise ValueError(f"expected conditions of shape (N, {', '.join(map(str, self.config.condition_shape))})"
                             f" (or integer labels (N,)), got {tuple(y.shape)}")
        return y.reshape(y.shape[0], -1).to(like.dtype)

    def observed(self, y):
        """Where ``x`` is observed: the missing pixels of an image condition, else everywhere (``None``)."""
        if self.config.missing_value is None:
            return None
        return y == self.config.missing_value

    def observation(self, params, y):
        """:math:`p(x|\\cdot)` summed over the observed pixels only."""
        base = self.likelihood(params, 0)
        observed = self.observed(y)
        if observed is not None:
            base = base.mask(observed)
        return base.to_event(self._event_dim)

    def _check(self, x, y):
        n = y.shape[0]
        if x is not None and (x.dim() != self._event_dim + 1 or
                              tuple(x.shape[1:]) != tuple(self.config.input_shape) or x.shape[0] != n):
            raise ValueError(f"expected a batch x of shape ({n}, {', '.join(map(str, self.config.input_shape))}) "
                             f"for {n} conditions, got {tuple(x.shape)}")
        if x is not None and is_validation_enabled():
            self.likelihood.validate(x)

    def to_config(self):
        """The architecture as a plain dict (:meth:`from_config` rebuilds the model from it)."""
        return self.config.to_dict()

    @classmethod
    def from_config(cls, config):
        """A new, untrained model of the architecture :meth:`to_config` described."""
        return cls(CVAEConfig.from_dict(config))

    def validate_data(self, x):
        """Check a whole data tensor once (shape and support) before training."""
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            raise ValueError(f"expected data of shape (N, {', '.join(map(str, self.config.input_shape))}), "
                             f"got {tuple(x.shape)}")
        self.likelihood.validate(x)


class CVAE(_Conditional):
    """A conditional VAE whose :meth:`model` and :meth:`guide` take ``(x, y)``.

    :param CVAEConfig config: architecture, prior and likelihood; keyword arguments override fields.

    Example::

        cvae = CVAE(condition_shape=(10,), latent_dim=8)               # y: class labels
        loss = get_objective("elbo").differentiable_loss(cvae.model, cvae.guide, x, labels)
        fit(cvae.model, cvae.guide, "elbo", data.train_loader(128, with_labels=True))
        log_likelihood(cvae.model, cvae.guide, x, condition=labels)    # log p(x|y)
    """

    latent_site = "z"
    obs_site = "x"

    def __init__(self, config=None, **overrides):
        config = _config(config, overrides)
        super().__init__(config)
        x_dim, y_dim, hidden = math.prod(config.input_shape), self._condition_dim, tuple(config.hidden)
        self.prior_net = (MLPEncoder((y_dim,), hidden, config.latent_dim, config.activation)
                          if config.prior == "learned" else None)
        self.recognition_net = MLPEncoder((x_dim + y_dim,), hidden, config.latent_dim, config.activation)
        self.generation_net = MLPDecoder(config.input_shape, tuple(reversed(hidden)), config.latent_dim + y_dim,
                                         config.activation)

    def _generate(self, z, y_vec):
        return self.generation_net(torch.cat([z, y_vec.expand(*z.shape[:-1], y_vec.shape[-1])], -1))

    def prior(self, y_vec):
        """:math:`p(z|y)`: the prior network's diagonal Normal, or :math:`N(0, I)`."""
        if self.prior_net is not None:
            return dist.Normal(*self.prior_net(y_vec)).to_event(1)
        shape = (y_vec.shape[0], self.config.latent_dim)
        return dist.Normal(y_vec.new_zeros(()).expand(shape), y_vec.new_ones(()).expand(shape)).to_event(1)

    def _like(self, x):
        return x if x is not None and x.is_floating_point() else next(self.generation_net.parameters())

    def model(self, x, y, *, batch_size=None):
        """:math:`p(z|y)\\,p(x|z,y)` over a batch of ``N`` conditions ``y``.

        With ``x=None`` the site ``"x"`` is sampled: ``Predictive(cvae.model, num_samples=S)(None, y)``.
        """
        n = batch_size_of(y, batch_size)
        self._check(x, y)
        register("generation_net", self.generation_net)
        register("likelihood", self.likelihood)
        if self.prior_net is not None:
            register("prior_net", self.prior_net)
        y_vec = self.condition_vector(y, self._like(x))
        with data_plate(y_vec, size=n):
            z = pyro.sample(self.latent_site, self.prior(y_vec))
            pyro.sample(self.obs_site, self.observation(self._generate(z, y_vec), y), obs=x)

    def guide(self, x, y):
        """:math:`q(z|x, y)`: a diagonal Normal from the recognition network."""
        register("recognition_net", self.recognition_net)
        y_vec = self.condition_vector(y, x)
        with data_plate(x):
            loc, scale = self.recognition_net(torch.cat([x.reshape(x.shape[0], -1), y_vec], -1))
            pyro.sample(self.latent_site, dist.Normal(loc, scale).to_event(1))

    def prior_guide(self, x, y):
        """The prior :math:`p(z|y)` as a proposal: importance sampling with it is the plain Monte Carlo
        estimate :math:`\\log \\frac1S \\sum_s p(x|z_s, y)`, :math:`z_s \\sim p(z|y)` (the estimator
        that Sohn et al. 2015 set against importance sampling with the recognition network)."""
        y_vec = self.condition_vector(y, x)
        with data_plate(x):
            pyro.sample(self.latent_site, self.prior(y_vec))

    @torch.no_grad()
    def sample(self, y):
        """Mean images :math:`E[x|z, y]`, one per condition, for :math:`z \\sim p(z|y)`;
        the given pixels of image conditions are kept as given."""
        y_vec = self.condition_vector(y, next(self.generation_net.parameters()))
        z = self.prior(y_vec).sample()
        mean = self.likelihood.mean(self._generate(z, y_vec))
        observed = self.observed(y)
        return mean if observed is None else torch.where(observed, mean, y.to(mean.dtype))


class DeterministicBaseline(_Conditional):
    """The deterministic network "NN" of Sohn et al. (2015): ``y -> `` pixel parameters of ``x``.

    Its :meth:`model` observes ``x`` under the likelihood of the network's output and has no
    latent variable (its :meth:`guide` is empty), so the ELBO is exactly :math:`\\log p(x|y)`:
    :func:`~pyro_lvm.train.fit` trains it with ``"elbo"`` (the masked cross-entropy of the
    missing pixels, for image conditions) and :func:`~pyro_lvm.evaluate.log_likelihood` with
    ``num_samples=1`` gives its exact conditional log-likelihood.
    """

    obs_site = "x"

    def __init__(self, config=None, **overrides):
        config = _config(config, overrides)
        super().__init__(config)
        self.net = MLP([self._condition_dim, *config.hidden, math.prod(config.input_shape)], act=config.activation)

    def predict_params(self, y):
        """The likelihood's parameters (logits, for a Bernoulli likelihood), shaped like ``x``."""
        y_vec = self.condition_vector(y, next(self.net.parameters()))
        return self.net(y_vec).reshape(y.shape[0], *self.config.input_shape)

    def model(self, x, y, *, batch_size=None):
        n = batch_size_of(y, batch_size)
        self._check(x, y)
        register("baseline_net", self.net)
        register("likelihood", self.likelihood)
        with data_plate(y, size=n):
            pyro.sample(self.obs_site, self.observation(self.predict_params(y).to(self._like_dtype(x)), y), obs=x)

    def guide(self, x, y):
        """No latent variables: nothing to sample."""

    @staticmethod
    def _like_dtype(x):
        return x.dtype if x is not None and x.is_floating_point() else torch.get_default_dtype()

    @torch.no_grad()
    def predict(self, y):
        """The mean prediction :math:`E[x|y]`; the given pixels of image conditions are kept as given."""
        mean = self.likelihood.mean(self.predict_params(y))
        observed = self.observed(y)
        return mean if observed is None else torch.where(observed, mean, y.to(mean.dtype))
