"""Evaluation the field trusts: importance-sampled log-likelihood and the ELBO's terms."""
from pyro_lvm.evaluate.compare import compare_likelihood_estimators
from pyro_lvm.evaluate.elbo_terms import elbo_terms
from pyro_lvm.evaluate.loglik import LogLikelihood, log_likelihood

__all__ = ["LogLikelihood", "compare_likelihood_estimators", "elbo_terms", "log_likelihood"]
