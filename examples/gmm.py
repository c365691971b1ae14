"""Fit a 2-D Gaussian mixture with its assignment summed out exactly, and compare it with EM.

Composes the library's pieces by hand: data from a mixture with known parameters, the Pyro
model with k-means++ initialisation, full-batch L-BFGS on TraceEnum_ELBO, the EM baseline from
the same start, the table of true and learned parameters, and the plot of the points coloured by
their infer_discrete assignment with the learned ellipses. ``--nuts`` also samples the Bayesian
mixture with NUTS and saves its ArviZ trace plot.

    python examples/gmm.py --components 4 --points 5000 --out runs/example_gmm
    python examples/gmm.py --smoke
"""
import argparse
import os

import pyro
import torch

from pyro_lvm.plots import plot_mixture
from pyro_lvm.runs.gmm import parameter_table
from pyro_lvm.train.mixture import fit_lbfgs
from pyro_lvm.models.gmm import GaussianMixture
from pyro_lvm.models.gmm_em import fit_em, random_params, sample_mixture


def main(args):
    torch.set_num_threads(args.threads)
    pyro.set_rng_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    truth = random_params(args.components, 2, "full", spread=args.spread, generator=generator, dtype=torch.float64)
    x, _ = sample_mixture(truth, args.points, generator)

    mixture = GaussianMixture(args.components, 2, "full", dtype=torch.float64)
    mixture.initialize(x, restarts=args.restarts, generator=generator)
    start = mixture.params()
    svi = fit_lbfgs(mixture, x, tol=args.tol, progress=not args.smoke)
    em = fit_em(x, init=start, tol=args.tol)

    table, _ = parameter_table(truth, {"svi": mixture.params(), "em": em.params})
    print(table)
    truth_ll = GaussianMixture.from_params(truth, reg_covar=0.0).log_likelihood(x).mean().item()
    print(f"log-likelihood per point: truth {truth_ll:.4f}, L-BFGS on TraceEnum_ELBO {svi.log_likelihood:.4f} "
          f"({svi.iterations} iterations, {svi.seconds:.2f} s), EM {em.log_likelihood:.4f} "
          f"({em.iterations} iterations, {em.seconds:.2f} s)")
    plot_mixture(x, mixture.assign(x), mixture.params(), os.path.join(args.out, "gmm.png"), truth=truth)
    result = {"truth": truth_ll, "svi": svi.log_likelihood, "em": em.log_likelihood}

    if args.nuts:
        from pyro_lvm.evaluate.mcmc import sample_gmm_posterior

        posterior = sample_gmm_posterior(x[: args.nuts_points], args.components, num_samples=args.nuts_samples,
                                         warmup_steps=args.nuts_samples, init=start, seed=args.seed,
                                         trace_plot=os.path.join(args.out, "gmm_trace.png"))
        print("NUTS on {} points: max R-hat {max_rhat:.3f}, min bulk ESS {min_ess_bulk:.0f}, "
              "{divergences} divergences".format(args.nuts_points, **posterior.summary))
        result["nuts"] = posterior.summary
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=4)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--spread", type=float, default=3.0, help="true means are N(0, spread^2 I)")
    parser.add_argument("--restarts", type=int, default=3, help="k-means++ seedings; the best starts both fits")
    parser.add_argument("--tol", type=float, default=1e-7, help="relative tolerance on the log-likelihood")
    parser.add_argument("--nuts", action="store_true", help="also sample the Bayesian mixture with NUTS")
    parser.add_argument("--nuts-points", type=int, default=500)
    parser.add_argument("--nuts-samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example_gmm")
    parser.add_argument("--smoke", action="store_true", help="a few hundred points, a few seconds")
    args = parser.parse_args()
    if args.smoke:
        args.points, args.components, args.restarts = 300, 3, 1
    main(args)
