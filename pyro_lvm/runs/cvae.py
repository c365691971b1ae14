r"""``pyro-lvm train cvae``: the conditional VAE of Sohn et al. (2015), on labels or on quadrants.

``--condition quadrants --given N`` is the masked-quadrant completion task (Sohn et al. 2015,
sec. 4.1; :mod:`pyro_lvm.data.quadrants`): the deterministic baseline network ("NN") is
trained first, then the CVAE (which does not use the baseline); the table gives the negative
conditional log-likelihood of the missing pixels of the test images, in nats per image,

* of the baseline: exact (no latent variable), :math:`-\log p(x_\text{missing}|y)`;
* of the CVAE by importance sampling with the recognition network,
  :math:`-\log \frac1K \sum_k p(x, z_k|y) / q(z_k|x,y)`, :math:`z_k \sim q(z|x,y)`, with its
  Monte Carlo standard error and Pareto :math:`\hat k`;
* of the CVAE by prior sampling, :math:`-\log \frac1K \sum_k p(x|z_k,y)`, :math:`z_k \sim p(z|y)`
  (an estimate with the same expectation of :math:`p`, but a much larger variance, hence a
  larger downward bias of its logarithm at the same K);
* the CVAE's negative ELBO, averaged over 10 draws: what Pyro's CVAE tutorial reports as the
  CVAE's "Monte Carlo" conditional log-likelihood (an upper bound on the negative CLL).

The images are binarized once (``static``: the conditions hold the given pixels), where Pyro's
tutorial fits its Bernoulli likelihood to grayscale pixels. ``--condition label`` trains on
(image, one-hot class) pairs, binarized afresh per batch, and draws ``samples.png`` with one
row per class. The run folder holds ``config.json``, ``checkpoint.pt`` (the CVAE),
``baseline.pt`` (quadrants), ``metrics.json``/``.csv``, ``loss.png``, ``completions.png``
(given part, truth, baseline, completions) or ``samples.png``, and one evaluation file per
setting with the table (also written as ``nll_table.csv``).
"""
import math
import os
import sys

import pyro
import torch

from pyro_lvm.data import TensorLoader
from pyro_lvm.data.quadrants import mask_quadrants, missing_pixels
from pyro_lvm.errors import UsageError
from pyro_lvm.evaluate import log_likelihood
from pyro_lvm.files import write_csv, write_json
from pyro_lvm.models import CVAE, CVAEConfig, DeterministicBaseline
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import plot_history
from pyro_lvm.plots.conditional import save_class_grid, save_completion_grid
from pyro_lvm.runs.base import RunKind, positive_int, register
from pyro_lvm.runs.fitted import (_schedule_options, _uses_kl_control, add_data_arguments, add_training_arguments,
                                  kl_options, load_images, tensorboard_callbacks, write_metrics)
from pyro_lvm.runs.folder import data_description, read_config
from pyro_lvm.runs.saved import load_run
from pyro_lvm.train import evaluate_loss, fit, load_checkpoint, load_modules, make_schedule

BASELINE = "baseline.pt"
#: draws of the negative ELBO reported beside the log-likelihood (as in Pyro's CVAE tutorial)
ELBO_PARTICLES = 10


# ---- the task: data, conditions and models ---------------------------------------------------

def conditions(images, labels, settings):
    """The conditions of a split: masked images (quadrants) or class labels."""
    if settings["condition"] == "quadrants":
        return mask_quadrants(images, settings["given"])
    if labels is None:
        raise UsageError(f"data set {settings['data']!r} has no class labels; --condition label needs "
                         "mnist, fashion-mnist or the embedded digits")
    return labels


def model_config(settings, dataset):
    """The :class:`~pyro_lvm.models.CVAEConfig` a run's settings describe."""
    common = {"latent_dim": settings["latent_dim"], "hidden": tuple(settings["hidden"]),
              "activation": settings["activation"], "prior": settings["prior"]}
    if settings["condition"] == "quadrants":
        return CVAEConfig.quadrants(dataset.input_shape, **common)
    labels = [conditions(None, split, settings) for split in (dataset.train_labels, dataset.test_labels)]
    num_classes = int(max(split.max() for split in labels)) + 1
    return CVAEConfig(input_shape=dataset.input_shape, condition_shape=(num_classes,), **common)


def train_model(model, objective, dataset, settings, checkpoint=None, callbacks=(), test_images=None,
                progress=True):
    """:func:`~pyro_lvm.train.fit` on ``(x, y)`` batches of the run's data; returns the history."""
    s = settings
    train_y = conditions(dataset.train, dataset.train_labels, s)
    test = dataset.test[:test_images]
    test_y = conditions(dataset.test, dataset.test_labels, s)[:test_images]
    train = TensorLoader(dataset.train, s["batch_size"], binarize=dataset.binarize == "dynamic", labels=train_y)
    config = {"run_kind": "cvae", "model": type(model).__name__, "model_config": model.to_config(),
              "data": s["data"], "condition": s["condition"], "given": s.get("given"),
              "objective": s["objective"], "particles": s.get("particles"), "batch_size": s["batch_size"],
              "lr": s["lr"], "lr_schedule": s["lr_schedule"], "gamma": s["gamma"], "seed": s["seed"],
              "train_subset": s.get("train_subset")}
    if getattr(objective, "kl_control", None) is not None:  # --beta etc.; only then, so older runs resume
        config["kl_control"] = repr(objective.kl_control)
    schedule = make_schedule(s["lr_schedule"], **_schedule_options(s["lr_schedule"], s["gamma"], s["epochs"]))
    result = fit(model.model, model.guide, objective, train, TensorLoader(test, 500, shuffle=False, labels=test_y),
                 epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], lr_schedule=schedule, seed=s["seed"],
                 modules={"model": model}, checkpoint=checkpoint, resume=checkpoint is not None, config=config,
                 callbacks=callbacks, progress=progress)
    return result.history


def objective_of(settings, total_steps=1):
    """The CVAE's training objective (the baseline is always fitted by its exact log-likelihood).

    :param int total_steps: the run's training steps, which ``--cyclical``'s cycles span.
    """
    return get_objective(settings["objective"], num_particles=settings.get("particles"), max_plate_nesting=1,
                         **kl_options(settings, total_steps))


# ---- evaluation -------------------------------------------------------------------------------

def evaluate_conditional(cvae, x, y, samples, baseline=None, seed=0, batch_size=None, progress=True):
    """The negative conditional log-likelihood table (nats per datum; see the module docstring).

    :returns: a list of rows with ``model``, ``estimator``, ``nll``, ``se_mc``, ``se_data``,
        ``num_samples`` and ``khat_max``.
    """
    batch_size = batch_size or max(1, min(100, 100000 // samples))
    rows = []

    def row(name, estimator, ll):
        summary = ll.summary()
        rows.append({"model": name, "estimator": estimator, "nll": summary["nll"], "se_mc": summary["se_mc"],
                     "se_data": summary["se_data"], "num_samples": summary["num_samples"],
                     "khat_max": summary["khat_max"], "num_data": summary["num_data"]})

    if baseline is not None:  # two identical weights: the exact value, with a standard error of 0
        row("NN baseline", "exact (no latent variable)",
            log_likelihood(baseline.model, baseline.guide, x, num_samples=2, batch_size=batch_size, seed=seed,
                           progress=False, khat_samples=0, condition=y))
        rows[-1].update(num_samples=None, khat_max=None)
    row("CVAE", "importance sampling, q(z|x,y)",
        log_likelihood(cvae.model, cvae.guide, x, num_samples=samples, batch_size=batch_size, seed=seed,
                       progress=progress, condition=y))
    row("CVAE", "prior sampling, p(z|y)",
        log_likelihood(cvae.model, cvae.prior_guide, x, num_samples=samples, batch_size=batch_size, seed=seed,
                       progress=progress, condition=y))
    loader = TensorLoader(x, batch_size, shuffle=False, labels=y)
    elbo = get_objective("elbo", num_particles=ELBO_PARTICLES)
    rows.append({"model": "CVAE", "estimator": f"-ELBO ({ELBO_PARTICLES} draws; Pyro tutorial's measure)",
                 "nll": evaluate_loss(cvae.model, cvae.guide, elbo, loader, seed), "num_samples": ELBO_PARTICLES,
                 "num_data": len(x)})
    return rows


def format_table(rows):
    """The table as text: one line per estimate, with its standard errors where it has them."""
    def number(v, digits=3):
        return "" if v is None else f"{v:.{digits}f}"

    header = ("model", "estimator", "NLL (nats)", "se MC", "se data", "K", "k-hat max")
    lines = [(r["model"], r["estimator"], number(r["nll"]), number(r.get("se_mc")), number(r.get("se_data")),
              str(r["num_samples"] or ""), number(r.get("khat_max"), 2)) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in [header, *lines])


def save_figures(out, cvae, dataset, settings, baseline=None, images=12, completions=6, name=None):
    """``completions.png`` (quadrants) or ``samples.png`` with one row per class (labels), or ``name``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        if settings["condition"] == "quadrants":
            truth = dataset.test[:images]
            y = mask_quadrants(truth, settings["given"])
            drawn = torch.stack([cvae.sample(y) for _ in range(completions)])
            return save_completion_grid(y, truth, drawn, os.path.join(out, name or "completions.png"),
                                        missing=missing_pixels(y),
                                        baseline=None if baseline is None else baseline.predict(y))
        num_classes, per_class = cvae.config.condition_shape[0], 8
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        samples = cvae.sample(labels).reshape(num_classes, per_class, *cvae.config.input_shape)
        return save_class_grid(samples, os.path.join(out, name or "samples.png"))


@register
class CVAERun(RunKind):
    name = "cvae"
    help = "conditional VAE (Sohn et al. 2015): masked-quadrant completion or label-conditioned samples"
    model_class = CVAE
    defaults = {"epochs": (10, 1)}
    smoke = {"data": "embedded", "eval_samples": 20, "eval_images": 50, "train_subset": 512}

    def add_arguments(self, p):
        add_data_arguments(p, "auto (MNIST if found, else the embedded subset)")
        p.add_argument("--condition", choices=["quadrants", "label"], default="quadrants",
                       help="quadrants: complete digits from 1-3 given quadrants; label: one-hot class")
        p.add_argument("--given", type=int, choices=[1, 2, 3], default=1, help="quadrants given (default 1)")
        add_training_arguments(p, ["elbo", "iwae"], "elbo")
        p.add_argument("--latent-dim", type=positive_int, default=32)
        p.add_argument("--hidden", type=positive_int, nargs="+", default=[500, 500], help="MLP hidden widths")
        p.add_argument("--activation", default="relu")
        p.add_argument("--prior", choices=["learned", "standard"], default="learned",
                       help="learned: the prior network p(z|y); standard: N(0, I)")

    def settings(self, args):
        settings = super().settings(args)
        settings["data"] = settings["data"] or "auto"
        if settings["condition"] == "label":
            settings["given"] = None
        _uses_kl_control(settings)  # KL flags with iwae: refused before a run folder is made
        return settings

    def dataset(self, settings, data_root=None):
        # quadrant conditions hold the given pixels, so the images are binarized once
        return load_images({**settings, "binarize": None}, data_root,
                           "static" if settings["condition"] == "quadrants" else "dynamic")

    # ---- training ---------------------------------------------------------------------
    def train(self, folder, settings, progress=True):
        s = settings
        pyro.set_rng_seed(s["seed"])
        dataset = self.dataset(s, s.get("data_root")).subset(train=s.get("train_subset"))
        config = model_config(s, dataset)
        folder.write_config(s, data_description(dataset), argv=sys.argv[1:])
        baseline = None
        if s["condition"] == "quadrants":  # the baseline first, as in Sohn et al. and Pyro's tutorial
            baseline = DeterministicBaseline(config)
            baseline_history = train_model(baseline, "elbo", dataset, s, folder.file(BASELINE), progress=progress)
            write_json(folder.file("metrics_baseline.json"), baseline_history)
        cvae = CVAE(config)
        steps = s["epochs"] * math.ceil(len(dataset.train) / s["batch_size"])
        history = train_model(cvae, objective_of(s, steps), dataset, s, folder.checkpoint, progress=progress,
                              callbacks=tensorboard_callbacks(s, None, None))
        write_metrics(folder.path, history)
        plot_history(history, folder.file("loss.png"), keys=["train_loss", "test_loss"],
                     ylabel="loss (nats per image)", title="CVAE training curve")
        save_figures(folder.path, cvae, dataset, s, baseline)
        print(f"trained {len(history)} epochs; run folder: {folder.path}")
        evaluation = self._evaluate(folder, cvae, baseline, dataset, s, s.get("eval_samples") or 1000,
                                    s.get("eval_images"), None, progress)
        return {"history": history, "evaluation": evaluation}

    def _evaluate(self, folder, cvae, baseline, dataset, settings, samples, images, batch_size, progress):
        images = min(images or len(dataset.test), len(dataset.test))
        x = dataset.test[:images]
        y = conditions(dataset.test, dataset.test_labels, settings)[:images]
        what = (f"{settings['given']} given quadrant(s), NLL of the missing pixels" if baseline is not None
                else "label condition, NLL of the whole image")
        print(f"evaluation: {what}; K={samples} on {images} test images", flush=True)
        rows = evaluate_conditional(cvae, x, y, samples, baseline, seed=settings["seed"], batch_size=batch_size,
                                    progress=progress)
        print(format_table(rows), flush=True)
        evaluation = {"condition": settings["condition"], "given": settings.get("given"), "num_samples": samples,
                      "num_data": images, "data": dataset.source, "seed": settings["seed"], "rows": rows}
        path = folder.evaluation_path(dataset.name, K=samples, images=images, seed=settings["seed"])
        write_json(path, evaluation)
        write_csv(folder.file("nll_table.csv"), rows)
        evaluation["file"] = path
        return evaluation

    # ---- evaluation of a finished run -------------------------------------------------
    def evaluate(self, folder, options, progress=True):
        cvae, state = load_run(options.get("checkpoint") or folder.checkpoint)
        settings = dict((read_config(folder.path) or {}).get("settings") or {})
        if not settings:
            raise UsageError(f"{folder.path} has no config.json saying how the CVAE was trained; evaluate the "
                             "--out folder of a pyro-lvm train cvae run")
        if options.get("data"):
            settings["data"] = options["data"]
        dataset = self.dataset(settings, options.get("data_root"))
        baseline = None
        if settings["condition"] == "quadrants" and os.path.exists(folder.file(BASELINE)):
            baseline = DeterministicBaseline(cvae.config)
            load_modules({"model": baseline}, load_checkpoint(folder.file(BASELINE)), folder.file(BASELINE))
            baseline.eval()
        return self._evaluate(folder, cvae, baseline, dataset, settings, options.get("samples") or 1000,
                              options.get("images"), options.get("batch_size"), progress)
