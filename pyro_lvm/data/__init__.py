"""Data sets held whole in memory, and fast loaders over them.

Use :func:`load_dataset` with a name: ``"mnist"``, ``"fashion-mnist"``,
``"binarized-mnist"``, ``"embedded"``, ``"synthetic"``, ``"cifar10"`` or ``"auto"``, or with the
path of a ``.npy``, ``.npz`` or ``.pt`` file of one's own images (see
:mod:`pyro_lvm.data.tensor_file`). It returns an :class:`ImageDataset` of float32
tensors ``(N, C, H, W)`` (``(N, 1, 28, 28)`` for the MNIST family) whose
:meth:`~ImageDataset.train_loader` and :meth:`~ImageDataset.test_loader` give
:class:`TensorLoader` batches. Binarize with ``binarize="static"`` or
``"dynamic"`` before fitting a Bernoulli likelihood; :func:`check_binary` says so
when it was forgotten. ``eight_bit=True`` keeps the integer pixel values 0..255 for
discrete likelihoods and dequantization (:mod:`~pyro_lvm.data.eight_bit`).

Any data that cannot be used (a missing or unreadable folder or file, a
truncated or corrupt file, an empty split, NaN pixels, pixels outside [0, 1] when
binarizing) raises one :class:`~pyro_lvm.errors.DataError` whose one-line
message names the problem and the fix. This package does not import Pyro, and
imports torchvision only to read or fetch MNIST and Fashion-MNIST.

Environment variables (see :mod:`pyro_lvm.data.paths`):

``PYRO_LVM_DATA``
    The data root, read-only is fine: ``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``
    (torchvision's layout) and ``binarized_mnist/*.amat.gz``. An explicit
    ``root=`` (or ``--data-root``) wins.
``PYRO_LVM_CACHE``
    Where extracted and downloaded files go; default ``~/.cache/pyro_lvm``.

The embedded default (``assets/mnist_small.npz``) is a subset of MNIST, by
Y. LeCun, C. Cortes and C. J. C. Burges: 500 images of each digit from the MNIST
training file and 100 of each digit from the test file (5000 and 1000 in all),
drawn without replacement by ``numpy.random.default_rng(0)``; the chosen indices
are stored in the file. See :mod:`pyro_lvm.data.embedded` and
:mod:`pyro_lvm.data.make_embedded`.
"""
from .binarize import binarize_dataset
from .checks import check_binary, check_finite, check_probabilities
from .dataset import BINARIZE_MODES, ImageDataset
from .eight_bit import NUM_LEVELS, check_eight_bit, to_eight_bit
from .load import DATASET_NAMES, EmbeddedDataWarning, load_dataset
from .loader import TensorLoader
from .paths import cache_dir, data_root, existing_data_root
from .synthetic import load_synthetic, synthetic_images
from .tensor_file import TENSOR_SUFFIXES, load_tensor_file

__all__ = [
    "BINARIZE_MODES",
    "DATASET_NAMES",
    "EmbeddedDataWarning",
    "ImageDataset",
    "NUM_LEVELS",
    "TENSOR_SUFFIXES",
    "TensorLoader",
    "binarize_dataset",
    "cache_dir",
    "check_binary",
    "check_eight_bit",
    "check_finite",
    "check_probabilities",
    "data_root",
    "existing_data_root",
    "load_dataset",
    "load_synthetic",
    "load_tensor_file",
    "synthetic_images",
    "to_eight_bit",
]
