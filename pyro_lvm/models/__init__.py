"""Pyro models. Each exposes ``model(x)`` with named sites shared by its guides.

Models generate data with ``model(None, batch_size=N)`` (what ``pyro.infer.Predictive`` calls),
and register their networks with ``pyro.module`` so that stock ``pyro.infer.SVI`` trains them
(:mod:`pyro_lvm.models.registration`; :func:`pyro_lvm.train.fit` switches it off for speed).
"""
from pyro_lvm.models.bernoulli import BernoulliLatentModel
from pyro_lvm.models.cvae import CVAE, CVAEConfig, DeterministicBaseline
from pyro_lvm.models.gmm import (BayesianGaussianMixture, GaussianComponents, GaussianMixture, GMMPrior,
                                 match_components, site_values)
from pyro_lvm.models.gmm_em import (EMResult, MixtureParams, fit_em, initial_params, kmeans_plusplus,
                                    random_params, sample_mixture)
from pyro_lvm.models.likelihoods import BernoulliLikelihood, GaussianLikelihood, make_likelihood
from pyro_lvm.models.linear_gaussian import LinearGaussian
from pyro_lvm.models.registration import is_registration_enabled, register, registration_enabled
from pyro_lvm.models.vae import VAE, VAEConfig

__all__ = ["BayesianGaussianMixture", "BernoulliLatentModel", "BernoulliLikelihood", "CVAE", "CVAEConfig",
           "DeterministicBaseline", "EMResult", "GMMPrior",
           "GaussianComponents", "GaussianLikelihood", "GaussianMixture", "LinearGaussian", "MixtureParams", "VAE",
           "VAEConfig", "fit_em", "initial_params", "is_registration_enabled", "kmeans_plusplus", "make_likelihood",
           "match_components", "random_params", "register", "registration_enabled", "sample_mixture", "site_values"]
