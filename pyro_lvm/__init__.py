"""pyro-lvm: deep latent-variable models built on Pyro and PyTorch.

``pyro_lvm.save_model(model, folder)`` and ``pyro_lvm.load_model(folder)`` save and rebuild a
whole trained model (see :mod:`pyro_lvm.runs.saved`); they are imported on first use, so that
``import pyro_lvm.vqvae`` stays free of Pyro.
"""

__version__ = "0.2.0"


def __getattr__(name):
    if name in ("save_model", "load_model"):
        from pyro_lvm.runs import saved

        return getattr(saved, name)
    raise AttributeError(f"module 'pyro_lvm' has no attribute {name!r}")
