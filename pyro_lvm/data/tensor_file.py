"""A user's own images from one ``.npy``, ``.npz`` or ``.pt`` file.

``load_dataset(path)`` (and the command line's ``--data path``) reads:

``.npz``
    arrays ``train`` and ``test``, and optionally ``train_labels`` and
    ``test_labels``; any other key is an error, so no array is silently ignored.
``.pt``
    a dict of tensors with the same keys, saved by ``torch.save``.
``.npy``
    one array of images; its last ``N // 10`` images (at least one) are held out
    as the test split, as the data set's ``source`` says.

Images are ``(N, H, W)`` (one channel, made ``(N, 1, H, W)``) or ``(N, C, H, W)``,
each split of one ``(C, H, W)``. An array that looks like ``(N, H, W, C)`` (1, 3
or 4 last, more than 4 second) is refused rather than misread as channels.
``uint8`` pixels are divided by 255; ``bool`` becomes 0 and 1; floating-point
pixels are kept (as float32) and must be finite. Labels are one integer per
image. The data set is named after the file's stem.

Loading never runs code from the file: ``.npy``/``.npz`` are read with
``allow_pickle=False`` and ``.pt`` with ``torch.load(..., weights_only=True)``, so
a pickle of anything but tensors is refused. Every problem raises a
:class:`~pyro_lvm.errors.DataError` naming the file.
"""
import os
import pickle

import numpy as np
import torch

from ..errors import DataError
from .checks import check_finite
from .dataset import ImageDataset
from .paths import check_readable_file

__all__ = ["TENSOR_SUFFIXES", "is_tensor_file", "load_tensor_file"]

TENSOR_SUFFIXES = (".npy", ".npz", ".pt")
_KEYS = ("train", "test", "train_labels", "test_labels")
_LAYOUT = ("save the images as train and test (and optionally train_labels and test_labels), "
           "e.g. numpy.savez(path, train=x_train, test=x_test)")


def is_tensor_file(name):
    """Whether ``name`` names a file this module reads (by its suffix; it need not exist)."""
    return isinstance(name, (str, os.PathLike)) and os.fspath(name).lower().endswith(TENSOR_SUFFIXES)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _read_pt(path):
    content = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(content, dict):
        raise DataError(f"{path} holds a {type(content).__name__}, not a dict of tensors; {_LAYOUT} "
                        "with torch.save({'train': ..., 'test': ...}, path)")
    return content


def _read(path):
    """The arrays in the file, by key; every failure of the reader becomes a DataError."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".npy":
            return {"images": np.load(path, allow_pickle=False)}
        return _read_npz(path) if suffix == ".npz" else _read_pt(path)
    except DataError:
        raise
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise DataError(f"cannot load {path}: it is not a readable .pt file ({_first_line(error)})") from None
        raise DataError(f"refusing to load {path}: it holds Python objects other than tensors and plain "
                        "values, which could run code when unpickled; save a dict of tensors") from None
    except Exception as error:  # any reader failure means a bad file, reported as such
        safe = "allow_pickle=False" if suffix != ".pt" else "weights_only=True"
        raise DataError(f"cannot load {path} ({type(error).__name__}: {_first_line(error)}); "
                        f"it must hold plain numeric arrays, loadable with {safe}") from None


def _as_tensor(value, what):
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise DataError(f"{what} is an object array; save plain numeric arrays")
        return torch.from_numpy(np.ascontiguousarray(value))
    if torch.is_tensor(value):
        return value.detach().cpu()
    raise DataError(f"{what} is a {type(value).__name__}, not an array or tensor; {_LAYOUT}")


def _images(value, what):
    x = _as_tensor(value, what)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    elif x.dim() != 4:
        raise DataError(f"{what} has shape {tuple(x.shape)}; expected images (N, H, W) or "
                        "(N, C, H, W), e.g. reshape flat (N, 784) MNIST rows to (N, 28, 28)")
    elif x.shape[-1] in (1, 3, 4) and x.shape[1] > 4:
        raise DataError(f"{what} has shape {tuple(x.shape)}, which looks like channels last "
                        "(N, H, W, C); transpose it to (N, C, H, W), e.g. x.transpose(0, 3, 1, 2)")
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255
    elif x.dtype == torch.bool or x.is_floating_point():
        x = x.to(torch.float32)
    else:
        raise DataError(f"{what} has dtype {x.dtype}; expected uint8 pixels (0..255), bool, or "
                        "floating-point pixels (e.g. in [0, 1])")
    return check_finite(x, what)


def _labels(value, what):
    if value is None:
        return None
    y = _as_tensor(value, what)
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise DataError(f"{what} must be one integer class per image, got dtype {y.dtype} and "
                        f"shape {tuple(y.shape)}")
    return y.long()


def _split_last(images, path):
    """Hold out the last tenth of one array as the test split."""
    x = _images(images, f"the array in {path}")
    if len(x) < 2:
        raise DataError(f"{path} holds {len(x)} images, too few to hold out a test split (the last "
                        "tenth, at least one) and train on the rest; save more images, or an .npz "
                        "with train and test")
    n_test = max(1, len(x) // 10)
    return {"train": x[:-n_test], "test": x[-n_test:]}, (
        f"{path} (the last {n_test} of {len(x)} images held out as the test split)")


def load_tensor_file(path):
    """Load a user's images from a ``.npy``, ``.npz`` or ``.pt`` file (see the module docstring).

    :param path: the file.
    :type path: str or os.PathLike
    :rtype: ImageDataset
    :raises DataError: naming the file and the fix, if it is missing, unreadable,
        unsafe, or holds anything but the documented arrays.
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        raise DataError(f"data file {path} does not exist; pass an existing .npy, .npz or .pt file")
    check_readable_file(path)
    arrays = _read(path)
    if "images" in arrays:
        splits, source = _split_last(arrays["images"], path)
        return ImageDataset(name=_stem(path), source=source, **splits)
    unknown = sorted(set(arrays) - set(_KEYS))
    missing = [key for key in ("train", "test") if key not in arrays]
    if unknown or missing:
        raise DataError(f"{path} holds the keys {sorted(map(str, arrays))}; expected train and test and "
                        f"optionally train_labels and test_labels; {_LAYOUT}")
    train, test = (_images(arrays[k], f"{k} in {path}") for k in ("train", "test"))
    return ImageDataset(
        name=_stem(path), train=train, test=test, source=path,
        train_labels=_labels(arrays.get("train_labels"), f"train_labels in {path}"),
        test_labels=_labels(arrays.get("test_labels"), f"test_labels in {path}"))


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]
