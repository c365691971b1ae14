"""Neural building blocks: MLPs, convolutional encoders/decoders and distribution heads.

Encoders map data ``x`` to the ``(loc, scale)`` of a diagonal Normal; decoders map latents
``z`` (with any leading sample dimensions) to distribution parameters shaped like the data.
"""
from pyro_lvm.nn.conv import ConvDecoder, ConvEncoder
from pyro_lvm.nn.heads import NormalHead
from pyro_lvm.nn.mlp import MLP, MLPDecoder, MLPEncoder, activation

__all__ = ["MLP", "MLPDecoder", "MLPEncoder", "ConvDecoder", "ConvEncoder", "NormalHead", "activation"]
