"""``pyro-lvm train vae``: a Gaussian VAE (MLP or conv) trained by any objective.

``pyro-lvm train vae --epochs 20 --out runs/vae`` trains on MNIST where it is found and on the
embedded 5000-digit subset otherwise (saying so), then prints the test log-likelihood table;
``pyro-lvm evaluate runs/vae --samples 5000`` re-evaluates it. See
:mod:`pyro_lvm.runs.fitted` for what the run folder holds.

8-bit images: ``--likelihood discretized-logistic|logistic-mixture|categorical`` (exact
probabilities of the pixel values) or ``--likelihood gaussian --dequantize uniform|variational``
(a bound on them) load the data as integers 0..255 and report test bits per dimension of the
8-bit data; ``--likelihood gaussian`` alone is a density of [0, 1] data, reported without bits
per dimension. ``--data cifar10`` reads ``<data root>/cifar-10-batches-py`` (3x32x32, ``--arch conv``).
"""
import math

from pyro_lvm.data import load_dataset
from pyro_lvm.models import VAE, VAEConfig
from pyro_lvm.models.likelihoods import LIKELIHOODS
from pyro_lvm.objectives import OBJECTIVES, RenyiBound
from pyro_lvm.errors import UsageError
from pyro_lvm.guides import FLOW_UPDATES, GUIDE_FAMILIES
from pyro_lvm.runs.base import bounded_number, nonnegative_int, positive_float, positive_int, register
from pyro_lvm.runs.fitted import FitRunKind, add_data_arguments, add_training_arguments, load_images


@register
class VAERun(FitRunKind):
    name = "vae"
    help = "Gaussian VAE (Pyro model/guide pair)"
    model_class = VAE

    def add_arguments(self, p):
        add_data_arguments(p, "auto (MNIST if found, else the embedded subset)")
        p.add_argument("--binarize", choices=["static", "dynamic"], default=None,
                       help="default: dynamic for a Bernoulli likelihood on grayscale data")
        add_training_arguments(p, sorted(OBJECTIVES), "elbo")
        p.add_argument("--alpha", type=bounded_number(float, lambda v: math.isfinite(v) and v != 1,
                                                      "a finite number other than 1"),
                       default=RenyiBound().alpha, help="Renyi alpha (objective renyi; default %(default)s)")
        p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
        # defaults chosen so the README's main job (100 epochs on the embedded 5000 digits, about
        # 30 s of CPU) draws samples a person reads as digits; one 400-unit tanh layer and 50
        # latents drew scribbles and grey backgrounds at the same budget
        p.add_argument("--latent-dim", type=positive_int, default=16)
        p.add_argument("--hidden", type=positive_int, nargs="+", default=[512, 256], help="MLP hidden widths")
        p.add_argument("--channels", type=positive_int, nargs=2, default=[32, 64], help="conv channels")
        p.add_argument("--activation", default="relu")
        p.add_argument("--likelihood", choices=list(LIKELIHOODS), default="bernoulli",
                       help="bernoulli (binary data); gaussian (a density: bits per dimension only with "
                            "--dequantize); discretized-logistic, logistic-mixture, categorical (8-bit values)")
        p.add_argument("--dequantize", choices=["none", "uniform", "variational"], default="none",
                       help="gaussian likelihood on 8-bit data: u ~ U[0,1)^D, or a learned flow q(u|x) sampled "
                            "with z (Ho et al. 2019); the bound is on the 8-bit log-probability")
        p.add_argument("--mixture-components", type=positive_int, default=VAEConfig.mixture_components,
                       help="components of --likelihood logistic-mixture (default %(default)s)")
        p.add_argument("--gaussian-scale", type=positive_float, default=0.1)
        p.add_argument("--decoder", choices=["mlp", "pixelcnn"], default=VAEConfig.decoder,
                       help="mlp: pixels independent given z (from the --arch net); pixelcnn: a gated PixelCNN "
                            "conditioned on z (binary data only)")
        p.add_argument("--pixelcnn-layers", type=positive_int, default=VAEConfig.pixelcnn_layers,
                       help="gated layers L of the pixelcnn decoder: its field reaches L pixels left and right, "
                            "L + 1 rows up (default %(default)s)")
        p.add_argument("--pixelcnn-channels", type=positive_int, default=VAEConfig.pixelcnn_channels,
                       help="channels of the pixelcnn decoder (default %(default)s)")
        p.add_argument("--guide", choices=list(GUIDE_FAMILIES), default="diag",
                       help="q(z|x): diagonal Normal, full-covariance Normal, or inverse autoregressive flow")
        p.add_argument("--flows", type=nonnegative_int, default=None,
                       help=f"IAF steps (--guide iaf; default {VAEConfig.flows})")
        p.add_argument("--flow-update", choices=list(FLOW_UPDATES), default=None,
                       help=f"IAF update (--guide iaf; default {VAEConfig.flow_update}: Kingma et al. 2016, eq. 14)")

    def settings(self, args):
        settings = super().settings(args)
        settings["data"] = settings["data"] or "auto"
        for option in ("flows", "flow_update"):
            if settings.get(option) is not None and settings.get("guide", "diag") != "iaf":
                raise UsageError(f"--{option.replace('_', '-')} applies to --guide iaf only, not --guide "
                                 f"{settings.get('guide', 'diag')}; drop it or add --guide iaf")
        likelihood, dequantize = settings.get("likelihood", "bernoulli"), settings.get("dequantize", "none")
        if dequantize != "none" and likelihood != "gaussian":
            raise UsageError(f"--dequantize {dequantize} applies to --likelihood gaussian only, not {likelihood} "
                             "(a discrete likelihood needs no dequantization); drop one of them")
        if _eight_bit(settings) and settings.get("binarize") is not None:
            raise UsageError(f"--binarize {settings['binarize']} cannot go with 8-bit pixel values "
                             f"(--likelihood {likelihood}, --dequantize {dequantize}); drop --binarize")
        return settings

    def dataset(self, settings, data_root=None):
        if _eight_bit(settings):
            return load_dataset(settings["data"], root=data_root, seed=settings["seed"], eight_bit=True)
        bernoulli = settings.get("likelihood", "bernoulli") == "bernoulli"
        return load_images(settings, data_root, "dynamic" if bernoulli else None)

    def build_model(self, s, dataset):
        config = VAEConfig(input_shape=dataset.input_shape, latent_dim=s["latent_dim"], arch=s["arch"],
                           hidden=tuple(s["hidden"]), channels=tuple(s["channels"]), activation=s["activation"],
                           likelihood=s["likelihood"], gaussian_scale=s["gaussian_scale"],
                           guide=s.get("guide", "diag"), flows=_or_default(s.get("flows"), VAEConfig.flows),
                           flow_update=s.get("flow_update") or VAEConfig.flow_update,
                           decoder=s.get("decoder", VAEConfig.decoder),
                           pixelcnn_layers=s.get("pixelcnn_layers", VAEConfig.pixelcnn_layers),
                           pixelcnn_channels=s.get("pixelcnn_channels", VAEConfig.pixelcnn_channels),
                           dequantize=s.get("dequantize", "none"),
                           mixture_components=s.get("mixture_components", VAEConfig.mixture_components))
        return VAE(config)


def _eight_bit(settings):
    """Whether the run scores integer pixel values 0..255 (a discrete likelihood or dequantization)."""
    return (LIKELIHOODS[settings.get("likelihood", "bernoulli")].data_kind == "eight_bit"
            or settings.get("dequantize", "none") != "none")


def _or_default(value, default):
    return default if value is None else value
