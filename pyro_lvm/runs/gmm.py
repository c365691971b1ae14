"""``pyro-lvm train gmm``: fit a Gaussian mixture to data with known truth, compare it with EM, draw it.

``pyro-lvm train gmm --components 3 --points 2000 --out runs/gmm`` draws data from a random
mixture, fits :class:`~pyro_lvm.models.gmm.GaussianMixture` by full-batch L-BFGS on
``TraceEnum_ELBO`` (or Adam through :func:`pyro_lvm.train.fit`), fits EM from the same start,
prints the table of true and learned parameters and saves ``gmm.png`` (points coloured by
assignment, learned ellipses), ``gmm.json`` and ``checkpoint.pt`` (the fitted and true
parameters); ``--nuts`` adds a NUTS run of the Bayesian model with its ArviZ summary and
``gmm_trace.png``. The pieces are usable on their own (see ``examples/gmm.py``).
"""

import pyro
import torch

from pyro_lvm.errors import NonFiniteLossError, UsageError
from pyro_lvm.files import write_json
from pyro_lvm.models.gmm import GaussianMixture, match_components
from pyro_lvm.models.gmm_em import fit_em, random_params, sample_mixture
from pyro_lvm.plots.mixture import plot_mixture
from pyro_lvm.runs.base import RunKind, bounded_number, positive_float, positive_int, register
from pyro_lvm.serialization import save_state
from pyro_lvm.train.mixture import fit_adam, fit_lbfgs


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


_at_least_two = bounded_number(int, lambda v: v >= 2, "at least 2 (the mixture is drawn in its first two coordinates)")


@register
class GMMRun(RunKind):
    name = "gmm"
    help = "Gaussian mixture, assignments enumerated (with an EM baseline)"
    smoke = {"points": 400, "max_iter": 50, "nuts_points": 100, "nuts_samples": 20}

    def add_arguments(self, parser):
        parser.add_argument("--components", type=positive_int, default=3, help="K, in the truth and in the fit")
        parser.add_argument("--dim", type=_at_least_two, default=2,
                            help="D >= 2 (the plot shows the first two coordinates)")
        parser.add_argument("--points", type=positive_int, default=2000, help="N, points drawn from the true mixture")
        parser.add_argument("--covariance", choices=["full", "diag"], default="full")
        parser.add_argument("--spread", type=bounded_number(float, lambda v: 0 < v <= 1e3, "a number in (0, 1000]"),
                            default=3.0, help="true means are N(0, spread^2 I)")
        parser.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs",
                            help="full-batch L-BFGS or mini-batch Adam on TraceEnum_ELBO")
        parser.add_argument("--restarts", type=positive_int, default=3,
                            help="k-means++ seedings; the best starts the fit")
        parser.add_argument("--tol", type=bounded_number(float, lambda v: 0 < v < 1, "a number in (0, 1)"),
                            default=1e-7, help="relative tolerance on the log-likelihood")
        parser.add_argument("--max-iter", type=positive_int, default=500, help="L-BFGS iterations (or Adam epochs)")
        parser.add_argument("--batch-size", type=positive_int, default=256, help="Adam only")
        parser.add_argument("--lr", type=positive_float, default=0.05, help="Adam only")
        parser.add_argument("--nuts", action="store_true", help="also sample the Bayesian model with NUTS")
        parser.add_argument("--nuts-points", type=positive_int, default=500,
                            help="NUTS sees the first this many points")
        parser.add_argument("--nuts-samples", type=positive_int, default=200,
                            help="draws per chain (and as many warm-up)")
        parser.add_argument("--nuts-chains", type=positive_int, default=2)

    def train(self, folder, s, progress=True):
        """Fit, compare with EM, print the table, write PNG, JSON and the checkpoint.

        :returns: dict with the true and learned parameters (as rows), exact log-likelihoods of
            the truth, the SVI fit and EM, the fits' iterations and seconds, the files written and,
            with ``--nuts``, the R-hat and ESS summary.
        """
        if s["points"] < 2 * s["components"]:
            raise UsageError(f"--points {s['points']} is too few for --components {s['components']}; "
                             "give at least two points per component")
        folder.write_config(s, {"name": "synthetic mixture", "train_size": s["points"], "test_size": 0,
                                "input_shape": [s["dim"]]})
        pyro.set_rng_seed(s["seed"])
        generator = torch.Generator().manual_seed(s["seed"])
        truth = random_params(s["components"], s["dim"], s["covariance"], s["spread"], generator, torch.float64)
        x, _ = sample_mixture(truth, s["points"], generator)
        mixture = GaussianMixture(s["components"], s["dim"], s["covariance"], dtype=torch.float64)
        try:
            mixture.initialize(x, restarts=s["restarts"], generator=generator)
            start_params = mixture.params()
            if s["optimizer"] == "lbfgs":
                svi = fit_lbfgs(mixture, x, tol=s["tol"], max_iter=s["max_iter"], progress=progress)
            else:
                svi = fit_adam(mixture, x, epochs=s["max_iter"], batch_size=s["batch_size"], lr=s["lr"],
                               progress=progress, seed=s["seed"])
            fitted = mixture.params()
            if not all(torch.isfinite(t).all() for t in (fitted.weights, fitted.locs, fitted.scale)):
                raise NonFiniteLossError("the fitted parameters are not finite")
            em = fit_em(x, init=start_params, tol=s["tol"], progress=progress)
        except (torch.linalg.LinAlgError, NonFiniteLossError, ValueError) as e:
            first = str(e).splitlines()[0]
            raise UsageError(f"the {s['optimizer']} fit diverged ({first[:120]}); lower --lr, use --optimizer "
                             "lbfgs, or draw better-conditioned data (a moderate --spread)") from None
        table, rows = parameter_table(truth, {"svi": fitted, "em": em.params})
        true_ll = GaussianMixture.from_params(truth, reg_covar=0.0).log_likelihood(x).mean().item()
        plot = plot_mixture(x, mixture.assign(x), fitted, folder.file("gmm.png"), truth=truth,
                            title=f"K={s['components']}, N={s['points']}: infer_discrete assignments,\n"
                                  "learned (solid) and true (dashed) 1- and 2-sigma ellipses")
        print(table)
        print(f"mean log-likelihood per point: truth {true_ll:.5f}, SVI ({s['optimizer']}) {svi.log_likelihood:.5f} "
              f"in {svi.iterations} iterations, EM {em.log_likelihood:.5f} in {em.iterations} iterations")
        summary = {"truth_log_likelihood": true_ll, "parameters": rows, "files": [plot],
                   "svi": {"optimizer": s["optimizer"], "log_likelihood": svi.log_likelihood,
                           "iterations": svi.iterations, "evaluations": svi.evaluations, "seconds": svi.seconds},
                   "em": {"log_likelihood": em.log_likelihood, "iterations": em.iterations, "seconds": em.seconds}}
        save_state(folder.checkpoint, self.name, {
            "mixture": mixture.state_dict(), "components": s["components"], "dim": s["dim"],
            "covariance": s["covariance"], "truth": {k: getattr(truth, k) for k in ("weights", "locs", "scale")}})
        if s["nuts"]:
            summary["nuts"] = _run_nuts(s, x, start_params, progress, folder.file("gmm_trace.png"))
            summary["files"].append(summary["nuts"]["trace_plot"])
            print("NUTS: max R-hat {max_rhat:.3f}, min bulk ESS {min_ess_bulk:.0f}, trace plot {trace_plot}".format(
                **summary["nuts"]))
        write_json(folder.file("gmm.json"), summary)
        return summary


def _run_nuts(s, x, start_params, progress, trace_plot):
    from pyro_lvm.evaluate.mcmc import sample_gmm_posterior

    result = sample_gmm_posterior(x[: s["nuts_points"]], s["components"], covariance="diag",
                                  num_samples=s["nuts_samples"], warmup_steps=s["nuts_samples"],
                                  num_chains=s["nuts_chains"], seed=s["seed"], init=start_params, progress=progress,
                                  trace_plot=trace_plot, max_tree_depth=5 if s["smoke"] else 8)
    return result.summary
