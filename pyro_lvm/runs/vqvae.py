"""``pyro-lvm train vqvae``: a VQ-VAE with its PixelCNN prior over codes (:mod:`pyro_lvm.vqvae`).

A run folder (``--out``) ends up holding:

- ``config.json``: the run kind, every setting, the data set and its size, the versions;
- ``metrics.json``: ``{"vqvae": [...], "prior": [...]}``, one row per epoch, rewritten after
  every epoch;
- ``checkpoint.pt``: model, prior and metadata (see :mod:`pyro_lvm.vqvae.checkpoint`), rewritten
  after every epoch;
- ``evaluation_{data}_images{N}_seed{S}.json``: the test metrics on N test images, from training or
  from ``pyro-lvm evaluate`` (each setting its own file);
- ``reconstructions.png``, ``samples.png`` (decoded prior samples), ``codebook_usage.png`` (code
  counts over the last training epoch and over the test set) and ``loss.png`` (reconstruction
  error per epoch).

Running the same command again with the same ``--out`` continues the run from its checkpoint.
The prior trains for as many epochs as the autoencoder unless ``--prior-epochs`` says otherwise.

``--device`` (auto, cpu, cuda, cuda:N) places the model, the prior and the images (moved once);
``--precision bf16`` runs the encoder, decoder and PixelCNN under bfloat16 autocast with the
quantizers and losses in float32 (:func:`~pyro_lvm.vqvae.train.fit_vqvae`). Under ``torchrun``
(the command line joins the process group, each process on ``cuda:LOCAL_RANK`` or the CPU) each
process trains on its share of every global batch of ``--batch-size`` images or code maps, the
gradients and codebook statistics are all-reduced so every process holds the same model
(:mod:`pyro_lvm.vqvae.distributed`), the per-epoch test metrics are computed by every process on
the whole test set, and rank 0 alone holds the folder's lock and writes the checkpoint, metrics,
figures and evaluation. The checkpoint keeps the random states of every process
(:func:`pyro_lvm.train.checkpoint.rng_state`, as ``fit`` does); a run resumes exactly with the
same number of processes and on the same device type, and refuses another number of processes.
"""
import argparse
import os
import time

import torch

from pyro_lvm import distributed
from pyro_lvm.device import resolve_device
from pyro_lvm.errors import CheckpointError, UsageError
from pyro_lvm.files import write_json as _write_json
from pyro_lvm.plots import plot_history
from pyro_lvm.runs.base import RunKind, nonnegative_float, nonnegative_int, positive_float, positive_int, register
from pyro_lvm.runs.folder import data_description, evaluation_name
from pyro_lvm.train.checkpoint import check_processes, rng_state, set_rng_state
from pyro_lvm.vqvae.checkpoint import load_checkpoint, save_checkpoint
from pyro_lvm.vqvae.datasets import load_images
from pyro_lvm.vqvae.evaluate import (bits_per_dim, evaluate_reconstruction, fit_decoder_scale,
                                     level_prefixes, prior_nll)
from pyro_lvm.vqvae.figures import plot_codebook_usage, save_prior_samples, save_reconstructions
from pyro_lvm.vqvae.health import CodebookUsage
from pyro_lvm.vqvae.model import QUANTIZERS, VQVAE, VQVAEConfig
from pyro_lvm.vqvae.prior import CodePrior
from pyro_lvm.vqvae.quantizer import REPLACEMENTS
from pyro_lvm.vqvae.train import encode_dataset, fit_prior, fit_vqvae


def _evaluation_name(settings, data):
    return evaluation_name(data.name, images=settings.get("test_subset") or "all", seed=settings["seed"])


def format_summary(summary):
    """The test metrics as a two-column table."""
    keys = [k for k in ("test_mse", "test_codes_used", "test_perplexity", "test_dead_codes",
                        "prior_test_bits_per_code", "bits_per_dim_bound") if summary.get(k) is not None]
    width = max(len(k) for k in keys)
    return "\n".join(f"{k.ljust(width)}  {summary[k]:.6g}" if isinstance(summary[k], float) else
                     f"{k.ljust(width)}  {summary[k]}" for k in keys)


@register
class VQVAERun(RunKind):
    name = "vqvae"
    help = "VQ-VAE in plain torch with a PixelCNN prior"
    smoke = dict(data="embedded", train_subset=256, test_subset=128, epochs=1, prior_epochs=1, batch_size=64,
                 num_samples=8, codebook_size=64, hidden_channels=32, prior_channels=16, prior_layers=2)
    defaults = {"epochs": (10, 1)}

    def add_arguments(self, parser):
        data = parser.add_argument_group("data")
        data.add_argument("--data", default=None,
                          help="mnist, fashion-mnist, binarized-mnist, embedded, auto (MNIST if found, else the "
                               "embedded subset), synthetic, or a file of your own tensors (.npy, .npz, .pt)")
        data.add_argument("--data-root", default=None,
                          help="data folder (default: the data layer's, or $PYRO_LVM_DATA)")
        data.add_argument("--train-subset", type=positive_int, default=None, help="keep the first N training images")
        data.add_argument("--test-subset", type=positive_int, default=None, help="keep the first N test images")

        model = parser.add_argument_group("model")
        model.add_argument("--codebook-size", type=positive_int, default=512, help="codes K per level")
        model.add_argument("--embedding-dim", type=positive_int, default=16, help="code dimension D")
        model.add_argument("--hidden-channels", type=positive_int, default=64)
        model.add_argument("--residual-channels", type=positive_int, default=32)
        model.add_argument("--residual-layers", type=nonnegative_int, default=2)
        model.add_argument("--downsamples", type=positive_int, default=None,
                           help="stride-2 convolutions down to the (bottom) grid "
                                "(default: 2 with one level, 1 with two)")
        model.add_argument("--levels", type=int, choices=(1, 2), default=1,
                           help="1: VQ-VAE; 2: VQ-VAE-2 style top and bottom code maps")
        model.add_argument("--commitment-cost", type=positive_float, default=0.25, help="beta of eq. 3")
        model.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                           help="moving-average codebook updates (default: on)")
        model.add_argument("--decay", type=positive_float, default=0.99, help="EMA decay gamma")
        model.add_argument("--kmeans-init", action=argparse.BooleanOptionalAction, default=True,
                           help="k-means initialisation on the first batch (default: on)")
        model.add_argument("--quantizer", choices=QUANTIZERS, default="vq",
                           help="vq: Euclidean codes; cosine: l2-normalized codes (Yu et al. 2022); "
                                "fsq: finite scalar quantization (Mentzer et al. 2023, needs --fsq-levels)")
        model.add_argument("--codebook-dim", type=positive_int, default=None,
                           help="search codes of this dimension between learned projections (default: --embedding-dim)")
        model.add_argument("--residual-depth", type=positive_int, default=1,
                           help="quantizers per level in a residual stack (SoundStream); needs --prior-epochs 0")
        model.add_argument("--fsq-levels", type=positive_int, nargs="+", default=None,
                           help="FSQ levels per channel, e.g. 8 8 8 (512 codes; --codebook-size is then ignored)")
        model.add_argument("--dead-code-threshold", type=nonnegative_float, default=2.0,
                           help="replace, every step, codes whose moving-average count is below this floor "
                                "(counts start at the k-means cluster sizes; 0 turns it off)")
        model.add_argument("--replacement", choices=REPLACEMENTS, default="uniform",
                           help="where a replaced code goes: a uniformly drawn encoder output of the batch, "
                                "or one drawn in proportion to its squared quantization error")
        model.add_argument("--restarts", action=argparse.BooleanOptionalAction, default=False,
                           help="also replace codes unused for --restart-after batches (default: off)")
        model.add_argument("--restart-after", type=positive_int, default=20,
                           help="batches without use before a code is restarted (with --restarts)")

        train = parser.add_argument_group("training")
        train.add_argument("--epochs", type=positive_int, default=None, help="default 10 (1 with --smoke)")
        train.add_argument("--batch-size", type=positive_int, default=128)
        train.add_argument("--lr", type=positive_float, default=1e-3)
        train.add_argument("--prior-epochs", type=nonnegative_int, default=None,
                           help="default: as many as --epochs; 0 skips the prior")
        train.add_argument("--prior-channels", type=positive_int, default=64)
        train.add_argument("--prior-layers", type=positive_int, default=6)
        train.add_argument("--prior-lr", type=positive_float, default=1e-3)
        train.add_argument("--num-samples", type=positive_int, default=100, help="prior samples in samples.png")
        train.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature")
        train.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
        train.add_argument("--tensorboard", default=None, metavar="DIR",
                           help="log each epoch's numbers and reconstructions to TensorBoard in DIR "
                                "(pip install -e \".[tensorboard]\")")

    def settings(self, args):
        settings = super().settings(args)
        settings["data"] = settings["data"] or "auto"
        if settings.get("residual_depth", 1) > 1 and getattr(args, "prior_epochs", None) is None:
            settings["prior_epochs"] = 0  # no prior for residual codes unless asked (and refused below)
        if settings.get("prior_epochs") is None:
            settings["prior_epochs"] = settings["epochs"]
        if settings.get("residual_depth", 1) > 1 and settings["prior_epochs"]:
            raise UsageError("the PixelCNN code prior models one code per position and residual VQ gives "
                             f"{settings['residual_depth']}; use --prior-epochs 0 or --residual-depth 1")
        if settings.get("quantizer") == "fsq" and not settings.get("fsq_levels"):
            raise UsageError("--quantizer fsq needs --fsq-levels, e.g. --fsq-levels 8 8 8 for 512 codes")
        if settings.get("fsq_levels") and settings.get("quantizer") != "fsq":
            raise UsageError("--fsq-levels applies only with --quantizer fsq; add it or drop --fsq-levels")
        if settings.get("fsq_levels") and min(settings["fsq_levels"]) < 2:
            raise UsageError(f"every FSQ level must be at least 2, got --fsq-levels {' '.join(map(str, settings['fsq_levels']))}")
        if settings.get("quantizer") == "fsq" and (settings.get("residual_depth", 1) > 1 or settings.get("codebook_dim")):
            raise UsageError("--quantizer fsq takes no --residual-depth or --codebook-dim "
                             "(its dimension is the number of --fsq-levels)")
        return settings

    def train(self, folder, settings, progress=True):
        """Train a VQ-VAE and then its prior; continue the run in ``folder`` if it has one.

        A run folder that already holds a checkpoint of the same settings is continued where it
        stopped (bit for bit: optimizer and random states are saved after every epoch); a larger
        ``--epochs`` trains further, after which the prior is fitted afresh to the new codes.

        :returns: the summary, as in the evaluation file: ``test_mse``, ``test_codes_used``,
            ``test_usage``, ``test_perplexity``, ``test_dead_codes``; the last epoch's training
            usage; ``prior_test_bits_per_code``; ``bits_per_dim_bound`` and its parts; seconds per
            epoch; and ``files``, the paths written. Under ``torchrun`` the processes other than
            rank 0 write nothing and return ``{"history": ..., "evaluation": None}``.
        """
        device = resolve_device(settings.get("device") or "auto")
        if settings.get("threads"):
            torch.set_num_threads(settings["threads"])
        torch.manual_seed(settings["seed"])
        data = load_images(settings["data"], settings["data_root"], settings["seed"],
                           settings["train_subset"], settings["test_subset"])
        run = _TrainingRun(settings, data, folder, device, progress)  # refuses a resume with other settings first
        if distributed.is_main():
            folder.write_config(settings, data_description(data))
        run.train_autoencoder()
        run.train_prior()
        if not distributed.is_main():  # rank 0 evaluates, draws and writes
            return {"history": run.history, "evaluation": None}
        return run.finish()

    def evaluate(self, folder, options, progress=True):
        """Re-evaluate a finished run on its test set and redraw its figures.

        :param dict options: ``data_root``, ``batch_size`` and ``images`` (the first N test
            images) override the stored settings where given.
        :returns: the metrics, also written to the evaluation file of these settings.
        """
        path = options.get("checkpoint") or folder.checkpoint
        checkpoint = load_checkpoint(path)
        settings = dict(checkpoint.metadata.get("settings", {}))
        for key, option in (("data_root", "data_root"), ("batch_size", "batch_size"), ("test_subset", "images"),
                            ("data", "data")):
            if options.get(option) is not None:
                settings[key] = options[option]
        history = checkpoint.metadata.get("history", {}).get("vqvae")
        missing = [k for k in ("data", "seed", "batch_size", "num_samples", "temperature")
                   if k not in settings] + ([] if history else ["history"])
        if missing:
            raise CheckpointError(f"checkpoint {path} lacks the run settings {missing} needed to "
                                  f"evaluate it (was it written by pyro-lvm train vqvae?)")
        data = load_images(settings["data"], settings.get("data_root"), settings["seed"],
                           settings.get("train_subset"), settings.get("test_subset"))
        if tuple(data.input_shape) != checkpoint.model.config.input_shape:
            raise UsageError(f"checkpoint {path} expects images of shape {checkpoint.model.config.input_shape}, "
                             f"the data set has {data.input_shape}")
        start = time.perf_counter()
        metrics, files = _evaluate_and_draw(checkpoint.model, checkpoint.prior, data, settings, folder.path,
                                            history[-1])
        # keep what only training knew (epochs, seconds per epoch), refresh the test metrics
        evaluation = {**checkpoint.metadata.get("evaluation", {}), **metrics,
                      "test_images": int(data.test.shape[0]),
                      "evaluation_seconds": time.perf_counter() - start, "files": files}
        print(format_summary(evaluation), flush=True)
        evaluation["file"] = folder.file(_evaluation_name(settings, data))
        _write_json(evaluation["file"], evaluation)
        return evaluation


def config_from_settings(settings, input_shape):
    """A :class:`VQVAEConfig` from the command-line options and the data's ``(C, H, W)``."""
    levels = settings["levels"]
    downsamples = settings["downsamples"] or (2 if levels == 1 else 1)
    return VQVAEConfig(
        in_channels=input_shape[0], image_size=tuple(input_shape[1:]),
        hidden_channels=settings["hidden_channels"], residual_channels=settings["residual_channels"],
        num_residual_layers=settings["residual_layers"], embedding_dim=settings["embedding_dim"],
        num_codes=settings["codebook_size"], num_downsamples=downsamples, levels=levels,
        commitment_cost=settings["commitment_cost"], ema=settings["ema"], decay=settings["decay"],
        kmeans_init=settings["kmeans_init"],
        restart_after=settings["restart_after"] if settings["restarts"] else None,
        dead_code_threshold=settings.get("dead_code_threshold", 0) or None,
        replacement=settings.get("replacement", "uniform"),
        quantizer=settings.get("quantizer", "vq"), codebook_dim=settings.get("codebook_dim"),
        residual_depth=settings.get("residual_depth", 1), fsq_levels=settings.get("fsq_levels"))


def _mean(rows, key):
    values = [row[key] for row in rows if key in row]
    return sum(values) / len(values) if values else None


def _evaluate_and_draw(model, prior, data, settings, out, last_epoch):
    """Test metrics and the figures; shared by training and evaluation.

    The usage plot shows, per level, the histogram of the last training epoch (from its history
    row ``last_epoch``) beside that of the test set. Everything runs on the model's device (the
    prior's samples from a generator there).
    """
    batch_size, where = settings["batch_size"], next(model.parameters()).device
    test_loader = data.test_loader(batch_size).to(where)
    metrics, usages = evaluate_reconstruction(model, test_loader)
    prefixes = level_prefixes(len(usages))
    panels = [CodebookUsage.from_counts(last_epoch[f"train_{p}histogram"]) for p in prefixes]
    labels = [f"{p}codes, last training epoch" for p in prefixes]
    files = {"reconstructions": save_reconstructions(model, data.test[:50].to(where),
                                                     os.path.join(out, "reconstructions.png")),
             "codebook_usage": plot_codebook_usage(
                 panels + usages, os.path.join(out, "codebook_usage.png"),
                 title=f"code usage ({data.name})",
                 labels=labels + [f"{p}codes, test set" for p in prefixes])}
    if prior is not None:
        test_codes = encode_dataset(model, test_loader)
        metrics.update({"prior_test_" + k: v for k, v in prior_nll(prior, test_codes).items()})
        log_scale = fit_decoder_scale(model, data.train_loader(batch_size, shuffle=False).to(where))
        metrics.update(bits_per_dim(model, prior, test_loader, log_scale))
        generator = torch.Generator(where).manual_seed(settings["seed"])
        save_prior_samples(model, prior, os.path.join(out, "samples.png"),
                           settings["num_samples"], settings["temperature"], generator)
        files["samples"] = os.path.join(out, "samples.png")
    return metrics, files


# the settings added with the newer quantizers, as runs saved before them were trained
_LEGACY_SETTINGS = {"dead_code_threshold": 0, "replacement": "uniform", "quantizer": "vq", "codebook_dim": None,
                    "residual_depth": 1, "fsq_levels": None}

# options that may differ when a run is continued: more epochs, other figures, other threads
_RESUMABLE = {"tensorboard", "epochs", "prior_epochs", "threads", "num_samples", "temperature", "out", "data_root",
              "smoke", "device", "precision"}


def _resume(path, settings):
    """The checkpoint of an earlier run in the same folder, or ``None`` for a fresh start.

    :raises CheckpointError: when it was written with other settings, or by another number of
        training processes (``torchrun``).
    """
    if not os.path.exists(path):
        return None
    checkpoint = load_checkpoint(path)
    saved = {**_LEGACY_SETTINGS, **checkpoint.metadata.get("settings", {})}
    changed = sorted(k for k in set(saved) | set(settings)
                     if k not in _RESUMABLE and saved.get(k) != settings.get(k))
    if changed or "rng" not in checkpoint.metadata:
        raise CheckpointError(f"checkpoint {path} belongs to a run with other settings "
                              f"({', '.join(changed) or 'no resume state'}); continue it with the "
                              f"same options or choose another --out")
    check_processes(checkpoint.metadata, path)
    return checkpoint


def _restore(state, generator=None):
    """Set the random states saved after an epoch (every process its own, under ``torchrun``)."""
    if isinstance(state, (list, tuple)):  # written before runs kept every process's states
        torch.set_rng_state(state[0])
        if generator is not None:
            generator.set_state(state[1])
    else:
        set_rng_state(state, generator)


class _TrainingRun:
    """The state of one run folder: model, prior, optimizers, random states and history.

    Everything needed to continue is written to the checkpoint after every epoch, so a run
    continued from its folder ends bit for bit where an uninterrupted one would (on the same
    device type, with the same number of processes). Under ``torchrun`` only rank 0 writes.
    """

    def __init__(self, settings, data, folder, device, progress=True):
        self.settings, self.data, self.device = settings, data, device
        self.main, self.processes = distributed.is_main(), distributed.world_size()
        self.progress = progress and self.main
        self.paths = {"metrics": folder.file("metrics.json"), "checkpoint": folder.checkpoint,
                      "evaluation": folder.file(_evaluation_name(settings, data))}
        resumed = _resume(self.paths["checkpoint"], settings)
        if resumed is None:
            self.model, self.prior, meta = VQVAE(config_from_settings(settings, data.input_shape)), None, {}
        else:
            self.model, self.prior, meta = resumed.model.train(), resumed.prior, resumed.metadata
            history = meta.get("history", {})
            if self.main:
                print(f"resuming from epoch {len(history.get('vqvae', []))} (prior: {len(history.get('prior', []))} "
                      f"epochs) ({self.paths['checkpoint']})", flush=True)
        self.saved_prior_optimizer = meta.get("prior_optimizer")
        self.history = meta.get("history", {"vqvae": [], "prior": []})
        # the random states (torch's of every process, the shuffling generator's) after each stage's last epoch
        self.rng = meta.get("rng", {"vqvae": None, "prior": None})
        self.loader_rng = torch.Generator().manual_seed(settings["seed"])
        self.prior_rng = torch.Generator().manual_seed(settings["seed"])
        self.model.to(device)  # before the optimizer, whose saved state follows its parameters
        if self.prior is not None:  # a finished prior is evaluated where the model is
            self.prior.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings["lr"])
        if meta.get("optimizer"):
            self.optimizer.load_state_dict(meta["optimizer"])
        self.prior_optimizer = None
        self.tensorboard = None
        if settings.get("tensorboard") and self.main:
            from pyro_lvm.train.tensorboard import TensorBoardCallback

            self.tensorboard = TensorBoardCallback(settings["tensorboard"], test=data.test, seed=settings["seed"])

    def save(self, extra=None):
        state = {"settings": self.settings, "history": self.history, "rng": self.rng,
                 "world_size": self.processes, "optimizer": self.optimizer.state_dict(),
                 "prior_optimizer": self.prior_optimizer and self.prior_optimizer.state_dict()}
        save_checkpoint(self.paths["checkpoint"], self.model, self.prior, {**state, **(extra or {})})
        _write_json(self.paths["metrics"], self.history)

    def _recorder(self, stage, generator):
        def on_epoch_end(row):
            self.history[stage].append(row)
            self.rng[stage] = rng_state(generator)  # under torchrun every process takes part
            if self.main:
                self.save()
            if self.tensorboard is not None:  # after the save: the images draw under a forked stream
                self.tensorboard.log_row(row, len(self.history[stage]), prefix=stage)
                if stage == "vqvae":
                    self.tensorboard.log_images(self.model, len(self.history[stage]))
        return on_epoch_end

    def _shared(self, loader):
        """``loader`` on the run's device, yielding this process's share of each batch."""
        return loader.to(self.device).shard(distributed.rank(), self.processes)

    def train_autoencoder(self):
        settings, batch_size = self.settings, self.settings["batch_size"]
        if len(self.history["vqvae"]) >= settings["epochs"]:
            return
        if self.rng["vqvae"] is not None:
            _restore(self.rng["vqvae"], self.loader_rng)
        # new codes need a new prior
        self.prior, self.history["prior"], self.rng["prior"] = None, [], None
        fit_vqvae(self.model, self._shared(self.data.train_loader(batch_size, generator=self.loader_rng)),
                  settings["epochs"], settings["lr"], self.data.test_loader(batch_size),
                  self.progress, self._recorder("vqvae", self.loader_rng), self.optimizer,
                  self.history["vqvae"], device=self.device, precision=settings.get("precision") or "fp32")

    def train_prior(self):
        settings, batch_size = self.settings, self.settings["batch_size"]
        if settings["prior_epochs"] == 0 or (
                self.prior is not None and len(self.history["prior"]) >= settings["prior_epochs"]):
            return
        if self.prior is None:
            _restore(self.rng["vqvae"])  # as right after the last autoencoder epoch
            self.prior = CodePrior(self.model.num_codes, self.model.grid_shapes,
                                   settings["prior_channels"], settings["prior_layers"])
        self.prior.to(self.device)
        self.prior_optimizer = torch.optim.Adam(self.prior.parameters(), lr=settings["prior_lr"])
        if self.history["prior"]:
            self.prior_optimizer.load_state_dict(self.saved_prior_optimizer)
            _restore(self.rng["prior"], self.prior_rng)
        # every process encodes its share of each batch; all get every image's codes
        train_codes = encode_dataset(self.model, self._shared(self.data.train_loader(batch_size, shuffle=False)),
                                     gather=True)
        test_codes = encode_dataset(self.model, self._shared(self.data.test_loader(batch_size)), gather=True)
        fit_prior(self.prior, train_codes, settings["prior_epochs"], test_codes, batch_size,
                  settings["prior_lr"], settings["seed"], self.progress,
                  self._recorder("prior", self.prior_rng), self.prior_optimizer,
                  self.history["prior"], self.prior_rng, device=self.device,
                  precision=settings.get("precision") or "fp32")

    def finish(self):
        """Evaluate on the test set, draw the figures, print and write the evaluation file; the summary."""
        out, data, history = self.settings["out"], self.data, self.history
        last = history["vqvae"][-1]
        metrics, files = _evaluate_and_draw(self.model.eval(), self.prior, data, self.settings, out, last)
        summary = {"data": data.name, "data_source": data.source,
                   "train_images": int(data.train.shape[0]), "test_images": int(data.test.shape[0]),
                   "epochs": len(history["vqvae"]), "prior_epochs": len(history["prior"]), **metrics,
                   **{k: v for k, v in last.items() if k.startswith("train_") and not isinstance(v, list)},
                   "seconds_per_epoch": _mean(history["vqvae"], "seconds"),
                   "prior_seconds_per_epoch": _mean(history["prior"], "seconds")}
        files["loss"] = plot_history(history["vqvae"], os.path.join(out, "loss.png"),
                                     keys=[k for k in ("train_mse", "test_mse") if k in last],
                                     ylabel="MSE per pixel", title="VQ-VAE reconstruction error")
        self.save({"evaluation": summary})
        summary["files"] = {**self.paths, **files}
        print(format_summary(summary), flush=True)
        _write_json(self.paths["evaluation"], summary)
        return summary


