"""Distribution heads: layers whose outputs parameterise a distribution."""
import torch
from torch import nn


class NormalHead(nn.Module):
    """Linear map to the ``(loc, scale)`` of a diagonal Normal, ``scale = exp(log_scale)``.

    The exponential matches the parameterisation of Kingma & Welling (2014, appendix C.2)
    and Burda et al. (2015); ``min_scale`` keeps the density finite in float32.
    """

    def __init__(self, in_features, latent_dim, min_scale=1e-6):
        super().__init__()
        self.loc = nn.Linear(in_features, latent_dim)
        self.log_scale = nn.Linear(in_features, latent_dim)
        self.min_scale = min_scale

    def forward(self, h):
        return self.loc(h), torch.exp(self.log_scale(h)) + self.min_scale
