"""Run folders: train a model into ``RUN_DIR`` and evaluate it later from there alone.

A run folder holds ``checkpoint.pt`` (everything to resume or rebuild the model),
``metrics.json`` and ``metrics.csv`` (one row per epoch), ``evaluation.json`` and PNGs
(``samples.png``, ``reconstructions.png``, ``loss.png``). This module is what the ``pyro-lvm``
command runs; the library pieces it composes are usable on their own (see ``examples/vae.py``).
"""
import csv
import os
import time

import pyro
import torch

from pyro_lvm.data import load_dataset
from pyro_lvm.errors import CheckpointError
from pyro_lvm.files import write_json as _write_json
from pyro_lvm.evaluate import elbo_terms, log_likelihood
from pyro_lvm.models import VAE, VAEConfig
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import plot_history, save_image_grid
from pyro_lvm.train import fit, load_checkpoint, load_modules, make_schedule

CHECKPOINT = "checkpoint.pt"


def vae_config_from_options(options):
    """A :class:`VAEConfig` from command-line style options (unknown keys are ignored)."""
    fields = VAEConfig.__dataclass_fields__
    return VAEConfig.from_dict({k: v for k, v in options.items() if k in fields and v is not None})


def _objective(config):
    """The run's objective; ``particles=None`` takes the objective's own default (5 for iwae/renyi)."""
    kwargs = {"num_particles": config["particles"], "max_plate_nesting": 1}
    if config["objective"] == "renyi":
        kwargs["alpha"] = config["alpha"]
    return get_objective(config["objective"], **kwargs)


def _dataset(config, data_root=None):
    return load_dataset(config["data"], root=data_root, binarize=config["binarize"], seed=config["seed"])


def train_vae(out, data="auto", data_root=None, binarize=None, objective="elbo", particles=None, alpha=0.5,
              epochs=10, batch_size=128, lr=1e-3, lr_schedule="constant", gamma=1.0, seed=0,
              eval_samples=1000, eval_images=None, progress=True, train_subset=None, **model_options):
    """Train a VAE into the run folder ``out`` (resuming if it holds a checkpoint) and evaluate it.

    :param str data: ``mnist``, ``fashion-mnist``, ``binarized-mnist``, ``embedded`` or ``auto``.
    :param str binarize: ``None``, ``static`` or ``dynamic``; default ``dynamic`` for a Bernoulli
        likelihood on grayscale data.
    :param model_options: :class:`~pyro_lvm.models.VAEConfig` fields (``latent_dim``, ``hidden``,
        ``arch``, ``likelihood``, ...).
    :returns: dict with the per-epoch ``history`` and the final ``evaluation``.
    """
    pyro.set_rng_seed(seed)
    model_config = vae_config_from_options(model_options)
    if binarize is None and model_config.likelihood == "bernoulli" and data != "binarized-mnist":
        binarize = "dynamic"
    config = {"model": "vae", "model_config": model_config.to_dict(), "data": data, "binarize": binarize,
              "objective": objective, "particles": particles, "alpha": alpha, "batch_size": batch_size,
              "lr": lr, "lr_schedule": lr_schedule, "gamma": gamma, "seed": seed, "train_subset": train_subset}
    dataset = _dataset(config, data_root)
    config["data"] = dataset.name  # "auto" resolved, so evaluation and resume see the same data
    model_config.input_shape = dataset.input_shape
    config["model_config"] = model_config.to_dict()
    objective = _objective(config)
    config["particles"] = objective.num_particles
    vae = VAE(model_config)
    train_loader = dataset.train_loader(batch_size)
    if train_subset:
        train_loader.data = train_loader.data[:train_subset]
    os.makedirs(out, exist_ok=True)
    result = fit(vae.model, vae.guide, objective, train_loader, dataset.test, epochs=epochs,
                 batch_size=batch_size, lr=lr, lr_schedule=make_schedule(lr_schedule, **_schedule_options(
                     lr_schedule, gamma, epochs)),
                 seed=seed, modules={"vae": vae}, checkpoint=os.path.join(out, CHECKPOINT), resume=True,
                 config=config, progress=progress)
    write_metrics(out, result.history)
    write_figures(out, vae, dataset.test, result.history)
    evaluation = evaluate_model(vae, dataset.test[:eval_images] if eval_images else dataset.test, eval_samples,
                                seed=seed, progress=progress)
    evaluation["data"] = dataset.source
    _write_json(os.path.join(out, "evaluation.json"), evaluation)
    return {"history": result.history, "evaluation": evaluation, "config": config}


def _schedule_options(name, gamma, epochs):
    if name == "exponential":
        return {"gamma": gamma}
    if name == "burda":  # the paper's 3^i-epoch stages, scaled to fit the requested epochs
        return {"epoch_scale": epochs / 3280}
    return {}


def load_run(run_dir):
    """Rebuild the trained model of a run folder: ``(vae, config, checkpoint_state)``."""
    path = os.path.join(run_dir, CHECKPOINT)
    state = load_checkpoint(path)
    config = state.get("config") or {}
    if config.get("model") != "vae":
        raise CheckpointError(f"{path} holds a {config.get('model')!r} run; this loader rebuilds 'vae' runs")
    try:
        vae = VAE(VAEConfig.from_dict(config["model_config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} has an unusable model config: {e}") from e
    load_modules({"vae": vae}, state, path)
    vae.eval()
    return vae, config, state


def evaluate_run(run_dir, samples=5000, batch_size=None, images=None, data_root=None, progress=True):
    """Evaluate a run folder's model on its test set; writes ``evaluation.json``."""
    vae, config, _ = load_run(run_dir)
    dataset = _dataset(config, data_root)
    test = dataset.test[:images] if images else dataset.test
    evaluation = evaluate_model(vae, test, samples, batch_size=batch_size, seed=config["seed"], progress=progress)
    evaluation["data"] = dataset.source
    _write_json(os.path.join(run_dir, "evaluation.json"), evaluation)
    return evaluation


def evaluate_model(vae, test, samples, batch_size=None, seed=0, progress=True):
    """Importance-sampled log-likelihood (with standard errors) and the ELBO's two terms."""
    start = time.perf_counter()
    batch_size = batch_size or max(1, min(100, 100000 // samples))
    ll = log_likelihood(vae.model, vae.guide, test, num_samples=samples, batch_size=batch_size, seed=seed,
                        progress=progress)
    evaluation = ll.summary()
    evaluation.update(elbo_terms(vae.model, vae.guide, test, num_samples=1, seed=seed))
    evaluation["seconds"] = time.perf_counter() - start
    return evaluation


def format_evaluation(evaluation):
    """The log-likelihood table as text."""
    rows = [
        (f"log p(x), importance sampled (K={evaluation['num_samples']})",
         f"{evaluation['log_likelihood']:.3f} nats"),
        ("  standard error, Monte Carlo", f"{evaluation['se_mc']:.3f}"),
        ("  standard error, over test data", f"{evaluation['se_data']:.3f}"),
        ("  bits per dimension", f"{evaluation['bits_per_dim']:.4f}"),
        ("ELBO", f"{evaluation['elbo']:.3f} nats"),
        ("  reconstruction E_q[log p(x|z)]", f"{evaluation['reconstruction']:.3f}"),
        ("  KL(q(z|x) || p(z))", f"{evaluation['kl']:.3f}"),
        ("test images", f"{evaluation['num_data']}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def write_metrics(out, history):
    """``metrics.json`` and ``metrics.csv``, one row per epoch."""
    _write_json(os.path.join(out, "metrics.json"), history)
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def write_figures(out, vae, test, history, num_images=64):
    """``samples.png``, ``reconstructions.png`` (originals above reconstructions) and ``loss.png``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_image_grid(vae.sample(num_images), os.path.join(out, "samples.png"), nrow=8, title="samples")
    originals = test[:32]
    pairs = torch.cat([originals, vae.reconstruct(originals)])
    save_image_grid(pairs, os.path.join(out, "reconstructions.png"), nrow=8,
                    title="test images (top 4 rows) and reconstructions (bottom 4 rows)")
    if history:
        plot_history(history, os.path.join(out, "loss.png"), keys=["train_loss", "test_loss"],
                     ylabel="loss (nats per image)", title="training curve")
