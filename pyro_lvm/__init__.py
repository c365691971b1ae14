"""pyro-lvm: deep latent-variable models built on Pyro and PyTorch."""

__version__ = "0.1.0"
