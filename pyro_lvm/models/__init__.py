"""Pyro models. Each exposes ``model(x)`` with named sites shared by its guides."""
from pyro_lvm.models.likelihoods import BernoulliLikelihood, GaussianLikelihood, make_likelihood
from pyro_lvm.models.linear_gaussian import LinearGaussian
from pyro_lvm.models.bernoulli import BernoulliLatentModel
from pyro_lvm.models.vae import VAE, VAEConfig

__all__ = ["BernoulliLatentModel", "BernoulliLikelihood", "GaussianLikelihood", "LinearGaussian", "VAE", "VAEConfig",
           "make_likelihood"]
