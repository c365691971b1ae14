"""Image tensors for the VQ-VAE: the shared data layer's data sets, or synthetic shapes.

``pyro_lvm.data`` is imported only when a real data set is asked for.
"""
import torch

SYNTHETIC = "synthetic"


class ImageTensors:
    """Train and test images ``(N, C, H, W)`` in [0, 1] with simple batch iterators.

    The same surface as the data layer's ``ImageDataset`` (``train``, ``test``, ``input_shape``,
    ``train_loader``, ``test_loader``, ``name``, ``source``), so either can be passed to the
    training code.
    """

    def __init__(self, train, test, name="tensors", source=""):
        for split, images in (("train", train), ("test", test)):
            if images.dim() != 4 or images.shape[0] == 0:
                raise ValueError(f"{split} images must have shape (N, C, H, W) with N > 0, "
                                 f"got {tuple(images.shape)}")
        if train.shape[1:] != test.shape[1:]:
            raise ValueError(f"train and test images differ in shape: {tuple(train.shape[1:])} "
                             f"vs {tuple(test.shape[1:])}")
        self.train, self.test, self.name, self.source = train.float(), test.float(), name, source

    @property
    def input_shape(self):
        return tuple(self.train.shape[1:])

    def train_loader(self, batch_size, generator=None, shuffle=True):
        return _Batches(self.train, batch_size, shuffle, generator)

    def test_loader(self, batch_size):
        return _Batches(self.test, batch_size, False, None)


class _Batches:
    """Re-iterable batches of a tensor; a fresh permutation on every pass when shuffling."""

    def __init__(self, images, batch_size, shuffle, generator):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.images, self.batch_size = images, batch_size
        self.shuffle, self.generator = shuffle, generator

    def __len__(self):
        return -(-self.images.shape[0] // self.batch_size)

    def __iter__(self):
        n = self.images.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            yield self.images[order[start:start + self.batch_size]]


def synthetic_images(num_images, size=28, channels=1, seed=0):
    """Images of one to three bright rectangles and discs on a dark background.

    Cheap, structured stand-ins for real data in tests and smoke runs.
    """
    generator = torch.Generator().manual_seed(seed)
    rows = torch.arange(size).view(size, 1).float()
    cols = torch.arange(size).view(1, size).float()
    images = torch.zeros(num_images, channels, size, size)
    for image in images:
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            cy, cx = (torch.rand(2, generator=generator) * size).tolist()
            radius = float(2 + torch.rand(1, generator=generator) * size / 5)
            if float(torch.rand(1, generator=generator)) < 0.5:
                shape = ((rows - cy).abs() <= radius) & ((cols - cx).abs() <= radius)
            else:
                shape = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius ** 2
            colour = 0.4 + 0.6 * torch.rand(channels, 1, 1, generator=generator)
            image.copy_(torch.where(shape, colour, image))
    return torch.round(images * 255) / 255


def load_images(name, root=None, seed=0, train_subset=None, test_subset=None):
    """Load a data set by name and keep (at most) the first ``train_subset``/``test_subset`` images.

    :param str name: ``"synthetic"`` (made here), or any name ``pyro_lvm.data.load_dataset``
        knows (``"mnist"``, ``"fashion-mnist"``, ``"binarized-mnist"``, ``"embedded"``, ``"auto"``).
    :param str root: data folder for the data layer (default: its own, or ``$PYRO_LVM_DATA``).
    :param int seed: seed of the synthetic images and of the data layer.
    :returns: :class:`ImageTensors`.
    """
    if name == SYNTHETIC:
        train = synthetic_images(train_subset or 2000, seed=seed)
        test = synthetic_images(test_subset or 500, seed=seed + 1)
        return ImageTensors(train, test, name, "generated")
    from pyro_lvm.data import load_dataset

    dataset = load_dataset(name, root=root, seed=seed)
    train = dataset.train[:train_subset] if train_subset else dataset.train
    test = dataset.test[:test_subset] if test_subset else dataset.test
    return ImageTensors(train, test, dataset.name, dataset.source)
