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
"""
import os

__all__ = ["DATA_ENV", "CACHE_ENV", "data_root", "cache_dir"]

DATA_ENV = "PYRO_LVM_DATA"
CACHE_ENV = "PYRO_LVM_CACHE"
_DEFAULT_CACHE = os.path.join("~", ".cache", "pyro_lvm")


def _absolute(path):
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def cache_dir():
    """The writable cache folder, created if missing.

    :returns: ``$PYRO_LVM_CACHE`` if set and non-empty, else ``~/.cache/pyro_lvm``,
        as an absolute path.
    :rtype: str
    """
    path = _absolute(os.environ.get(CACHE_ENV) or _DEFAULT_CACHE)
    os.makedirs(path, exist_ok=True)
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
