"""Fixed seed, float64 where precision matters, and Pyro validation on for every test."""
import os

import pyro
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed_and_validation():
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    pyro.enable_validation(True)
    torch.set_num_threads(1)
    yield
    pyro.clear_param_store()


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def shared_data():
    """The read-only real data folder: $PYRO_LVM_DATA, else ../shared/data beside the repo."""
    root = os.environ.get("PYRO_LVM_DATA") or os.path.join(REPO, "..", "shared", "data")
    if not os.path.isdir(os.path.join(root, "MNIST", "raw")):
        pytest.skip(f"real data not found at {root}; set PYRO_LVM_DATA")
    return root
