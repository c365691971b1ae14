"""Active units of the quality benchmark's trained models, beside Burda et al. (2015, Table 1).

Loads each model that ``mnist_quality.py --save-dir DIR`` kept and measures on the first
``--eval-images`` test images of dynamically binarized MNIST (binarized once with the seed):
active units (A_u = Cov_x E_q[u_i] > 0.01; Burda et al. 2015, sec. 5.2), rate, distortion and
the aggregate-posterior mutual information I_q(x; z) (<= log N) with its standard error.

Usage: ``python benchmarks/active_units.py --data-root ../shared/data --models-dir results/quality15/models``
"""
import argparse
import glob
import math
import os


from common import environment, prepare, print_table, write_json
from pyro_lvm import load_model
from pyro_lvm.data import load_dataset
from pyro_lvm.evaluate import collapse_diagnostics

#: Burda et al. 2015, Table 1 (MNIST, one stochastic layer of 50 units); active units as recalled
#: from the paper (VAE k=1: 19, IWAE k=5: 22, IWAE k=50: 25), not re-checked against the PDF here
PAPER_ACTIVE = {"elbo1": 19, "iwae5": 22, "iwae50": 25}
COLUMNS = ["model", "active_units", "latent_dim", "rate", "distortion", "mutual_information", "mi_se", "paper_active"]


def main(args):
    prepare(args.threads)
    data = load_dataset("mnist", root=args.data_root, binarize="dynamic", seed=args.seed)
    test = data.test[: args.eval_images]
    rows = []
    for path in sorted(glob.glob(os.path.join(args.models_dir, "*.pt"))):
        name = os.path.basename(path)[:-3]
        model = load_model(path)
        model.eval()
        diag = collapse_diagnostics(model.model, model.guide, test, lower_bound=False, seed=args.seed)
        key = name.split("_")[0]
        rows.append({"model": name, "active_units": diag.active_units, "latent_dim": diag.latent_dim,
                     "rate": diag.rate, "distortion": diag.distortion, "mutual_information": diag.mutual_information,
                     "mi_se": diag.mi_se, "log_n": math.log(len(test)),
                     "paper_active": PAPER_ACTIVE.get(key) if name.endswith("_diag") else None,
                     "unit_variances": diag.unit_variances.tolist()})
    print_table(rows, COLUMNS)
    path = write_json(args.output, {"environment": environment(), "args": vars(args), "rows": rows})
    print(f"wrote {path}")
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (default: $PYRO_LVM_DATA)")
    parser.add_argument("--models-dir", default=os.path.join(os.path.dirname(__file__), "results", "quality15",
                                                             "models"))
    parser.add_argument("--eval-images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="quality15/active_units.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
