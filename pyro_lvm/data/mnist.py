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

Files that are there but cannot be used raise a :class:`~pyro_lvm.errors.DataError`
naming them: an unreadable file or folder, a folder with only some of the four
files, an archive whose md5 is wrong. Extracted files are checked against their
idx headers before every read: one cut short in the cache (an interrupted
extraction) is extracted again from the verified ``.gz``, with a warning; one cut
short in the data root is skipped for the ``.gz`` beside it, or reported.

MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges; Fashion-MNIST by H. Xiao,
K. Rasul and R. Vollgraf (Zalando Research, MIT licence).
"""
import hashlib
import os
import shutil
import warnings

from ..errors import DataError
from .dataset import ImageDataset, from_uint8
from .idx import idx_problem
from .paths import (CACHE_ENV, cache_dir, check_readable_file, check_readable_folder,
                    existing_data_root, read_bytes)

__all__ = ["ARCHIVES", "FOLDERS", "find_idx_folder", "load_torchvision", "raw_folder"]

#: The folder of each data set under a root, as torchvision names it.
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
#: The four gzip'd idx files of either data set, in torchvision's order.
ARCHIVES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_EXTRACTED = tuple(os.path.splitext(archive)[0] for archive in ARCHIVES)


def _torchvision_class(name):
    from torchvision import datasets  # imported when needed: it takes seconds

    return getattr(datasets, FOLDERS[name])


def raw_folder(root, name):
    """``<root>/<Name>/raw``, where torchvision keeps a data set's files."""
    return os.path.join(root, FOLDERS[name], "raw")


def find_idx_folder(name, root, allow_partial=False):
    """Which form of a torchvision data set sits under ``root``.

    :param str name: ``"mnist"`` or ``"fashion-mnist"``.
    :param str root: a data root in torchvision's layout.
    :param bool allow_partial: return ``None`` rather than raise when only some of
        the files are there (in the cache, an interrupted download is resumed).
    :returns: ``"extracted"``, ``"compressed"`` or ``None`` (none of its files is there).
    :raises DataError: if a file or folder of the data set is there but unreadable,
        or only some of the files are there.
    """
    raw = raw_folder(root, name)
    if not os.path.lexists(raw):
        return None
    check_readable_folder(raw)
    present = [f for f in _EXTRACTED + ARCHIVES if os.path.lexists(os.path.join(raw, f))]
    for filename in present:
        check_readable_file(os.path.join(raw, filename))
    if set(_EXTRACTED) <= set(present):
        return "extracted"
    if set(ARCHIVES) <= set(present):
        return "compressed"
    if present and not allow_partial:
        missing = ", ".join(f for f in ARCHIVES if f not in present)
        raise DataError(f"{raw} holds only some of the {FOLDERS[name]} files: it lacks {missing}; "
                        "put all four .gz files there (torchvision's layout) or remove the folder")
    return None


def _damaged(raw):
    """``(path, problem)`` of each extracted idx file in ``raw`` that its header disowns."""
    damaged = []
    for path in (os.path.join(raw, f) for f in _EXTRACTED):
        problem = os.path.isfile(path) and idx_problem(path)
        if problem:
            damaged.append((path, problem))
    return damaged


def _md5(path):
    return hashlib.md5(read_bytes(path)).hexdigest()


def _copy_archives(name, source_raw, cache_raw):
    """Check the ``.gz`` files' md5, then copy them into the cache (atomically, as others may share it)."""
    expected = dict(_torchvision_class(name).resources)
    for filename in ARCHIVES:
        source = os.path.join(source_raw, filename)
        found = _md5(source)
        if found != expected[filename]:
            raise DataError(f"{source} has md5 {found}, but torchvision expects "
                            f"{expected[filename]}; the file is corrupt or not the published "
                            "one: replace it with the original")
    try:
        os.makedirs(cache_raw, exist_ok=True)
        for filename in ARCHIVES:
            source, target = os.path.join(source_raw, filename), os.path.join(cache_raw, filename)
            if os.path.isfile(target) and _md5(target) == expected[filename]:
                continue
            partial = f"{target}.{os.getpid()}.partial"
            shutil.copyfile(source, partial)
            os.replace(partial, target)
    except OSError as error:
        raise DataError(f"cannot write the cache {cache_raw} ({error.strerror or error}); point "
                        f"{CACHE_ENV} at a writable folder with free space") from None


def _drop_damaged(cache_raw):
    """Remove extracted files cut short in the cache, so that torchvision extracts them again."""
    damaged = _damaged(cache_raw)
    for path, problem in damaged:
        again = (f"extracting it again from {os.path.basename(path)}.gz"
                 if os.path.isfile(path + ".gz") else "downloading it again")
        warnings.warn(f"{path} {problem} (an interrupted extraction?); {again}", stacklevel=2)
        os.remove(path)


def _from_root(name, root, cache):
    """Where to read a data set found under a root that is not the cache, or ``None``."""
    raw, cache_raw = raw_folder(root, name), raw_folder(cache, name)
    state = find_idx_folder(name, root)
    if state == "extracted":
        damaged = _damaged(raw)
        if not damaged:
            return root, False, raw
        path, problem = damaged[0]
        if not all(os.path.isfile(os.path.join(raw, f)) for f in ARCHIVES):
            raise DataError(f"{path} {problem}: the file is truncated, empty or corrupt; replace "
                        "it, or put the four .gz files beside it to have them extracted instead")
        warnings.warn(f"{path} {problem}; extracting the .gz files beside it into {cache_raw} "
                      "instead", stacklevel=2)
        state = "compressed"
    if state == "compressed":
        if find_idx_folder(name, cache, allow_partial=True) != "extracted" or _damaged(cache_raw):
            _copy_archives(name, raw, cache_raw)
            _drop_damaged(cache_raw)
        return cache, True, f"{raw} (extracted into {cache_raw})"
    return None


def _locate(name, root):
    """Find, repair or fetch the data: the folder for torchvision, whether it may
    extract or download there, and a note of the source (``None`` if downloading)."""
    cache = cache_dir()
    if root != cache:
        found = _from_root(name, root, cache)
        if found is not None:
            return found
    state = find_idx_folder(name, cache, allow_partial=True)
    _drop_damaged(raw_folder(cache, name))
    return cache, True, None if state is None else raw_folder(cache, name)


def _read(name, folder, download):
    cls = _torchvision_class(name)
    train = cls(folder, train=True, download=download)
    test = cls(folder, train=False, download=False)
    return train, test


def load_torchvision(name, root=None):
    """Load MNIST or Fashion-MNIST as grayscale float32 tensors in [0, 1].

    :param str name: ``"mnist"`` or ``"fashion-mnist"``.
    :param str root: the data root; see :func:`~pyro_lvm.data.paths.data_root`.
    :returns: 60000 train and 10000 test images of shape ``(1, 28, 28)``, with labels.
    :rtype: ImageDataset
    :raises DataError: if the root does not exist, the files are unreadable,
        incomplete or corrupt, or they are nowhere and downloading them fails.
    """
    root = existing_data_root(root)
    folder, download, source = _locate(name, root)
    try:
        train, test = _read(name, folder, download)
    except (RuntimeError, OSError, ValueError, AssertionError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if source is not None:
            raise DataError(f"reading {name} from {source} failed ({reason}); check the files "
                            "there, or delete the cache to fetch them again") from error
        raise DataError(
            f"{name} was found neither under the data root {root} nor in the cache {folder}, "
            f"and downloading it failed ({reason}). Point PYRO_LVM_DATA (or --data-root) at a "
            f"folder holding {FOLDERS[name]}/raw/*.gz, or connect to the network."
        ) from error
    return ImageDataset(
        name=name,
        train=from_uint8(train.data), test=from_uint8(test.data),
        train_labels=train.targets.long(), test_labels=test.targets.long(),
        source=source or raw_folder(folder, name) + " (downloaded)",
    )
