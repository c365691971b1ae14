"""Guides (variational families) that pair with the models by site name."""
from pyro_lvm.guides.normal import AmortizedNormalGuide

__all__ = ["AmortizedNormalGuide"]
