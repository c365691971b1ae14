"""MNIST and Fashion-MNIST through torchvision, from read-only folders or the network.

torchvision reads the uncompressed idx files from ``<root>/MNIST/raw/`` and, when
asked to download, first extracts the gzip'd originals next to them. A shared
data folder usually holds only the ``.gz`` files and may be read-only, so the
folders are tried in this order, and nothing is ever written into the data root:

1. ``<data root>/<Name>/raw`` holds the extracted idx files: read them in place
   (``download=False``).
2. ``<data root>/<Name>/raw`` holds the ``.gz`` files: check their md5 against
   torchvision's published checksums, copy them into ``<cache>/<Name>/raw`` and
   let torchvision extract them there (``download=True`` finds the archives
   already present and so never touches the network).
3. Otherwise download into the cache with torchvision.

MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges; Fashion-MNIST by H. Xiao,
K. Rasul and R. Vollgraf (Zalando Research, MIT licence).
"""
import hashlib
import os
import shutil

from torchvision import datasets

from .dataset import ImageDataset, from_uint8
from .paths import cache_dir, data_root

__all__ = ["TORCHVISION_CLASSES", "find_idx_folder", "load_torchvision"]

TORCHVISION_CLASSES = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}


def _raw_folder(root, name):
    return os.path.join(root, TORCHVISION_CLASSES[name].__name__, "raw")


def _files(name, compressed):
    archives = [filename for filename, _ in TORCHVISION_CLASSES[name].resources]
    return archives if compressed else [os.path.splitext(f)[0] for f in archives]


def _has_all(folder, filenames):
    return all(os.path.isfile(os.path.join(folder, f)) for f in filenames)


def find_idx_folder(name, root):
    """Which form of a torchvision data set sits under ``root``.

    :param str name: ``"mnist"`` or ``"fashion-mnist"``.
    :param str root: a data root in torchvision's layout.
    :returns: ``"extracted"``, ``"compressed"`` or ``None``.
    """
    raw = _raw_folder(root, name)
    if _has_all(raw, _files(name, compressed=False)):
        return "extracted"
    if _has_all(raw, _files(name, compressed=True)):
        return "compressed"
    return None


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_archives(name, source_raw, cache_raw):
    """Copy verified ``.gz`` files into the cache (atomically, as others may share it)."""
    os.makedirs(cache_raw, exist_ok=True)
    for filename, md5 in TORCHVISION_CLASSES[name].resources:
        source, target = os.path.join(source_raw, filename), os.path.join(cache_raw, filename)
        found = _md5(source)
        if found != md5:
            raise ValueError(f"{source} has md5 {found}, but torchvision expects {md5}; "
                             "the file is corrupt or not the published one")
        if os.path.isfile(target) and _md5(target) == md5:
            continue
        partial = f"{target}.{os.getpid()}.partial"
        shutil.copyfile(source, partial)
        os.replace(partial, target)


def _read(name, root, download):
    cls = TORCHVISION_CLASSES[name]
    train = cls(root, train=True, download=download)
    test = cls(root, train=False, download=False)
    return train, test


def _locate(name, root):
    """Find or fetch the data; return the folder to read with torchvision and a source note."""
    cache = cache_dir()
    state = find_idx_folder(name, root)
    if state == "extracted":
        return root, False, _raw_folder(root, name)
    if state == "compressed":
        if find_idx_folder(name, cache) != "extracted":
            _copy_archives(name, _raw_folder(root, name), _raw_folder(cache, name))
        return cache, True, f"{_raw_folder(root, name)} (extracted into {_raw_folder(cache, name)})"
    if find_idx_folder(name, cache) is not None:
        return cache, True, _raw_folder(cache, name)
    return cache, True, None


def load_torchvision(name, root=None):
    """Load MNIST or Fashion-MNIST as grayscale float32 tensors in [0, 1].

    :param str name: ``"mnist"`` or ``"fashion-mnist"``.
    :param str root: the data root; see :func:`~pyro_lvm.data.paths.data_root`.
    :returns: 60000 train and 10000 test images of shape ``(1, 28, 28)``, with labels.
    :rtype: ImageDataset
    """
    root = data_root(root)
    folder, download, source = _locate(name, root)
    try:
        train, test = _read(name, folder, download)
    except RuntimeError as error:
        if source is not None:
            raise
        raise RuntimeError(
            f"{name} was found neither under the data root {root} nor in the cache {folder}, "
            f"and downloading it failed. Point PYRO_LVM_DATA (or --data-root) at a folder "
            f"holding {TORCHVISION_CLASSES[name].__name__}/raw/*.gz, or connect to the network."
        ) from error
    return ImageDataset(
        name=name,
        train=from_uint8(train.data), test=from_uint8(test.data),
        train_labels=train.targets.long(), test_labels=test.targets.long(),
        source=source or _raw_folder(folder, name) + " (downloaded)",
    )
