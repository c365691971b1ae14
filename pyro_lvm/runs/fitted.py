"""What the run kinds of amortized model/guide pairs trained by :func:`~pyro_lvm.train.fit` share.

A :class:`FitRunKind` (the ``vae`` and ``sbn`` kinds) trains ``model.model``/``model.guide``
into a run folder holding ``config.json``, ``checkpoint.pt`` (resumable bit for bit),
``metrics.json``/``metrics.csv``, ``samples.png``, ``reconstructions.png``, ``loss.png``,
``scatter.png`` (and, for a continuous prior, ``manifold.png`` and ``interpolation.png``) and one
``evaluation_{data}_K{K}_images{N}_seed{S}.json`` per data set and evaluation setting. The final evaluation is sized
to the run: unless ``--eval-samples``/``--eval-images`` ask for more, it is planned from a short
timed pilot (grown, up to 100 images x 100 samples, only while within 2% of it) to take about a quarter
of the training time (at least 15 s), and it says its K, image count and expected time before it
starts.
"""
import math
import os
import sys
import time

import pyro
import torch

from pyro_lvm import distributed
from pyro_lvm.data import load_dataset
from pyro_lvm.errors import UsageError
from pyro_lvm.evaluate import DiagnosticsCallback, elbo_terms, log_likelihood
from pyro_lvm.evaluate.psis import MIN_DRAWS, pareto_khat
from pyro_lvm.files import write_csv, write_json
from pyro_lvm.objectives import OBJECTIVES, Cyclical, LinearWarmup, get_objective
from pyro_lvm.objectives.kl_control import KLControlled
from pyro_lvm.runs.base import RunKind, bounded_number, positive_float, positive_int
from pyro_lvm.runs.folder import data_description, read_config
from pyro_lvm.runs.saved import load_run
from pyro_lvm.train import fit, load_checkpoint, make_schedule
from pyro_lvm.train.checkpoint import check_config

#: the final evaluation's share of the training time, and its floor in seconds
EVAL_SHARE, EVAL_FLOOR = 0.25, 15.0
#: test images whose collapse diagnostics (:mod:`pyro_lvm.evaluate.diagnostics`) each epoch records
DIAGNOSTIC_IMAGES = 500
FULL_PROTOCOL_SAMPLES = 5000
#: the evaluation planner's timed pilot: (images, samples) per stage, grown while within PILOT_SHARE
#: of the evaluation's expected time
PILOT_STAGES, PILOT_SHARE = ((4, 4), (10, 10), (32, 32), (100, 100)), 0.02
nonnegative_float = bounded_number(float, lambda v: 0 <= v < math.inf, "a non-negative number")
KL_FLAGS = "--beta, --warmup-steps, --cyclical and --free-bits"


def add_data_arguments(parser, default_help):
    parser.add_argument("--data", default=None,
                        help=f"mnist, fashion-mnist, binarized-mnist, embedded, auto, or a file of your own "
                             f"tensors (.npy, .npz with train/test arrays, .pt); default: {default_help}")
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw etc. (default: $PYRO_LVM_DATA)")


def add_training_arguments(parser, objectives, default_objective):
    parser.add_argument("--objective", choices=objectives, default=default_objective)
    parser.add_argument("--particles", type=positive_int, default=None,
                        help="samples per datum K (default: 1 for elbo/meanfield/tracegraph, 5 for iwae/renyi)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default 10 (1 with --smoke)")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--lr", type=positive_float, default=1e-3)
    parser.add_argument("--lr-schedule", choices=["constant", "exponential", "burda"], default="constant",
                        help="burda: Burda et al.'s 3^i-epoch stages (lr 1e-3 * 10^(-i/7)) scaled to --epochs")
    parser.add_argument("--gamma", type=positive_float, default=1.0,
                        help="per-epoch decay of the exponential schedule")
    kl = parser.add_argument_group("KL control (objectives elbo, meanfield, tracegraph; per training step)")
    kl.add_argument("--beta", type=nonnegative_float, default=None,
                    help="KL weight beta (default 1); with --warmup-steps or --cyclical the value it rises to")
    schedule = kl.add_mutually_exclusive_group()
    schedule.add_argument("--warmup-steps", type=positive_int, default=None, metavar="N",
                          help="raise beta linearly from 0 over the first N training steps (Bowman et al. 2016)")
    schedule.add_argument("--cyclical", type=positive_int, default=None, metavar="M",
                          help="M cycles over the run's training steps, beta rising from 0 over the first half "
                               "of each (Fu et al. 2019)")
    kl.add_argument("--free-bits", type=nonnegative_float, default=None, metavar="LAMBDA",
                    help="floor each latent dimension's minibatch-mean KL at LAMBDA nats (Kingma et al. 2016)")
    parser.add_argument("--train-subset", type=positive_int, default=None, help="train on the first N images")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="log scalars per step and epoch and image grids per epoch to TensorBoard in DIR "
                             "(pip install -e \".[tensorboard]\")")
    parser.add_argument("--eval-samples", type=positive_int, default=None,
                        help="K of the final test log-likelihood (default: planned to fit the run, at most 1000)")
    parser.add_argument("--eval-images", type=positive_int, default=None,
                        help="evaluate on the first N test images (default: as many as fit the run)")


def kl_options(settings, total_steps):
    """``beta``/``free_bits`` for :func:`~pyro_lvm.objectives.get_objective` from the KL flags (none: ``{}``).

    :param int total_steps: the run's training steps (the span of ``--cyclical``'s cycles).
    :raises UsageError: for KL flags with an objective that takes none (``iwae``, ``renyi``).
    """
    if not _uses_kl_control(settings):
        return {}
    beta, warmup, cycles, free_bits = (settings.get(k) for k in ("beta", "warmup_steps", "cyclical", "free_bits"))
    top = 1.0 if beta is None else beta
    if warmup is not None:
        return {"beta": LinearWarmup(warmup, beta0=0.0, beta1=top), "free_bits": free_bits}
    if cycles is not None:
        if cycles > total_steps:
            raise UsageError(f"--cyclical {cycles} needs at least {cycles} training steps, the run has "
                             f"{total_steps}; use fewer cycles or more epochs")
        return {"beta": Cyclical(total_steps, cycles, beta1=top), "free_bits": free_bits}
    return {"beta": top, "free_bits": free_bits}


def _uses_kl_control(settings):
    """Whether any KL flag is given; a :class:`UsageError` if the objective takes none."""
    if all(settings.get(k) is None for k in ("beta", "warmup_steps", "cyclical", "free_bits")):
        return False
    if not issubclass(OBJECTIVES[settings["objective"]], KLControlled):
        raise UsageError(f"{KL_FLAGS} apply to objectives elbo, meanfield and tracegraph, not "
                         f"{settings['objective']!r}: inside an importance-weighted bound they leave no bound on "
                         "log p(x)")
    return True


def _schedule_options(name, gamma, epochs):
    if name == "exponential":
        return {"gamma": gamma}
    if name == "burda":  # the paper's 3^i-epoch stages, scaled to fit the requested epochs
        return {"epoch_scale": epochs / 3280}
    return {}


def evaluate_model(model, test, samples, batch_size=None, seed=0, progress=True):
    """Importance-sampled log-likelihood (with standard errors) and the ELBO's two terms."""
    start = time.perf_counter()
    batch_size = batch_size or max(1, min(100, 100000 // samples))
    ll = log_likelihood(model.model, model.guide, test, num_samples=samples, batch_size=batch_size, seed=seed,
                        progress=progress)
    evaluation = ll.summary()
    evaluation.update(elbo_terms(model.model, model.guide, test, num_samples=1, seed=seed))
    evaluation["seconds"] = time.perf_counter() - start
    return evaluation


def format_evaluation(evaluation):
    """The log-likelihood table as text, with the Pareto k-hat of the importance weights."""
    khat = []  # evaluations written before k-hat was reported have none
    if not math.isnan(evaluation.get("khat_max", math.nan)):
        unreliable = evaluation["unreliable"]
        khat = [("  Pareto k-hat, max (mean)", f"{evaluation['khat_max']:.2f} ({evaluation['khat_mean']:.2f})"),
                ("  unreliable: k-hat > 0.7", f"{unreliable} of {evaluation['num_data']}" + (
                    ", whose standard errors understate the error" if unreliable else ""))]
    elif "khat_max" in evaluation:
        khat = [("  Pareto k-hat", "not estimated (too few draws in the tail: K < 21, or tied weights)")]
    density = evaluation.get("log_p_kind") == "density"  # never negative "bits" as a result
    rows = [
        (f"log {'density' if density else 'p(x)'}, importance sampled (K={evaluation['num_samples']})",
         f"{evaluation['log_likelihood']:.3f} nats"),
        ("  standard error, Monte Carlo", f"{evaluation['se_mc']:.3f}"),
        ("  standard error, over test data", f"{evaluation['se_data']:.3f}"),
        ("  bits per dimension", "none: a density of undequantized data, not a probability (use --dequantize "
                                 "or a discrete likelihood)" if density else f"{evaluation['bits_per_dim']:.4f}"),
        *khat,
        ("ELBO", f"{evaluation['elbo']:.3f} nats"),
        ("  reconstruction E_q[log p(x|z)]", f"{evaluation['reconstruction']:.3f}"),
        *_kl_rows(evaluation),
        ("test images", f"{evaluation['num_data']}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _kl_rows(evaluation):
    """The KL row of the table; with a dequantization noise site ``u``, its term on a row of its own."""
    by_site = evaluation.get("kl_by_site") or {}  # evaluations written before kl_by_site have only the sum
    if set(by_site) <= {"z"}:
        return [("  KL(q(z|x) || p(z))", f"{evaluation['kl']:.3f}")]
    rows = [(f"  KL(q({name}|x) || p({name}))", f"{value:.3f}") for name, value in by_site.items() if name != "u"]
    if "u" in by_site:
        rows.append(("  E_q[log q(u|x)], dequantization noise", f"{by_site['u']:.3f}"))
    return rows


def _seconds_per_sample(model, test, seed, limit):
    """Seconds per (image x importance sample), from a short timed pilot that grows while it is cheap.

    The pilot scores the first ``images`` test images with ``samples`` samples each, in one call,
    for each stage of :data:`PILOT_STAGES` in turn; the next stage runs only if the time spent
    so far plus its predicted time stays within :data:`PILOT_SHARE` of ``limit(cost)``, the
    evaluation's expected seconds at the current estimate. The largest stage run gives the
    estimate: a fast model reaches 100 x 100, where the per-call overhead of tracing weighs
    about as little as in the evaluation itself (which draws thousands per call); a slow one
    (a PixelCNN decoder) stops early, where that overhead is negligible anyway.
    """
    pareto_khat(torch.linspace(0, 1, MIN_DRAWS)[:, None])  # ArviZ's import (seconds, once) is no per-sample cost
    spent, cost = 0.0, None
    for images, samples in PILOT_STAGES:
        images = min(len(test), images)
        if cost is not None and spent + cost * images * samples > PILOT_SHARE * limit(cost):
            break
        start = time.perf_counter()
        log_likelihood(model.model, model.guide, test[:images], num_samples=samples, batch_size=images, seed=seed,
                       progress=False)
        seconds = time.perf_counter() - start
        spent, cost = spent + seconds, seconds / (images * samples)
    return cost


def _plan(cost, n, samples, images, budget):
    """``(K, images)`` for ``budget`` seconds at ``cost`` seconds per sample (see :func:`plan_evaluation`)."""
    if samples is None:
        fit_images = images or min(n, 500)
        samples = int(max(100, min(1000, budget / (cost * fit_images))))
    if images is None:
        images = int(min(n, max(min(n, 100), budget / (cost * samples))))
    return samples, min(images, n)


def plan_evaluation(model, test, samples, images, budget, seed=0):
    """Choose K and the number of test images for an evaluation of about ``budget`` seconds.

    What the caller asked for (``samples``, ``images``, ``None`` where not) is kept; the rest is
    chosen: K = 1000 (fewer, down to 100, before fewer than 500 images), then as many images as fit.
    The cost per sample comes from a timed pilot kept within :data:`PILOT_SHARE` of the
    evaluation's expected time (see :func:`_seconds_per_sample`).

    :returns: ``(K, images, expected seconds, seconds of the full protocol)``.
    """
    n = len(test)

    def expected(cost):
        planned_samples, planned_images = _plan(cost, n, samples, images, budget)
        return min(budget, cost * planned_samples * planned_images)

    cost = _seconds_per_sample(model, test, seed, expected)
    samples, images = _plan(cost, n, samples, images, budget)
    return samples, images, cost * samples * images, cost * FULL_PROTOCOL_SAMPLES * n


class FitRunKind(RunKind):
    """A run kind whose model is an ``nn.Module`` with ``model``/``guide``/``sample``/``reconstruct``.

    Subclasses set :attr:`model_class` and implement :meth:`build_model` and :meth:`dataset`.
    """

    model_class = None
    defaults = {"epochs": (10, 1)}
    smoke = {"data": "embedded", "eval_samples": 20, "eval_images": 50, "train_subset": 512}

    # ---- to be provided by each kind --------------------------------------------------
    def build_model(self, settings, dataset):
        raise NotImplementedError

    def dataset(self, settings, data_root=None):
        raise NotImplementedError

    def objective(self, settings, total_steps=1):
        kwargs = {"num_particles": settings["particles"], "max_plate_nesting": 1,
                  **kl_options(settings, total_steps)}
        if settings["objective"] == "renyi":
            kwargs["alpha"] = settings["alpha"]
        return get_objective(settings["objective"], **kwargs)

    def settings(self, args):
        settings = super().settings(args)
        _uses_kl_control(settings)  # refuse KL flags with iwae/renyi before a run folder is made
        return settings

    # ---- training ---------------------------------------------------------------------
    def train(self, folder, settings, progress=True):
        s = settings
        pyro.set_rng_seed(s["seed"])
        dataset = self.dataset(s, s.get("data_root")).subset(train=s.get("train_subset"))
        model = self.build_model(s, dataset)
        train_loader = dataset.train_loader(s["batch_size"])
        objective = self.objective(s, s["epochs"] * len(train_loader))
        # what must match to resume: everything that changes the result, not the epoch count
        config = {"run_kind": self.name, "model_config": model.to_config(), "data": _data_reference(s["data"], dataset),
                  "binarize": dataset.binarize or "none", "objective": s["objective"],
                  "particles": objective.num_particles, "alpha": s.get("alpha"),
                  "batch_size": s["batch_size"], "lr": s["lr"], "lr_schedule": s["lr_schedule"],
                  "gamma": s["gamma"], "seed": s["seed"], "train_subset": s.get("train_subset")}
        if getattr(objective, "kl_control", None) is not None:  # only then: older runs resume as before
            config["kl_control"] = repr(objective.kl_control)
        if os.path.exists(folder.checkpoint):  # refuse a resume with other settings before touching anything
            check_config(load_checkpoint(folder.checkpoint), config, folder.checkpoint)
        main = distributed.is_main()  # under torchrun only rank 0 writes into the run folder
        if main:
            folder.write_config(s, data_description(dataset), argv=sys.argv[1:])
        schedule = make_schedule(s["lr_schedule"], **_schedule_options(s["lr_schedule"], s["gamma"], s["epochs"]))
        result = fit(model.model, model.guide, objective, train_loader, dataset.test, epochs=s["epochs"],
                     batch_size=s["batch_size"], lr=s["lr"], lr_schedule=schedule, seed=s["seed"],
                     modules={"model": model}, checkpoint=folder.checkpoint, resume=True, config=config,
                     device=s.get("device"), precision=s.get("precision") or "fp32",
                     progress=progress, callbacks=[diagnostics_callback(model, dataset.test),
                                                   *tensorboard_callbacks(s, model, dataset.test)])
        if not main:  # rank 0 evaluates and draws (on one process: the plan is timed on it)
            return {"history": result.history, "evaluation": None, "config": config}
        write_metrics(folder.path, result.history)
        dataset.test = dataset.test.to(next(model.parameters()).device)  # evaluated where the model is
        write_figures(folder.path, model, dataset.test, result.history, labels=dataset.test_labels)
        print(f"trained {result.state.epoch} epochs; run folder: {folder.path}")
        budget = max(EVAL_FLOOR, EVAL_SHARE * result.state.train_seconds)
        evaluation = self._evaluate(folder, model, dataset, s.get("eval_samples"), s.get("eval_images"), budget,
                                    s["seed"], None, progress, "final evaluation")
        return {"history": result.history, "evaluation": evaluation, "config": config}

    def _evaluate(self, folder, model, dataset, samples, images, budget, seed, batch_size, progress, what):
        samples, images, expected, full = plan_evaluation(model, dataset.test, samples, images, budget, seed)
        print(f"{what}: K={samples} importance samples per image on {images} of {len(dataset.test)} test images, "
              f"about {_duration(expected)}" + (
                  "" if samples >= FULL_PROTOCOL_SAMPLES and images == len(dataset.test) else
                  f" (the full protocol, --eval-samples {FULL_PROTOCOL_SAMPLES} on all {len(dataset.test)} images, "
                  f"takes about {_duration(full)})"), flush=True)
        evaluation = evaluate_model(model, dataset.test[:images], samples, batch_size=batch_size, seed=seed,
                                    progress=progress)
        evaluation["data"] = dataset.source
        evaluation["seed"] = seed
        print(format_evaluation(evaluation), flush=True)
        path = folder.evaluation_path(dataset.name, K=samples, images=images, seed=seed)
        write_json(path, evaluation)
        evaluation["file"] = path
        return evaluation

    # ---- evaluation of a finished run -------------------------------------------------
    def evaluate(self, folder, options, progress=True):
        model, state = load_run(options.get("checkpoint") or folder.checkpoint)
        dataset = self.saved_dataset(folder.path, model, state, options.get("data"), options.get("data_root"))
        samples = options.get("samples") or FULL_PROTOCOL_SAMPLES
        images = min(options.get("images") or len(dataset.test), len(dataset.test))
        return self._evaluate(folder, model, dataset, samples, images, math.inf, _seed(state),
                              options.get("batch_size"), progress, "evaluation")

    def saved_dataset(self, run_dir, model, state, data=None, data_root=None):
        """The data set a finished run was trained on (or ``data``), binarized as it was.

        :param state: the run's checkpoint state (its ``config`` names the data and binarization).
        """
        config = state.get("config") or {}
        data = data or config.get("data")
        if data is None:
            raise UsageError(f"{run_dir} does not say which data it was trained on; pass --data")
        # the run's own settings (its likelihood decides the default binarization), then its data
        settings = {**((read_config(run_dir) or {}).get("settings") or {}), **model.to_config(),
                    "data": data, "binarize": config.get("binarize"), "seed": _seed(state)}
        return self.dataset(settings, data_root)


def _seed(state):
    return (state.get("config") or {}).get("seed", 0)


def _data_reference(requested, dataset):
    """How a later evaluation finds the data again: ``auto`` resolved, a file of one's own by its full path."""
    if requested == "auto":
        return dataset.name
    return os.path.abspath(requested) if os.path.isfile(requested) else requested


def _duration(seconds):
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def load_images(settings, data_root, default_binarize):
    """The data set a run asked for, binarized for a Bernoulli likelihood where needed."""
    binarize = settings.get("binarize")
    if binarize is None:
        binarize = default_binarize
    return load_dataset(settings["data"], root=data_root, binarize=binarize, seed=settings["seed"])


def diagnostics_callback(model, test):
    """Collapse diagnostics of the first :data:`DIAGNOSTIC_IMAGES` test images in every epoch's record."""
    return DiagnosticsCallback(model.model, model.guide, test[:DIAGNOSTIC_IMAGES], modules=[model],
                               site=getattr(model, "latent_site", "z"))


def tensorboard_callbacks(settings, model, test):
    """A :class:`~pyro_lvm.train.tensorboard.TensorBoardCallback` where ``--tensorboard DIR`` asks
    for one (on the process that writes files), else none."""
    if not settings.get("tensorboard") or not distributed.is_main():
        return []
    from pyro_lvm.train.tensorboard import TensorBoardCallback

    return [TensorBoardCallback(settings["tensorboard"], model=model, test=test, seed=settings["seed"])]


def write_metrics(out, history):
    """``metrics.json`` and ``metrics.csv``, one row per epoch (the CSV keeps the numbers, not lists
    such as ``kl_per_dim``)."""
    write_json(os.path.join(out, "metrics.json"), history)
    write_csv(os.path.join(out, "metrics.csv"),
              [{k: v for k, v in row.items() if not isinstance(v, (list, tuple, dict))} for row in history])


def write_figures(out, model, test, history, labels=None):
    """The figures of :data:`~pyro_lvm.runs.plot.TRAINING_FIGURES` that make sense for ``model``:
    ``samples.png``, ``reconstructions.png`` (each test image beside its reconstruction),
    ``loss.png``, ``scatter.png`` and, for a continuous prior, ``manifold.png`` and ``interpolation.png``."""
    from pyro_lvm.runs.plot import TRAINING_FIGURES, draw_figure, figures_for

    sensible = figures_for(model, test[:1])
    if getattr(getattr(model, "config", None), "decoder", None) == "pixelcnn":
        # each decoded image is an autoregressive draw (~0.1 s): 30 s for these two; pyro-lvm plot draws them
        sensible = tuple(f for f in sensible if f not in ("manifold", "interpolation"))
    for figure in TRAINING_FIGURES:
        if figure in sensible and (figure != "loss" or history):
            draw_figure(figure, out, model, test[:1000], labels, history)
