"""Neural building blocks: MLPs, convolutional encoders/decoders, masked convolutions and
distribution heads (plain torch, no Pyro).

Encoders map data ``x`` to the ``(loc, scale)`` of a diagonal Normal; decoders map latents
``z`` (with any leading sample dimensions) to distribution parameters shaped like the data;
:class:`PixelCNNDecoder` also takes the data, ``logits = decoder(z, x)``, and samples pixel by pixel.
"""
from pyro_lvm.nn.conv import ConvDecoder, ConvEncoder
from pyro_lvm.nn.heads import NormalHead
from pyro_lvm.nn.masked import GatedLayer, GatedStack, MaskedConv2d
from pyro_lvm.nn.mlp import MLP, MLPDecoder, MLPEncoder, activation
from pyro_lvm.nn.pixelcnn_decoder import PixelCNNDecoder

__all__ = ["MLP", "MLPDecoder", "MLPEncoder", "ConvDecoder", "ConvEncoder", "GatedLayer", "GatedStack",
           "MaskedConv2d", "NormalHead", "PixelCNNDecoder", "activation"]
