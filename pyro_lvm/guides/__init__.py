"""Guides (variational families) that pair with the models by site name.

* :class:`AmortizedNormalGuide`: the diagonal Normal of any ``(loc, scale)`` encoder.
* :class:`FullCovarianceGuide`: a full-covariance Normal (Kingma & Welling 2019, sec. 2.5.1).
* :class:`IAFGuide`: inverse autoregressive flow (Kingma et al. 2016) from Pyro's transforms.

The heads in :mod:`pyro_lvm.guides.heads` are what :class:`~pyro_lvm.models.VAE` uses for its
``guide="fullcov" | "iaf"`` options.
"""
from pyro_lvm.guides.amortized import EncodedGuide
from pyro_lvm.guides.full_covariance import FullCovarianceGuide, full_covariance_guide
from pyro_lvm.guides.heads import FLOW_UPDATES, GUIDE_FAMILIES, FullCovarianceHead, IAFHead, make_head
from pyro_lvm.guides.iaf import IAFGuide, iaf_guide
from pyro_lvm.guides.normal import AmortizedNormalGuide

__all__ = ["AmortizedNormalGuide", "EncodedGuide", "FLOW_UPDATES", "FullCovarianceGuide", "FullCovarianceHead",
           "GUIDE_FAMILIES", "IAFGuide", "IAFHead", "full_covariance_guide", "iaf_guide", "make_head"]
