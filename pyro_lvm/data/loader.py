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
resume from a checkpoint exactly.

**References**

[1] Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders",
    ICLR 2016.
"""
import torch

from .checks import check_probabilities

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
            return torch.randperm(self.dataset_size, generator=self.generator)
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
                x = torch.bernoulli(x, generator=self.generator)
            yield x if y is None else (x, y)

    def __repr__(self):
        return (f"{type(self).__name__}(examples={self.dataset_size}, batch_size={self.batch_size}, "
                f"batches={len(self)}, shuffle={self.shuffle}, binarize={self.binarize})")
