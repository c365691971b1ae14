r"""A model with Bernoulli latent variables (a sigmoid belief network with a neural decoder).

.. math:: z_k \sim \mathrm{Bernoulli}(\beta_k),\ k = 1..K, \qquad
          x \mid z \sim \prod_i \mathrm{Bernoulli}(\sigma(f_\theta(z))_i),

with learnable :math:`\beta = \sigma(\text{prior\_logits})` and an amortised guide
:math:`q_\phi(z|x) = \prod_k \mathrm{Bernoulli}(\sigma(g_\phi(x))_k)` (Neal 1992; Mnih & Gregor
2014). The latents are discrete, so gradients with respect to :math:`\phi` need score-function
estimators (objectives ``elbo``, ``tracegraph`` with baselines, ``iwae`` with VIMCO). For small
``K`` everything is exact by enumerating the :math:`2^K` configurations: :meth:`exact_log_prob`,
:meth:`exact_elbo`, and the split-site pair :meth:`enum_model`/:meth:`enum_guide` for Pyro's
``TraceEnum_ELBO``.
"""
import itertools
import math

import pyro
import pyro.distributions as dist
import torch
from pyro.infer.util import is_validation_enabled
from torch import nn

from pyro_lvm.models.plates import batch_size_of
from pyro_lvm.models.registration import register
from pyro_lvm.nn import MLP

MAX_EXACT_LATENTS = 16


class BernoulliLatentModel(nn.Module):
    """Bernoulli latents, Bernoulli pixels; ``model``/``guide`` share the sites ``"z"``, ``"x"``.

    :param tuple input_shape: shape of one datum, e.g. ``(1, 28, 28)``.
    :param int latent_dim: ``K``, the number of binary latents.
    :param tuple decoder_hidden: hidden widths of ``f`` (``()``: a linear sigmoid belief net).
    :param tuple encoder_hidden: hidden widths of ``g``.
    :param str baseline: variance reduction the guide asks of the ``tracegraph`` objective:
        ``None``, ``"average"`` (decaying average of the learning signal), ``"neural"`` (an input-
        dependent baseline network, Mnih & Gregor 2014, sec. 3.2) or ``"both"``.
    :param float baseline_beta: decay of the average baseline.

    :meth:`model`, :meth:`guide`, :meth:`enum_model` and :meth:`enum_guide` register the whole
    module as ``"bernoulli_latent"`` with ``pyro.module`` (see :mod:`pyro_lvm.models.registration`),
    so stock ``pyro.infer.SVI`` trains it, the neural baseline included; :meth:`prior_guide`
    uses no trainable parameter and registers nothing.
    """

    registration_name = "bernoulli_latent"

    latent_site = "z"
    obs_site = "x"

    def __init__(self, input_shape=(1, 28, 28), latent_dim=8, decoder_hidden=(), encoder_hidden=(),
                 activation="tanh", baseline=None, baseline_beta=0.9, baseline_hidden=(100,)):
        super().__init__()
        if baseline not in (None, "average", "neural", "both"):
            raise ValueError(f"baseline must be None, 'average', 'neural' or 'both', got {baseline!r}")
        self.input_shape, self.latent_dim = tuple(input_shape), latent_dim
        data_dim = math.prod(self.input_shape)
        self.prior_logits = nn.Parameter(torch.zeros(latent_dim))
        self.decoder = MLP([latent_dim, *decoder_hidden, data_dim], act=activation)
        self.encoder = MLP([data_dim, *encoder_hidden, latent_dim], act=activation)
        self.baseline, self.baseline_beta = baseline, baseline_beta
        self.baseline_net = MLP([data_dim, *baseline_hidden, 1], act=activation) \
            if baseline in ("neural", "both") else None
        self._event_dim = len(self.input_shape)
        self._config = {"input_shape": list(self.input_shape), "latent_dim": latent_dim,
                        "decoder_hidden": list(decoder_hidden), "encoder_hidden": list(encoder_hidden),
                        "activation": activation, "baseline": baseline, "baseline_beta": baseline_beta,
                        "baseline_hidden": list(baseline_hidden)}

    def to_config(self):
        """The constructor's arguments as a plain dict (:meth:`from_config` rebuilds the model)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config):
        """A new, untrained model with the arguments :meth:`to_config` described."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})

    # ---- Pyro model/guide pair --------------------------------------------------------
    def _check(self, x):
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        from pyro_lvm.data import check_binary

        check_binary(x, what="data for a Bernoulli likelihood")

    def _likelihood(self, z):
        logits = self.decoder(z).reshape(*z.shape[:-1], *self.input_shape)
        return dist.Bernoulli(logits=logits, validate_args=False).to_event(self._event_dim)

    def model(self, x=None, *, batch_size=None):
        """p(z) p(x|z) over a batch ``x`` of shape ``(N, *input_shape)``.

        With ``x=None`` the site ``"x"`` is sampled for ``batch_size`` data, so
        ``Predictive(m.model, num_samples=S)(None, batch_size=N)["x"]`` has shape ``(S, N, *input_shape)``.
        """
        n = batch_size_of(x, batch_size)
        if x is not None and is_validation_enabled():
            self._check(x)
        register(self.registration_name, self)
        with pyro.plate("data", n):
            z = pyro.sample(self.latent_site, dist.Bernoulli(logits=self.prior_logits).to_event(1))
            pyro.sample(self.obs_site, self._likelihood(z), obs=x)

    def guide(self, x):
        """q(z|x), with the baselines it asks for in ``infer={"baseline": ...}``."""
        register(self.registration_name, self)
        with pyro.plate("data", x.shape[0]):
            logits = self.encoder(x.reshape(x.shape[0], -1))
            pyro.sample(self.latent_site, dist.Bernoulli(logits=logits).to_event(1),
                        infer={"baseline": self._baseline_options(x)} if self.baseline else {})

    def _baseline_options(self, x):
        options = {}
        if self.baseline in ("average", "both"):
            options.update(use_decaying_avg_baseline=True, baseline_beta=self.baseline_beta)
        if self.baseline in ("neural", "both"):
            options.update(nn_baseline=self.baseline_net, nn_baseline_input=x.reshape(x.shape[0], -1))
        return options

    def prior_guide(self, x):
        """z ~ p(z): as an importance proposal it gives the naive estimator (1/K) sum p(x|z_k)."""
        with pyro.plate("data", x.shape[0]):
            pyro.sample(self.latent_site, dist.Bernoulli(logits=self.prior_logits.detach()).to_event(1))

    # ---- exact answers by enumeration -------------------------------------------------
    def _all_configurations(self, like):
        if self.latent_dim > MAX_EXACT_LATENTS:
            raise ValueError(f"exact enumeration of 2^{self.latent_dim} configurations is too large; "
                             f"it is offered up to K = {MAX_EXACT_LATENTS}")
        return torch.tensor(list(itertools.product((0.0, 1.0), repeat=self.latent_dim)), dtype=like.dtype)

    def _joint_table(self, x):
        """``log p(x, z)`` for every configuration: shape ``(2^K, N)``."""
        z = self._all_configurations(x)
        log_pz = dist.Bernoulli(logits=self.prior_logits).log_prob(z).sum(-1)
        log_px_z = self._likelihood(z.unsqueeze(1)).log_prob(x)
        return log_pz.unsqueeze(-1) + log_px_z, z

    def _in_chunks(self, fn, x, max_elements=2 ** 24):
        chunk = max(1, max_elements // (2 ** self.latent_dim * x[0].numel()))
        return torch.cat([fn(x[i:i + chunk]) for i in range(0, len(x), chunk)])

    def exact_log_prob(self, x):
        """:math:`\\log p(x) = \\log \\sum_z p(z) p(x|z)` per datum, by enumeration (differentiable)."""
        return self._in_chunks(lambda xs: torch.logsumexp(self._joint_table(xs)[0], 0), x)

    def exact_elbo(self, x):
        """:math:`\\sum_z q(z|x) [\\log p(x,z) - \\log q(z|x)]` per datum, by enumeration (differentiable)."""
        return self._in_chunks(self._exact_elbo, x)

    def _exact_elbo(self, x):
        joint, z = self._joint_table(x)
        logits = self.encoder(x.reshape(x.shape[0], -1))
        log_q = dist.Bernoulli(logits=logits.unsqueeze(0)).log_prob(z.unsqueeze(1)).sum(-1)  # (2^K, N)
        return (log_q.exp() * (joint - log_q)).sum(0)

    def exact_posterior(self, x):
        """p(z|x) over all configurations: ``(configurations (2^K, K), probabilities (2^K, N))``."""
        joint, z = self._joint_table(x)
        return z, torch.softmax(joint, 0)

    # ---- the same model with one site per latent, for TraceEnum_ELBO ------------------
    def _split_sites(self, logits, enumerate_sites):
        infer = {"enumerate": "parallel"} if enumerate_sites else {}
        bits = [pyro.sample(f"{self.latent_site}_{k}", dist.Bernoulli(logits=logits[..., k]), infer=infer)
                for k in range(self.latent_dim)]
        return torch.stack(torch.broadcast_tensors(*bits), -1)

    def enum_model(self, x, enumerate_latents=False):
        """The model with sites ``z_0 .. z_{K-1}``; ``enumerate_latents`` sums them out in the model."""
        register(self.registration_name, self)
        with pyro.plate("data", x.shape[0]):
            z = self._split_sites(self.prior_logits, enumerate_latents)
            pyro.sample(self.obs_site, self._likelihood(z), obs=x)

    def enum_guide(self, x):
        """The guide with sites ``z_0 .. z_{K-1}`` enumerated in parallel (exact ELBO under TraceEnum_ELBO)."""
        register(self.registration_name, self)
        with pyro.plate("data", x.shape[0]):
            self._split_sites(self.encoder(x.reshape(x.shape[0], -1)), True)

    # ---- helpers ----------------------------------------------------------------------
    def validate_data(self, x):
        self._check(x)

    @torch.no_grad()
    def sample(self, num_samples):
        """Mean images ``E[x|z]`` for ``z`` drawn from the prior."""
        z = dist.Bernoulli(logits=self.prior_logits).sample((num_samples,))
        return torch.sigmoid(self.decoder(z)).reshape(num_samples, *self.input_shape)

    @torch.no_grad()
    def reconstruct(self, x):
        """Mean images ``E[x|z]`` at the guide's most likely ``z``."""
        z = (self.encoder(x.reshape(x.shape[0], -1)) > 0).to(x.dtype)
        return torch.sigmoid(self.decoder(z)).reshape(x.shape)
