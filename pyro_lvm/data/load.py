"""``load_dataset``: every data set by name, binarized as asked.

``"auto"`` is what examples and the command line use by default: real MNIST when
it can be found without a download, else the embedded subset, with a warning
that says so and how to point at real data.
"""
import warnings

from .binarize import binarize_dataset
from .binarized import load_binarized_mnist
from .checks import check_finite
from .dataset import BINARIZE_MODES
from .embedded import load_embedded
from .mnist import find_idx_folder, load_torchvision
from .paths import DATA_ENV, cache_dir, data_root

__all__ = ["DATASET_NAMES", "EmbeddedDataWarning", "load_dataset"]

DATASET_NAMES = ("mnist", "fashion-mnist", "binarized-mnist", "embedded", "auto")


class EmbeddedDataWarning(UserWarning):
    """Emitted when ``"auto"`` falls back to the embedded MNIST subset."""


def _resolve_auto(root):
    """``"mnist"`` if MNIST sits under the data root or the cache, else ``"embedded"``."""
    root = data_root(root)
    for folder in dict.fromkeys((root, cache_dir())):
        if find_idx_folder("mnist", folder) is not None:
            return "mnist", folder
    warnings.warn(
        f"MNIST was not found under {root} (looked for MNIST/raw/*-ubyte[.gz], torchvision's "
        "layout); using the embedded default, a 5000 train / 1000 test MNIST subset shipped "
        f"with pyro_lvm. For the full data set, point {DATA_ENV} (or --data-root) at a folder "
        "holding MNIST/raw/, or load 'mnist' to download it.",
        EmbeddedDataWarning, stacklevel=3,
    )
    return "embedded", None


def _load_grayscale(name, root):
    if name in ("mnist", "fashion-mnist"):
        return load_torchvision(name, root)
    if name == "binarized-mnist":
        return load_binarized_mnist(root)
    return load_embedded()


def load_dataset(name, root=None, binarize=None, seed=0):
    """Load a data set whole into memory as float32 tensors of shape ``(N, 1, 28, 28)``.

    :param str name: ``"mnist"``, ``"fashion-mnist"`` (60000 train / 10000 test),
        ``"binarized-mnist"`` (the fixed binarization of Larochelle and Murray:
        50000 / 10000 valid / 10000 test, no labels), ``"embedded"`` (5000 / 1000
        MNIST digits shipped with the package) or ``"auto"`` (MNIST if found under
        the data root or the cache, else ``"embedded"`` with an
        :class:`EmbeddedDataWarning`).
    :param str root: the data root; default ``$PYRO_LVM_DATA``, else the cache.
        Never written to.
    :param str binarize: ``None`` (grayscale in [0, 1]), ``"static"`` (every split
        replaced by one fixed Bernoulli draw) or ``"dynamic"`` (test and valid
        drawn once; the train loader draws afresh for every batch). Ignored for
        ``"binarized-mnist"``, whose pixels are already a fixed draw: its datasets
        always report ``"static"``.
    :param int seed: seeds the fixed Bernoulli draws.
    :rtype: ~pyro_lvm.data.dataset.ImageDataset
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASET_NAMES}")
    if isinstance(binarize, str) and binarize.lower() == "none":
        binarize = None
    if binarize not in BINARIZE_MODES:
        raise ValueError(f"binarize must be one of {BINARIZE_MODES}, got {binarize!r}")
    if name == "auto":
        name, root = _resolve_auto(root)
    dataset = _load_grayscale(name, root)
    for split in (dataset.train, dataset.valid, dataset.test):
        if split is not None:
            check_finite(split, f"{dataset.name} images")
    if dataset.binarize is not None:
        if binarize == "dynamic":
            warnings.warn(f"{dataset.name} is already binary; binarize='dynamic' is ignored",
                          stacklevel=2)
        return dataset
    return binarize_dataset(dataset, binarize, seed)
