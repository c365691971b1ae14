"""Training curves and image grids in TensorBoard (``pip install -e ".[tensorboard]"``).

:class:`TensorBoardCallback` is a :func:`~pyro_lvm.train.fit` callback: ``fit`` calls its
:meth:`~TensorBoardCallback.on_step` after every optimizer step (the scalar ``step/loss``, the
batch's loss per datum, against the global step) and calls it after every epoch (every number of
the epoch's record as ``epoch/<key>``, against the epoch, and, given a ``model`` with
``sample``/``reconstruct``, a grid of samples and one of test images beside their
reconstructions). The same object logs the VQ-VAE trainer's epoch rows
(:meth:`~TensorBoardCallback.log_row`). Grids are drawn under a forked, seeded random stream,
so logging never changes what is trained, and a resumed run continues the same curves.
"""
import torch
from torchvision.utils import make_grid

from pyro_lvm.errors import UsageError


def summary_writer(log_dir):
    """A ``torch.utils.tensorboard.SummaryWriter`` for ``log_dir``, or one line saying what to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("--tensorboard needs the tensorboard package: pip install -e \".[tensorboard]\" "
                         "(or pip install tensorboard)") from None
    return SummaryWriter(log_dir=log_dir)


def image_grid(images, nrow=8):
    """``(C, H, W)`` grid in [0, 1] of a batch ``(N, C, H, W)``."""
    images = torch.as_tensor(images).detach().float().cpu().clamp(0, 1)
    return make_grid(images, nrow=nrow, padding=2, pad_value=1.0)


class TensorBoardCallback:
    """Log a training run to TensorBoard: scalars per step and per epoch, image grids per epoch.

    :param str log_dir: the event files' folder (``tensorboard --logdir DIR`` shows it).
    :param model: a package model with ``sample(n)`` and ``reconstruct(x)``, or ``None`` (no images).
    :param test: test images whose reconstructions are shown (the first ``num_images``).
    :param int num_images: images per grid.
    :param int seed: the seed of the grids' draws (the same each epoch).
    """

    def __init__(self, log_dir, model=None, test=None, num_images=32, seed=0):
        self.writer = summary_writer(log_dir)
        self.model, self.num_images, self.seed = model, num_images, seed
        self.test = None if test is None else test[:num_images]

    def on_step(self, loss, state):
        """The step's loss per datum, against ``state.step`` (``fit`` calls this after each step)."""
        self.writer.add_scalar("step/loss", loss, state.step)

    def __call__(self, record, state):
        self.log_row(record, record.get("epoch", state.epoch), prefix="epoch")
        if self.model is not None:
            self.log_images(self.model, record.get("epoch", state.epoch))
        self.writer.flush()
        return False

    def log_row(self, row, epoch, prefix="epoch"):
        """Every finite number of ``row`` as ``prefix/key`` at ``epoch`` (lists are left out)."""
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", value, epoch)
        self.writer.flush()

    @torch.no_grad()
    def log_images(self, model, epoch):
        """A grid of samples and one of test images (left) beside their reconstructions (right)."""
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                if hasattr(model, "sample") and hasattr(model, "guide"):  # a VQ-VAE samples from its prior
                    self.writer.add_image("samples", image_grid(model.sample(self.num_images)), epoch)
                if self.test is not None:
                    x = self.test.to(next(model.parameters()).device)
                    reconstruction = model.reconstruct(x) if hasattr(model, "reconstruct") else model(x).reconstruction
                    self.log_pairs(x, reconstruction, epoch)
        finally:
            model.train(was_training)

    def log_pairs(self, x, reconstruction, epoch):
        """Each image of ``x`` (left) beside its reconstruction (right), eight pairs a row."""
        pairs = torch.stack([x, reconstruction.reshape(x.shape)], 1).reshape(-1, *x.shape[1:])
        self.writer.add_image("reconstructions", image_grid(pairs, nrow=16), epoch)

    def close(self):
        self.writer.close()
