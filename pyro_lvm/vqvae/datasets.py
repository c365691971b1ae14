"""Images for the VQ-VAE, from the shared data layer (:mod:`pyro_lvm.data`, which imports no Pyro).

:func:`load_images` returns the data layer's :class:`~pyro_lvm.data.ImageDataset`, whose
:meth:`~pyro_lvm.data.ImageDataset.train_loader` and
:meth:`~pyro_lvm.data.ImageDataset.test_loader` the training code iterates.
"""
from pyro_lvm.data import load_dataset, load_synthetic, synthetic_images

__all__ = ["SYNTHETIC", "load_images", "synthetic_images"]

SYNTHETIC = "synthetic"


def load_images(name, root=None, seed=0, train_subset=None, test_subset=None):
    """Load a data set by name and keep (at most) the first ``train_subset``/``test_subset`` images.

    :param str name: any name or file :func:`pyro_lvm.data.load_dataset` takes: ``"mnist"``,
        ``"fashion-mnist"``, ``"binarized-mnist"``, ``"embedded"``, ``"synthetic"``, ``"auto"``,
        or a ``.npy``/``.npz``/``.pt`` file. Synthetic sets are drawn at the subset sizes
        (default 2000 train and 500 test images).
    :param str root: the data root (default: ``$PYRO_LVM_DATA``, else the cache).
    :param int seed: seed of the synthetic images and of the data layer.
    :param int train_subset: training images to keep; ``None`` or 0 keeps all.
    :param int test_subset: test images to keep; ``None`` or 0 keeps all.
    :rtype: ~pyro_lvm.data.ImageDataset
    :raises pyro_lvm.errors.DataError: for data that cannot be used, naming the fix.
    """
    if name == SYNTHETIC:
        return load_synthetic(train_subset or 2000, test_subset or 500, seed=seed)
    dataset = load_dataset(name, root=root, seed=seed)
    return dataset.subset(train_subset or None, test_subset or None)
