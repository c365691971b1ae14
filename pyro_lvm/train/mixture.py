"""Fitting a Gaussian mixture: full-batch L-BFGS or mini-batch Adam on ``TraceEnum_ELBO``.

:func:`fit_lbfgs` maximises the exact log-likelihood (the assignment summed out by enumeration)
with L-BFGS; :func:`fit_adam` runs stochastic mini-batch SVI through :func:`~pyro_lvm.train.fit`.
Both return an :class:`SVIResult`.
"""
import math
import time
from dataclasses import dataclass, field

import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from tqdm.auto import tqdm

from pyro_lvm.train.fit import fit

__all__ = ["SVIResult", "fit_adam", "fit_lbfgs"]


@dataclass
class SVIResult:
    """What :func:`fit_lbfgs` and :func:`fit_adam` return.

    :ivar float log_likelihood: exact mean log-likelihood per point at the end.
    :ivar list history: mean log-likelihood per point at every objective evaluation (L-BFGS)
        or per epoch (Adam); with a prior, the mean log joint including it.
    :ivar int iterations: optimizer iterations (L-BFGS) or epochs (Adam).
    :ivar int evaluations: evaluations of the objective and its gradient.
    """

    log_likelihood: float
    iterations: int
    evaluations: int
    converged: bool
    seconds: float
    history: list = field(default_factory=list)


def fit_lbfgs(mixture, x, tol=1e-7, relative=True, max_iter=500, history_size=20, progress=False):
    r"""Full-batch L-BFGS on ``TraceEnum_ELBO``: the exact log-likelihood, assignments summed out.

    The objective is scaled with ``poutine.scale`` to :math:`-L(\theta)/S`, the summed
    log-likelihood :math:`L` over :math:`S = N |\ell(\theta_0)|` (``relative``; :math:`\ell` the
    mean per point at the start, estimated on at most 20000 points) or over :math:`S = N`, and
    the coordinates are rescaled there (:meth:`GaussianMixture.set_params` with curvature
    :math:`N_k / S`) so that its Hessian is about the identity. L-BFGS with a strong-Wolfe line
    search then stops when an iteration changes the mean log-likelihood by less than ``tol``
    relative to its start (or, with ``relative=False``, by less than ``tol`` nats per point), or
    when the predicted change or the step is that small.

    :param GaussianMixture mixture: initialised (see :meth:`GaussianMixture.initialize`).
    :returns: :class:`SVIResult`.
    """
    start = time.perf_counter()
    x = mixture.validate_data(x).to(mixture.step.dtype)
    n = len(x)
    unit = n
    if relative:
        unit *= max(abs(mixture.log_likelihood(x[:: max(1, n // 20000)]).mean().item()), 1e-3)
    params = mixture.params()
    mixture.set_params(params, curvature=n * params.weights / unit)
    model = poutine.scale(mixture.model, scale=1.0 / unit)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    optimizer = torch.optim.LBFGS(mixture.parameters(), lr=1.0, max_iter=max_iter, max_eval=2 * max_iter,
                                  tolerance_grad=0.0, tolerance_change=tol, history_size=history_size,
                                  line_search_fn="strong_wolfe")
    history, last_point = [], None
    with tqdm(desc="L-BFGS", disable=not progress, leave=False) as bar:
        def closure():
            nonlocal last_point
            optimizer.zero_grad(set_to_none=True)
            loss = elbo.differentiable_loss(model, mixture.guide, x)
            loss.backward()
            history.append(-loss.item() * unit / n)
            last_point = _flat(mixture)
            bar.update()
            bar.set_postfix(log_lik=f"{history[-1]:.6g}", refresh=False)
            return loss

        optimizer.step(closure)
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    iterations = state.get("n_iter", 0)
    if mixture.prior is None and torch.equal(last_point, _flat(mixture)):
        final = history[-1]  # the line search's last evaluation is where it stopped
    else:
        final = mixture.log_likelihood(x).mean().item()
    return SVIResult(final, iterations, state.get("func_evals", len(history)), iterations < max_iter,
                     time.perf_counter() - start, history)


def _flat(module):
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def fit_adam(mixture, x, epochs=100, batch_size=1024, lr=0.05, progress=False, seed=0):
    """Stochastic mini-batch SVI with Adam on ``TraceEnum_ELBO`` through :func:`pyro_lvm.train.fit`.

    :returns: :class:`SVIResult` (``converged`` is False: it runs all ``epochs``).
    """
    start = time.perf_counter()
    x = mixture.validate_data(x).to(mixture.step.dtype)
    result = fit(mixture.model, mixture.guide, TraceEnum_ELBO(max_plate_nesting=1), x, epochs=epochs,
                 batch_size=batch_size, lr=lr, seed=seed, modules={"mixture": mixture}, progress=progress)
    history = [-row["train_loss"] for row in result.history]
    final = mixture.log_likelihood(x).mean().item()
    return SVIResult(final, len(history), len(history) * math.ceil(len(x) / batch_size), False,
                     time.perf_counter() - start, history)
