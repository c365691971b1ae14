"""Fit a Gaussian mixture to data with known truth, compare it with EM, and draw it.

``pyro-lvm train gmm --components 3 --points 2000 --out runs/gmm`` draws 2-D data from a random
mixture, fits :class:`~pyro_lvm.models.gmm.GaussianMixture` by full-batch L-BFGS on
``TraceEnum_ELBO`` (or Adam through :func:`pyro_lvm.train.fit`), fits EM from the same start,
prints the table of true and learned parameters and saves ``gmm.png`` (points coloured by
assignment, learned ellipses) and ``gmm.json``; ``--nuts`` adds a NUTS run of the Bayesian model
with its ArviZ summary and ``gmm_trace.png``. The pieces are usable on their own (see
``examples/gmm.py``).
"""
import argparse
import json
import math
import os
import time
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyro  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from pyro import poutine  # noqa: E402
from pyro.infer import TraceEnum_ELBO  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from pyro_lvm.models.gmm import GaussianMixture, match_components  # noqa: E402
from pyro_lvm.models.gmm_em import fit_em, random_params, sample_mixture  # noqa: E402
from pyro_lvm.train import fit  # noqa: E402

SMOKE = {"points": 400, "max_iter": 50, "nuts_points": 100, "nuts_samples": 20}


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


def parameter_table(truth, fitted):
    """Text table of true and learned weights, means and standard deviations, components matched.

    :param MixtureParams truth: the generating parameters.
    :param dict fitted: ``name -> MixtureParams``; each is reordered to match ``truth``.
    :returns: ``(text, rows)``, ``rows`` one dict per component and source.
    """
    rows = []
    sources = {"true": truth, **{name: p.permute(match_components(p.locs, truth.locs)) for name, p in fitted.items()}}
    for k in range(truth.num_components):
        for name, p in sources.items():
            stddevs = p.covariances[k].diagonal().sqrt()
            rows.append({"component": k, "source": name, "weight": p.weights[k].item(),
                         "mean": [round(v, 3) for v in p.locs[k].tolist()],
                         "stddev": [round(v, 3) for v in stddevs.tolist()]})
    header = f"{'k':>2}  {'source':<8}  {'weight':>7}  {'mean':<28}  stddev"
    lines = [header, "-" * len(header)]
    for r in rows:
        mean = ", ".join(f"{v:.3f}" for v in r["mean"][:4]) + (", ..." if len(r["mean"]) > 4 else "")
        stddev = ", ".join(f"{v:.3f}" for v in r["stddev"][:4]) + (", ..." if len(r["stddev"]) > 4 else "")
        lines.append(f"{r['component']:>2}  {r['source']:<8}  {r['weight']:7.3f}  {mean:<28}  {stddev}")
    return "\n".join(lines), rows


def plot_mixture(x, labels, params, path, title=None, truth=None):
    """Scatter the first two coordinates coloured by ``labels`` with 1- and 2-sigma ellipses; save PNG.

    :param MixtureParams params: the learned mixture (solid ellipses).
    :param MixtureParams truth: optional generating mixture (dashed ellipses).
    """
    x, labels = x.detach().cpu(), labels.detach().cpu()
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    cmap = plt.get_cmap("tab10")
    ax.scatter(x[:, 0], x[:, 1], c=(labels % 10).numpy(), cmap=cmap, vmin=0, vmax=9, s=4, alpha=0.5, linewidths=0)
    for mixture, style in ((truth, "--"), (params, "-")):
        if mixture is None:
            continue
        for k in range(mixture.num_components):
            _ellipses(ax, mixture.locs[k, :2], mixture.covariances[k, :2, :2], cmap(k % 10), style)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    default = "points coloured by assignment;\nlearned 1- and 2-sigma ellipses" + (
        " (solid), true ones (dashed)" if truth is not None else "")
    ax.set_title(title or default, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _ellipses(ax, loc, cov, colour, style):
    values, vectors = torch.linalg.eigh(cov.double())
    angle = math.degrees(math.atan2(vectors[1, 1].item(), vectors[0, 1].item()))
    for radius in (1, 2):
        width, height = (2 * radius * values.clamp_min(0).sqrt()).tolist()[::-1]
        ax.add_patch(Ellipse(loc.tolist(), width, height, angle=angle, fill=False, edgecolor="black" if
                             style == "--" else colour, linestyle=style, linewidth=1.5 if style == "-" else 1.0))
    ax.plot(*loc.tolist(), marker="x" if style == "-" else "+", color="black", markersize=8)


def add_gmm_arguments(parser):
    """The options of ``pyro-lvm train gmm``."""
    parser.add_argument("--components", type=int, default=3, help="K, in the truth and in the fit")
    parser.add_argument("--dim", type=int, default=2, help="D (the plot shows the first two coordinates)")
    parser.add_argument("--points", type=int, default=2000, help="N, points drawn from the true mixture")
    parser.add_argument("--covariance", choices=["full", "diag"], default="full")
    parser.add_argument("--spread", type=float, default=3.0, help="true means are N(0, spread^2 I)")
    parser.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs",
                        help="full-batch L-BFGS or mini-batch Adam on TraceEnum_ELBO")
    parser.add_argument("--restarts", type=int, default=3, help="k-means++ seedings; the best starts the fit")
    parser.add_argument("--tol", type=float, default=1e-7, help="relative tolerance on the log-likelihood")
    parser.add_argument("--max-iter", type=int, default=500, help="L-BFGS iterations (or Adam epochs)")
    parser.add_argument("--batch-size", type=int, default=256, help="Adam only")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam only")
    parser.add_argument("--nuts", action="store_true", help="also sample the Bayesian model with NUTS")
    parser.add_argument("--nuts-points", type=int, default=500, help="NUTS sees the first this many points")
    parser.add_argument("--nuts-samples", type=int, default=200, help="draws per chain (and as many warm-up)")
    parser.add_argument("--nuts-chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for gmm.png, gmm.json (and gmm_trace.png)")
    parser.add_argument("--smoke", action="store_true", help="a few hundred points, seconds")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def run_gmm(args):
    """Run ``pyro-lvm train gmm`` from parsed ``args``; prints the table, writes PNG and JSON.

    :returns: dict with the true and learned parameters (as rows), exact log-likelihoods of
        the truth, the SVI fit and EM, the fits' iterations and seconds, the files written and,
        with ``--nuts``, the R-hat and ESS summary.
    """
    if args.smoke:
        args = argparse.Namespace(**{**vars(args), **{k: min(getattr(args, k), v) for k, v in SMOKE.items()}})
    points = args.points
    progress = not args.no_progress
    pyro.set_rng_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    truth = random_params(args.components, args.dim, args.covariance, args.spread, generator, torch.float64)
    x, _ = sample_mixture(truth, points, generator)
    mixture = GaussianMixture(args.components, args.dim, args.covariance, dtype=torch.float64)
    mixture.initialize(x, restarts=args.restarts, generator=generator)
    start_params = mixture.params()
    if args.optimizer == "lbfgs":
        svi = fit_lbfgs(mixture, x, tol=args.tol, max_iter=args.max_iter, progress=progress)
    else:
        svi = fit_adam(mixture, x, epochs=args.max_iter, batch_size=args.batch_size, lr=args.lr,
                       progress=progress, seed=args.seed)
    em = fit_em(x, init=start_params, tol=args.tol, progress=progress)
    fitted = mixture.params()
    table, rows = parameter_table(truth, {"svi": fitted, "em": em.params})
    true_ll = GaussianMixture.from_params(truth, reg_covar=0.0).log_likelihood(x).mean().item()
    os.makedirs(args.out, exist_ok=True)
    plot = plot_mixture(x, mixture.assign(x), fitted, os.path.join(args.out, "gmm.png"), truth=truth,
                        title=f"K={args.components}, N={points}: infer_discrete assignments,\n"
                              "learned (solid) and true (dashed) 1- and 2-sigma ellipses")
    print(table)
    print(f"mean log-likelihood per point: truth {true_ll:.5f}, SVI ({args.optimizer}) {svi.log_likelihood:.5f} "
          f"in {svi.iterations} iterations, EM {em.log_likelihood:.5f} in {em.iterations} iterations")
    summary = {"truth_log_likelihood": true_ll, "parameters": rows, "files": [plot],
               "svi": {"optimizer": args.optimizer, "log_likelihood": svi.log_likelihood,
                       "iterations": svi.iterations, "evaluations": svi.evaluations, "seconds": svi.seconds},
               "em": {"log_likelihood": em.log_likelihood, "iterations": em.iterations, "seconds": em.seconds}}
    if args.nuts:
        summary["nuts"] = _run_nuts(args, x, start_params, progress)
        summary["files"].append(summary["nuts"]["trace_plot"])
        print("NUTS: max R-hat {max_rhat:.3f}, min bulk ESS {min_ess_bulk:.0f}, trace plot {trace_plot}".format(
            **summary["nuts"]))
    with open(os.path.join(args.out, "gmm.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _run_nuts(args, x, start_params, progress):
    from pyro_lvm.evaluate.mcmc import sample_gmm_posterior

    result = sample_gmm_posterior(x[: args.nuts_points], args.components, covariance="diag",
                                  num_samples=args.nuts_samples, warmup_steps=args.nuts_samples,
                                  num_chains=args.nuts_chains, seed=args.seed, init=start_params, progress=progress,
                                  trace_plot=os.path.join(args.out, "gmm_trace.png"),
                                  max_tree_depth=5 if args.smoke else 8)
    return result.summary
