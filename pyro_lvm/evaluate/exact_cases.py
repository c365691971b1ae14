r"""Small models whose :math:`\log p(x)` is exact, each with an imperfect amortized guide.

The bench on which estimators are compared against the truth (``pyro-lvm compare-elbos
--model NAME``), built from a seed:

``linear-gaussian``
    probabilistic PCA (:class:`~pyro_lvm.models.LinearGaussian`, closed-form :math:`\log p(x)`)
    with a linear amortized diagonal-Normal guide whose mean is the exact posterior mean and
    whose scales are the exact marginal scales times ``guide_scale``; the posterior's
    correlation is missed, so the importance weights have a tail even at ``guide_scale = 1``.
``mixture``
    a three-component isotropic Gaussian mixture (:class:`~pyro_lvm.models.GaussianMixture`,
    exact by enumeration) with a linear softmax guide over the assignment, which is the exact
    posterior at ``guide_scale = 1`` for equal isotropic components (the quadratic terms
    cancel) and is tempered by ``guide_scale`` (0.5: flatter than the posterior).
``bernoulli``
    a linear sigmoid belief net with six binary latents (:class:`~pyro_lvm.models.BernoulliLatentModel`,
    exact by enumerating :math:`2^6` configurations), its data drawn from itself, its encoder
    random and small (times ``guide_scale``); ``tracegraph`` gets an average baseline.
"""
import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_lvm.guides import AmortizedNormalGuide
from pyro_lvm.models import BernoulliLatentModel, GaussianMixture, LinearGaussian, MixtureParams
from pyro_lvm.models.registration import register
from pyro_lvm.nn import MLPEncoder

CASES = ("linear-gaussian", "mixture", "bernoulli")


@dataclass
class ExactCase:
    """A model/guide pair, its data and its exact log-likelihood.

    :ivar enumeration: ``(model, guide)`` with the discrete latents enumerated, for
        ``TraceEnum_ELBO``, or ``None``.
    """

    name: str
    model: object
    guide: object
    data: torch.Tensor
    exact_log_prob: object
    discrete: bool
    enumeration: tuple = None
    modules: tuple = ()


class CategoricalGuide(nn.Module):
    """q(z|x) = Categorical(softmax(A x + c)) over the mixture's ``"assignment"`` site; it asks
    ``tracegraph`` for a decaying-average baseline."""

    def __init__(self, data_dim, num_components, site="assignment"):
        super().__init__()
        self.logits = nn.Linear(data_dim, num_components)
        self.site = site

    def forward(self, x):
        register("categorical_guide", self)
        with pyro.plate("data", x.shape[0]):
            pyro.sample(self.site, dist.Categorical(logits=self.logits(x)),
                        infer={"baseline": {"use_decaying_avg_baseline": True}})


def _linear_gaussian(num_data, guide_scale, g):
    d, k = 6, 2
    model = LinearGaussian(d, k, weight=torch.randn(d, k, generator=g), bias=torch.randn(d, generator=g),
                           noise_scale=0.5)
    x, _ = model.sample(num_data, generator=g)
    encoder = MLPEncoder((d,), hidden=(), latent_dim=k)
    with torch.no_grad():
        w, var = model.weight, model.noise_scale ** 2
        precision = w.T @ w + var * torch.eye(k)
        mean_map = torch.linalg.solve(precision, w.T)  # posterior mean = mean_map (x - b)
        marginal = (var * torch.linalg.inv(precision)).diagonal().sqrt()
        encoder.head.loc.weight.copy_(mean_map)
        encoder.head.loc.bias.copy_(-mean_map @ model.bias)
        encoder.head.log_scale.weight.zero_()
        encoder.head.log_scale.bias.copy_((guide_scale * marginal).log())
    guide = AmortizedNormalGuide(encoder, name="linear_gaussian_guide")
    return ExactCase("linear-gaussian", model.model, guide, x, model.log_prob, False, modules=(model, guide))


def _mixture(num_data, guide_scale, g):
    k, d, sigma = 3, 2, 0.8
    locs = torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]])
    params = MixtureParams(torch.tensor([0.5, 0.3, 0.2]), locs, torch.full((k, d), sigma))
    mixture = GaussianMixture.from_params(params, reg_covar=0.0)
    x, _ = mixture.sample(num_data, generator=g)
    guide = CategoricalGuide(d, k)
    with torch.no_grad():  # the exact posterior's logits, times guide_scale
        guide.logits.weight.copy_(guide_scale * locs / sigma ** 2)
        guide.logits.bias.copy_(guide_scale * (params.weights.log() - locs.pow(2).sum(-1) / (2 * sigma ** 2)))
    return ExactCase("mixture", mixture.model, guide, x, mixture.log_likelihood, True,
                     enumeration=(mixture.model, mixture.guide), modules=(mixture, guide))


def _bernoulli(num_data, guide_scale, g):
    model = BernoulliLatentModel((12,), latent_dim=6, baseline="average")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        for p in model.encoder.parameters():
            p.mul_(0.25 * guide_scale)
        z = torch.bernoulli(torch.sigmoid(model.prior_logits).expand(num_data, -1), generator=g)
        x = torch.bernoulli(torch.sigmoid(model.decoder(z)), generator=g)
    return ExactCase("bernoulli", model.model, model.guide, x, model.exact_log_prob, True,
                     enumeration=(model.enum_model, model.enum_guide), modules=(model,))


def exact_case(name, num_data=64, guide_scale=None, seed=0, dtype=torch.float64):
    """Build the case ``name`` (one of :data:`CASES`) from ``seed``, in ``dtype``.

    :param float guide_scale: how far the guide is from the posterior (see the module
        docstring); default 0.7 for ``linear-gaussian`` (too narrow: heavy-tailed weights),
        0.5 for ``mixture``, 1 for ``bernoulli``.
    """
    builders = {"linear-gaussian": _linear_gaussian, "mixture": _mixture, "bernoulli": _bernoulli}
    if name not in builders:
        raise ValueError(f"unknown exact case {name!r}; choose one of {list(CASES)}")
    if guide_scale is None:
        guide_scale = {"linear-gaussian": 0.7, "mixture": 0.5}.get(name, 1.0)
    if not (math.isfinite(guide_scale) and guide_scale > 0):
        raise ValueError(f"guide_scale must be a positive number, got {guide_scale}")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        case = builders[name](num_data, guide_scale, torch.Generator().manual_seed(seed))
    finally:
        torch.set_default_dtype(previous)
    for module in case.modules:
        module.to(dtype)
    case.data = case.data.to(dtype)
    return case
