"""Evaluation the field trusts: importance-sampled log-likelihood with its PSIS k-hat, the ELBO's terms,
posterior-collapse diagnostics, and the harness that compares estimators side by side."""
from pyro_lvm.evaluate.compare import compare_likelihood_estimators
from pyro_lvm.evaluate.diagnostics import (Diagnostics, DiagnosticsCallback, aggregate_posterior_mi,
                                           barber_agakov_bound, collapse_diagnostics, latent_traversal)
from pyro_lvm.evaluate.elbo_terms import elbo_terms
from pyro_lvm.evaluate.estimator_table import EstimatorTable
from pyro_lvm.evaluate.gradients import gradient_statistics, parameter_groups
from pyro_lvm.evaluate.harness import compare_estimators
from pyro_lvm.evaluate.loglik import LogLikelihood, log_likelihood
from pyro_lvm.evaluate.psis import KHAT_THRESHOLD, pareto_khat
from pyro_lvm.evaluate.specs import EstimatorSpec, standard_specs

__all__ = ["Diagnostics", "DiagnosticsCallback", "EstimatorSpec", "EstimatorTable", "KHAT_THRESHOLD", "LogLikelihood",
           "aggregate_posterior_mi", "barber_agakov_bound", "collapse_diagnostics", "compare_estimators",
           "compare_likelihood_estimators", "elbo_terms", "gradient_statistics", "latent_traversal", "log_likelihood",
           "parameter_groups", "pareto_khat", "standard_specs"]
