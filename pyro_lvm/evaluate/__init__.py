"""Evaluation the field trusts: importance-sampled log-likelihood with its PSIS k-hat, and the ELBO's terms."""
from pyro_lvm.evaluate.compare import compare_likelihood_estimators
from pyro_lvm.evaluate.elbo_terms import elbo_terms
from pyro_lvm.evaluate.loglik import LogLikelihood, log_likelihood
from pyro_lvm.evaluate.psis import KHAT_THRESHOLD, pareto_khat

__all__ = ["KHAT_THRESHOLD", "LogLikelihood", "compare_likelihood_estimators", "elbo_terms", "log_likelihood",
           "pareto_khat"]
