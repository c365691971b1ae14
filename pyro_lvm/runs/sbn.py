"""``pyro-lvm train sbn``: the Bernoulli-latent model (a sigmoid belief net with a neural decoder).

Discrete latents need score-function gradients: ``--objective elbo`` (REINFORCE),
``tracegraph`` with ``--baseline average|neural|both`` (Mnih & Gregor 2014) or ``iwae`` (VIMCO's
leave-one-out estimator, Mnih & Rezende 2016). Trains on the fixed binarized MNIST of
Larochelle & Murray where it is found, else on the embedded subset binarized dynamically.
"""
import os
import warnings

from pyro_lvm.data.paths import existing_data_root
from pyro_lvm.models import BernoulliLatentModel
from pyro_lvm.runs.base import positive_float, positive_int, register
from pyro_lvm.runs.fitted import FitRunKind, add_data_arguments, add_training_arguments, load_images


def _default_data(root):
    folder = os.path.join(existing_data_root(root), "binarized_mnist")
    if os.path.isfile(os.path.join(folder, "binarized_mnist_train.amat.gz")) or \
            os.path.isfile(os.path.join(folder, "binarized_mnist_train.amat")):
        return "binarized-mnist"
    warnings.warn(f"binarized MNIST was not found in {folder}; training on the embedded MNIST subset, "
                  "binarized dynamically (point --data-root or PYRO_LVM_DATA at a folder holding "
                  "binarized_mnist/ for the standard benchmark)", stacklevel=2)
    return "embedded"


@register
class SBNRun(FitRunKind):
    name = "sbn"
    help = "Bernoulli-latent model (sigmoid belief net), score-function objectives"
    model_class = BernoulliLatentModel

    def add_arguments(self, p):
        add_data_arguments(p, "binarized-mnist where found, else the embedded subset")
        add_training_arguments(p, ["elbo", "tracegraph", "iwae"], "tracegraph")
        p.add_argument("--baseline", choices=["none", "average", "neural", "both"], default="both",
                       help="variance reduction of the tracegraph objective (default: both)")
        p.add_argument("--baseline-beta", type=positive_float, default=0.9, help="decay of the average baseline")
        p.add_argument("--latent-dim", type=positive_int, default=200)
        p.add_argument("--decoder-hidden", type=positive_int, nargs="*", default=[],
                       help="hidden widths of the decoder (none: a linear sigmoid belief net)")
        p.add_argument("--encoder-hidden", type=positive_int, nargs="*", default=[])
        p.add_argument("--activation", default="tanh")

    def settings(self, args):
        settings = super().settings(args)
        settings["data"] = settings["data"] or _default_data(settings.get("data_root"))
        settings["binarize"] = None
        return settings

    def dataset(self, settings, data_root=None):
        return load_images(settings, data_root, "dynamic")

    def build_model(self, s, dataset):
        return BernoulliLatentModel(
            input_shape=dataset.input_shape, latent_dim=s["latent_dim"], decoder_hidden=tuple(s["decoder_hidden"]),
            encoder_hidden=tuple(s["encoder_hidden"]), activation=s["activation"],
            baseline=None if s["baseline"] == "none" else s["baseline"], baseline_beta=s["baseline_beta"])
