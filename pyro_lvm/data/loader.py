"""Mini-batches from tensors held whole in memory.

:class:`torch.utils.data.DataLoader` assembles each batch item by item through
``__getitem__`` and a collate function; for 28x28 images that fit in memory this
per-item Python work dominates an epoch of a small VAE. :class:`TensorLoader`
instead draws one permutation per epoch and indexes the tensor once per batch.

Dynamic binarization (a fresh Bernoulli draw of the grayscale pixels for every
batch, a common choice when fitting MNIST with a Bernoulli likelihood, e.g. [1])
happens here, so the model sees new binary data each epoch while the stored data
stay grayscale probabilities.

All randomness (the permutation and the Bernoulli draws) comes from one
:class:`torch.Generator`. Saving ``generator.get_state()`` before an epoch and
restoring it later replays that epoch bit for bit, which lets a training loop
resume from a checkpoint exactly. The generator stays on the CPU whatever device the data
are on, so the order is the same on every device type and one generator state resumes it.

Two more jobs, for training on a GPU and across processes:

* :meth:`TensorLoader.to` moves the whole tensor to the device once (batches are then indexed
  there); where it does not fit in GPU memory it stays on the CPU and each batch is moved.
* :meth:`TensorLoader.shard` makes process ``r`` of ``W`` (``torchrun``) yield only its share of
  each batch: every process draws the same permutation from the same generator state, cuts the
  same global batch of ``batch_size`` rows and keeps its contiguous part, so the shards of an
  epoch are disjoint and together are the single-process epoch. Binary draws are made for the
  whole global batch on every process before it is cut, so every generator stays in step and
  each process sees exactly the bits a single process would.

**References**

[1] Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders",
    ICLR 2016.
"""
import torch

from .checks import check_probabilities


def shard_bounds(n, index, size):
    """``(start, stop)`` of part ``index`` of ``size`` contiguous parts of ``n`` rows (sizes differ by at most 1)."""
    base, extra = divmod(n, size)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)

__all__ = ["TensorLoader"]


class TensorLoader:
    """Iterate over batches of a tensor (and optionally its labels).

    :param torch.Tensor data: all examples, first dimension indexes them.
    :param int batch_size: examples per batch (the last batch may be smaller).
    :param bool shuffle: draw a fresh random order every epoch.
    :param bool binarize: replace each batch ``x`` by ``torch.bernoulli(x)``;
        ``data`` must then hold probabilities in [0, 1], which is checked here, once,
        rather than in the middle of an epoch.
    :param torch.Generator generator: the only source of randomness; ``None``
        uses PyTorch's global generator (not reproducible across resumes).
    :param bool drop_last: skip the final incomplete batch.
    :param torch.Tensor labels: optional, one per example; batches are then
        ``(x, y)`` pairs.
    :raises DataError: if ``binarize`` and ``data`` has values outside [0, 1] or NaN.
    """

    def __init__(self, data, batch_size, shuffle=True, binarize=False, generator=None,
                 drop_last=False, labels=None):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if labels is not None and len(labels) != len(data):
            raise ValueError(f"got {len(labels)} labels for {len(data)} examples")
        if binarize:
            check_probabilities(data, "the data to binarize per batch")
        self.data = data
        self.labels = labels
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.binarize = binarize
        self.generator = generator
        self.drop_last = drop_last
        self.device = data.device
        self.rank, self.world_size = 0, 1

    def to(self, device):
        """Hold the data (and labels) on ``device``, moved once; returns ``self``.

        Where they do not fit in GPU memory they stay where they are and each batch is moved.
        """
        device = torch.device(device)
        try:
            self.data = self.data.to(device)
            self.labels = None if self.labels is None else self.labels.to(device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
        self.device = device
        return self

    def shard(self, rank, world_size):
        """Yield only process ``rank``'s contiguous part of each global batch; returns ``self``.

        ``len(self)`` stays the number of global batches, so every process takes the same
        number of steps; a final batch smaller than ``world_size`` leaves some processes empty
        batches (zero rows).
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, {world_size}), got {rank}")
        self.rank, self.world_size = int(rank), int(world_size)
        return self

    @property
    def dataset_size(self):
        """Number of examples, including any that ``drop_last`` skips."""
        return len(self.data)

    def __len__(self):
        """Number of batches per epoch."""
        full, rest = divmod(self.dataset_size, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _order(self):
        if self.shuffle:
            return torch.randperm(self.dataset_size, generator=self.generator).to(self.data.device)
        return None

    def __iter__(self):
        order = self._order()
        for i in range(len(self)):
            start, stop = i * self.batch_size, (i + 1) * self.batch_size
            if order is None:
                x = self.data[start:stop]
                y = None if self.labels is None else self.labels[start:stop]
            else:
                index = order[start:stop]
                x = self.data[index]
                y = None if self.labels is None else self.labels[index]
            if self.binarize:
                x = self._bernoulli(x)
            if self.world_size > 1:
                start, stop = shard_bounds(x.shape[0], self.rank, self.world_size)
                x, y = x[start:stop], None if y is None else y[start:stop]
            if x.device != self.device:
                x, y = x.to(self.device, non_blocking=True), None if y is None else y.to(self.device)
            yield x if y is None else (x, y)

    def _bernoulli(self, x):
        """Binary draws from the CPU generator (uniforms moved to the data's device when not the CPU)."""
        if x.device.type == "cpu":
            return torch.bernoulli(x, generator=self.generator)
        uniform = torch.rand(x.shape, generator=self.generator, dtype=x.dtype)
        return (uniform.to(x.device, non_blocking=True) < x).to(x.dtype)

    def __repr__(self):
        return (f"{type(self).__name__}(examples={self.dataset_size}, batch_size={self.batch_size}, "
                f"batches={len(self)}, shuffle={self.shuffle}, binarize={self.binarize}, device={self.device}"
                + (f", shard={self.rank}/{self.world_size}" if self.world_size > 1 else "") + ")")
