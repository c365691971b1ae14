r"""The observation distribution of an autoregressive decoder, as a Pyro distribution.

.. math::

    \log p_\theta(x \mid z) = \sum_i x_i \log \sigma(\eta_i) + (1 - x_i) \log(1 - \sigma(\eta_i)),
    \qquad \eta = \mathrm{decoder}(z, x),

where :math:`\eta_i` depends on :math:`x` only through the pixels before :math:`i` (raster order;
:class:`~pyro_lvm.nn.PixelCNNDecoder`), so the sum is the exact log-density of the
autoregressive factorisation. :meth:`AutoregressiveBernoulli.log_prob` scores data by teacher
forcing (one pass) and :meth:`~AutoregressiveBernoulli.sample` draws pixel by pixel; a model that
writes ``pyro.sample("x", AutoregressiveBernoulli(decoder, z), obs=x)`` therefore works under every
objective, under ``Predictive`` (``x=None``) and in the importance-sampled log-likelihood.

References

1. A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural Networks. ICML 2016.
"""
import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution, constraints


class AutoregressiveBernoulli(TorchDistribution):
    """Binary images given latents ``z``: batch shape ``z.shape[:-1]``, event shape ``(C, H, W)``.

    :param decoder: a :class:`~pyro_lvm.nn.PixelCNNDecoder` (``decoder(z, x)`` gives logits,
        ``decoder.sample(z)`` draws images).
    :param torch.Tensor z: latents ``(*batch, latent_dim)``.
    """

    arg_constraints = {}
    has_rsample = False

    def __init__(self, decoder, z, validate_args=None):
        self.decoder, self.z = decoder, z
        super().__init__(z.shape[:-1], torch.Size(decoder.input_shape), validate_args=validate_args)

    @property
    def support(self):
        return constraints.independent(constraints.boolean, len(self.event_shape))

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return type(self)(self.decoder, self.z.expand(batch_shape + self.z.shape[-1:]))

    def logits(self, value):
        """Teacher-forced logits of every pixel of ``value``, shape ``batch_shape + event_shape``
        broadcast with ``value``'s batch dimensions."""
        return self.decoder(self.z, value)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits(value)
        log_p = -F.binary_cross_entropy_with_logits(logits, value.to(logits.dtype).expand_as(logits),
                                                    reduction="none")
        return log_p.flatten(-len(self.event_shape)).sum(-1)

    def sample(self, sample_shape=torch.Size()):
        return self.decoder.sample(self.z.expand(torch.Size(sample_shape) + self.z.shape))
