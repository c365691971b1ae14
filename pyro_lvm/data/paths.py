"""Where data sets are read from and where derived files are written.

Two environment variables steer this:

``PYRO_LVM_DATA``
    The data root: a folder holding data sets in torchvision's layout
    (``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``) and the fixed binarized MNIST
    (``binarized_mnist/binarized_mnist_{train,valid,test}.amat.gz``). It may be
    read-only: nothing is ever written into it. An explicit ``root`` argument (or
    the command line's ``--data-root``) wins over the variable.

``PYRO_LVM_CACHE``
    A writable folder for derived files: the idx files that torchvision extracts
    from the gzip'd originals, and downloads. Defaults to ``~/.cache/pyro_lvm``.
    With neither variable set, the cache is also the data root, so a data set
    downloaded once is found again.

Every path that is there but cannot be used (a data root that does not exist, a
file where a folder belongs, an unreadable file) raises a
:class:`~pyro_lvm.errors.DataError` that names the path and the fix, before any
reader sees it.
"""
import os

from ..errors import DataError

__all__ = ["DATA_ENV", "CACHE_ENV", "data_root", "existing_data_root", "cache_dir",
           "check_readable_file", "check_readable_folder", "read_bytes"]

DATA_ENV = "PYRO_LVM_DATA"
CACHE_ENV = "PYRO_LVM_CACHE"
_DEFAULT_CACHE = os.path.join("~", ".cache", "pyro_lvm")
_LAYOUT = "MNIST/raw/*.gz, FashionMNIST/raw/*.gz or binarized_mnist/*.amat.gz"


def _absolute(path):
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def cache_dir():
    """The writable cache folder, created if missing.

    :returns: ``$PYRO_LVM_CACHE`` if set and non-empty, else ``~/.cache/pyro_lvm``,
        as an absolute path.
    :rtype: str
    :raises DataError: if the path is a file, or the folder cannot be created.
    """
    path = _absolute(os.environ.get(CACHE_ENV) or _DEFAULT_CACHE)
    fix = f"point {CACHE_ENV} at a writable folder, or unset it to use {_DEFAULT_CACHE}"
    if os.path.exists(path) and not os.path.isdir(path):
        raise DataError(f"the cache {path} is a file, not a folder; {fix}")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the cache folder {path} ({error.strerror}); {fix}") from None
    return path


def data_root(root=None):
    """The folder data sets are read from.

    :param root: an explicit folder; wins over everything else.
    :type root: str or os.PathLike or None
    :returns: ``root`` if given, else ``$PYRO_LVM_DATA`` if set and non-empty, else
        :func:`cache_dir`, as an absolute path. The folder need not exist.
    :rtype: str
    """
    if root is not None:
        return _absolute(root)
    from_env = os.environ.get(DATA_ENV)
    if from_env:
        return _absolute(from_env)
    return cache_dir()


def existing_data_root(root=None):
    """:func:`data_root`, checked to be a readable folder.

    :raises DataError: naming the folder, where it came from and the fix, if it does
        not exist, is a file or cannot be read.
    :rtype: str
    """
    path = data_root(root)
    origin = ("given as --data-root / root=" if root is not None
              else f"from {DATA_ENV}" if os.environ.get(DATA_ENV) else "the cache, the default")
    fix = f"point --data-root / {DATA_ENV} at a folder holding {_LAYOUT}"
    if not os.path.exists(path):
        raise DataError(f"data root {path} ({origin}) does not exist; {fix}")
    if not os.path.isdir(path):
        raise DataError(f"data root {path} ({origin}) is a file, not a folder; {fix}")
    check_readable_folder(path)
    return path


def check_readable_folder(path):
    """Raise a :class:`~pyro_lvm.errors.DataError` unless ``path`` is a folder this process may list."""
    if not os.path.isdir(path):
        raise DataError(f"{path} is not a folder; a data set is expected there")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(f"cannot read the folder {path} (permission denied); make it readable "
                        f"(chmod a+rx) or point --data-root / {DATA_ENV} elsewhere")


def check_readable_file(path):
    """Raise a :class:`~pyro_lvm.errors.DataError` unless ``path`` is a regular file this process may read."""
    if not os.path.isfile(path):
        kind = "a folder" if os.path.isdir(path) else "a broken link" if os.path.lexists(path) else "missing"
        raise DataError(f"{path} is {kind}, where a data file is expected; replace it with the file")
    if not os.access(path, os.R_OK):
        raise DataError(f"cannot read {path} (permission denied); make it readable (chmod a+r) "
                        f"or point --data-root / {DATA_ENV} elsewhere")


def read_bytes(path):
    """The whole content of a data file.

    :raises DataError: naming the file, if it is not a readable regular file.
    :rtype: bytes
    """
    check_readable_file(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise DataError(f"cannot read {path} ({error.strerror or error}); check the file "
                        "and its permissions") from None
