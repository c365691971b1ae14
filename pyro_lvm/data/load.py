"""``load_dataset``: every data set by name or file, binarized as asked.

``"auto"`` is what examples and the command line use by default: real MNIST when
it can be found without a download, else the embedded subset, with a warning
that names the folders and files looked for and how to point at real data. It
falls back only when none of MNIST's files is there: files that are there but
unreadable or incomplete raise, rather than train silently on the small subset.
"""
import warnings

from ..errors import DataError, UsageError
from .binarize import binarize_dataset
from .binarized import load_binarized_mnist
from .checks import check_finite
from .cifar import load_cifar10
from .dataset import BINARIZE_MODES
from .eight_bit import to_eight_bit
from .embedded import load_embedded
from .mnist import ARCHIVES, find_idx_folder, load_torchvision, raw_folder
from .paths import DATA_ENV, cache_dir, existing_data_root
from .synthetic import load_synthetic
from .tensor_file import TENSOR_SUFFIXES, is_tensor_file, load_tensor_file

__all__ = ["DATASET_NAMES", "EmbeddedDataWarning", "load_dataset"]

DATASET_NAMES = ("mnist", "fashion-mnist", "binarized-mnist", "embedded", "synthetic", "cifar10", "auto")


class EmbeddedDataWarning(UserWarning):
    """Emitted when ``"auto"`` falls back to the embedded MNIST subset."""


def _resolve_auto(root):
    """``"mnist"`` if MNIST sits under the data root or the cache, else ``"embedded"``."""
    folders = list(dict.fromkeys((existing_data_root(root), cache_dir())))
    for folder in folders:
        if find_idx_folder("mnist", folder) is not None:
            return "mnist", folder
    looked = " and ".join(raw_folder(folder, "mnist") for folder in folders)
    files = ", ".join(archive.replace(".gz", "[.gz]") for archive in ARCHIVES)
    warnings.warn(
        f"MNIST was not found: looked in {looked} for {files} (torchvision's layout); using the "
        "embedded default, a 5000 train / 1000 test MNIST subset shipped with pyro_lvm. For the "
        f"full data set, point {DATA_ENV} (or --data-root) at a folder holding MNIST/raw/, or "
        "load 'mnist' to download it.",
        EmbeddedDataWarning, stacklevel=3,
    )
    return "embedded", None


def _load_grayscale(name, root, seed):
    if name in ("mnist", "fashion-mnist"):
        return load_torchvision(name, root)
    if name == "binarized-mnist":
        return load_binarized_mnist(root)
    if name == "synthetic":
        return load_synthetic(seed=seed)
    if name == "embedded":
        return load_embedded()
    if name == "cifar10":
        return load_cifar10(root)
    return load_tensor_file(name)


def load_dataset(name, root=None, binarize=None, seed=0, eight_bit=False):
    """Load a data set whole into memory as float32 tensors of shape ``(N, C, H, W)``.

    :param str name: ``"mnist"``, ``"fashion-mnist"`` (60000 train / 10000 test),
        ``"binarized-mnist"`` (the fixed binarization of Larochelle and Murray:
        50000 / 10000 valid / 10000 test, no labels), ``"embedded"`` (5000 / 1000
        MNIST digits shipped with the package), ``"synthetic"`` (2000 / 500 images
        of shapes, drawn with ``seed``; see :mod:`~pyro_lvm.data.synthetic`),
        ``"auto"`` (MNIST if found under the data root or the cache, else
        ``"embedded"`` with an :class:`EmbeddedDataWarning`), or the path of a
        ``.npy``, ``.npz`` or ``.pt`` file of one's own images (see
        :mod:`~pyro_lvm.data.tensor_file`; a relative path is taken from the working
        folder, not from ``root``). The MNIST family is ``(N, 1, 28, 28)``.
    :param str root: the data root; default ``$PYRO_LVM_DATA``, else the cache.
        Never written to.
    :param str binarize: ``None`` (grayscale in [0, 1]), ``"static"`` (every split
        replaced by one fixed Bernoulli draw) or ``"dynamic"`` (test and valid
        drawn once; the train loader draws afresh for every batch). Ignored for
        ``"binarized-mnist"``, whose pixels are already a fixed draw: its datasets
        always report ``"static"``.
    :param int seed: seeds the fixed Bernoulli draws (and the synthetic images).
    :param bool eight_bit: return the integer pixel values 0..255 (float32) instead of [0, 1],
        for discrete likelihoods and dequantization (:mod:`~pyro_lvm.data.eight_bit`; not with
        ``binarize``). ``"cifar10"`` is CIFAR-10 read by torchvision from
        ``<root>/cifar-10-batches-py`` without downloading (:mod:`~pyro_lvm.data.cifar`).
    :rtype: ~pyro_lvm.data.dataset.ImageDataset
    :raises DataError: with a one-line message naming the problem and the fix, for
        any data that cannot be used: an unknown name, a missing or unreadable root
        or file, a truncated or corrupt file, an empty split, NaN or infinite
        pixels, or pixels outside [0, 1] when binarizing.
    """
    if name not in DATASET_NAMES and not is_tensor_file(name):
        raise DataError(f"unknown data set {name!r}; choose one of {DATASET_NAMES}, or pass a "
                        f"file ending in {', '.join(TENSOR_SUFFIXES)}")
    if isinstance(binarize, str) and binarize.lower() == "none":
        binarize = None
    if binarize not in BINARIZE_MODES:
        raise UsageError(f"binarize must be one of {BINARIZE_MODES}, got {binarize!r}")
    if eight_bit and binarize is not None:
        raise UsageError(f"eight_bit=True keeps the 8-bit pixel values and cannot binarize ({binarize!r}); "
                         "drop one of them")
    if name == "auto":
        name, root = _resolve_auto(root)
    dataset = _load_grayscale(name, root, seed)
    for split in (dataset.train, dataset.valid, dataset.test):
        if split is not None:
            check_finite(split, f"{dataset.name} images")
    if eight_bit:
        return to_eight_bit(dataset)
    if dataset.binarize is not None:
        if binarize == "dynamic":
            warnings.warn(f"{dataset.name} is already binary; binarize='dynamic' is ignored",
                          stacklevel=2)
        return dataset
    return binarize_dataset(dataset, binarize, seed)
