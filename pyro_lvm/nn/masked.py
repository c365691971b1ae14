r"""Masked convolutions and the gated PixelCNN stack, shared by every autoregressive image model.

A gated PixelCNN factorises an image (or a grid of codes) in raster order,
:math:`p(x) = \prod_{i,j} p(x_{ij} \mid x_{<(i,j)})`, where :math:`<(i,j)` means every row above
and the positions to the left in the same row. Each gated layer (van den Oord et al. 2016, eq. 2)
computes

.. math::

    y = \tanh(W_f * x + V_f^\top h + U_f * s) \odot \sigma(W_g * x + V_g^\top h + U_g * s)

on two stacks, where the conditioning is optional: :math:`h` a global vector (eq. 4; the latent
:math:`z` of a VAE decoder) and :math:`s` a map of the grid's size (eq. 5, through a 1x1
convolution; the coarser codes of a VQ-VAE-2, or a feature map computed from :math:`z`).

The *vertical* stack uses a masked :math:`k \times k` convolution that sees the current row and
the rows above; it reaches the horizontal stack only after a shift of one row down, so position
:math:`(i, j)` receives information from rows :math:`< i` over the full width of its field (no
blind spot). The *horizontal* stack uses a masked :math:`1 \times k` convolution over the current
row: mask ``A`` in the first layer sees only columns :math:`< j`, mask ``B`` in later layers also
column :math:`j` (whose features by then hold only earlier inputs). Later horizontal layers are
residual.

Receptive field. With a first kernel of width :math:`k_0` and :math:`L - 1` further layers of
width :math:`k`, let :math:`R = \lfloor k_0/2 \rfloor + (L - 1)\lfloor k/2 \rfloor`. The output at
:math:`(i, j)` depends only on inputs :math:`(r, c)` before :math:`(i, j)` in raster order with

* :math:`r = i` and :math:`j - R \le c < j` (the current row), or
* :math:`i - R - 1 \le r < i` and :math:`|c - j| \le R` (the rows above),

(:attr:`GatedStack.reach` is :math:`R`). Sampling uses it: :meth:`GatedStack.from_rows_above` runs
the vertical stack once per row on the :math:`R + 1` rows above, and :meth:`GatedStack.features_at`
the horizontal stack on the :math:`R + 1` positions to the left, so a step's cost does not grow
with the image.

References

1. A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves, K. Kavukcuoglu.
   Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
"""
import torch
import torch.nn.functional as F
from torch import nn


def vertical_mask(kernel_size):
    """``(k, k)`` mask keeping the rows up to and including the centre row."""
    mask = torch.zeros(kernel_size, kernel_size)
    mask[: kernel_size // 2 + 1] = 1.0
    return mask


def horizontal_mask(kernel_size, include_centre):
    """``(1, k)`` mask keeping the columns left of the centre, and the centre for mask ``B``."""
    mask = torch.zeros(1, kernel_size)
    mask[0, : kernel_size // 2 + int(include_centre)] = 1.0
    return mask


class MaskedConv2d(nn.Conv2d):
    """A same-size convolution whose kernel is multiplied by a fixed 0/1 mask.

    :param int in_channels: input channels.
    :param int out_channels: output channels.
    :param torch.Tensor mask: ``(kh, kw)`` mask with odd sides; it fixes the kernel size.
    """

    def __init__(self, in_channels, out_channels, mask):
        kh, kw = mask.shape
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"masked convolutions need odd kernel sides, got {kh}x{kw}")
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer("mask", mask.clone())

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _gate(x):
    value, gate = x.chunk(2, dim=1)
    return torch.tanh(value) * torch.sigmoid(gate)


def _shift_down(x):
    """Move every row one down, filling the top row with zeros."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


class GatedLayer(nn.Module):
    """One layer of the gated PixelCNN: a vertical and a horizontal stack.

    :param int channels: channels of both stacks.
    :param int kernel_size: odd kernel width :math:`k`.
    :param str mask_type: ``"A"`` for the first layer (excludes the current position) or ``"B"``.
    :param int cond_channels: channels of an optional conditioning map (eq. 5); 0 for none.
    :param int cond_features: size of an optional global conditioning vector (eq. 4); 0 for none.
    :param int in_channels: input channels (a first layer may take fewer than ``channels``).
    """

    def __init__(self, channels, kernel_size, mask_type, cond_channels=0, cond_features=0, in_channels=None):
        super().__init__()
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        in_channels = in_channels or channels
        if mask_type == "B" and in_channels != channels:
            raise ValueError("a residual (mask 'B') layer needs in_channels == channels")
        self.vertical = MaskedConv2d(in_channels, 2 * channels, vertical_mask(kernel_size))
        self.horizontal = MaskedConv2d(in_channels, 2 * channels,
                                       horizontal_mask(kernel_size, mask_type == "B"))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        self.condition = nn.Conv2d(cond_channels, 4 * channels, 1) if cond_channels else None
        self.condition_vector = nn.Linear(cond_features, 4 * channels) if cond_features else None
        self.residual = mask_type == "B"
        self.kernel_size = kernel_size

    def conditioning(self, cond=None, cond_vector=None):
        """The conditioning terms ``(vertical, horizontal)`` added inside the gates, each
        broadcastable to ``(N, 2 * channels, H, W)``; ``(0, 0)`` for an unconditioned layer."""
        total = 0
        for net, value, name in ((self.condition, cond, "cond map"),
                                 (self.condition_vector, cond_vector, "cond vector")):
            if net is None:
                continue
            if value is None:
                raise ValueError(f"this layer was built to be conditioned and needs a {name}")
            term = net(value)
            total = total + (term[:, :, None, None] if value.dim() == 2 else term)
        return total.chunk(2, dim=1) if torch.is_tensor(total) else (0, 0)

    def vertical_step(self, v, cond_v=0):
        """The vertical stack alone: its output and its pre-activations (before conditioning)."""
        v_pre = self.vertical(v)
        return _gate(v_pre + cond_v), v_pre

    def horizontal_step(self, h, from_above, cond_h=0):
        """The horizontal stack, given the vertical stack's contribution ``from_above`` (the
        1x1 map of the pre-activations one row up)."""
        h_out = self.horizontal_out(_gate(self.horizontal(h) + from_above + cond_h))
        return (h + h_out) if self.residual else h_out

    def forward(self, v, h, cond=None, cond_vector=None):
        cond_v, cond_h = self.conditioning(cond, cond_vector)
        v_out, v_pre = self.vertical_step(v, cond_v)
        return v_out, self.horizontal_step(h, self.vertical_to_horizontal(_shift_down(v_pre)), cond_h)


class GatedStack(nn.ModuleList):
    """``num_layers`` gated layers, the first with mask ``A``: input map to horizontal features.

    A :class:`~torch.nn.ModuleList` so that its layers keep the state-dict keys ``"0.vertical..."``.

    :param int channels: channels of the stacks.
    :param int num_layers: number of gated layers.
    :param int kernel_size: odd kernel width of layers after the first.
    :param int first_kernel_size: odd kernel width of the first layer.
    :param int cond_channels: channels of an optional conditioning map.
    :param int cond_features: size of an optional global conditioning vector.
    :param int in_channels: channels of the input map; default ``channels``.
    """

    def __init__(self, channels, num_layers, kernel_size=3, first_kernel_size=5, cond_channels=0,
                 cond_features=0, in_channels=None):
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        super().__init__(
            [GatedLayer(channels, first_kernel_size, "A", cond_channels, cond_features, in_channels)]
            + [GatedLayer(channels, kernel_size, "B", cond_channels, cond_features)
               for _ in range(num_layers - 1)])

    @property
    def reach(self):
        """:math:`R`: the receptive field's half-width (see the module docstring)."""
        return sum(layer.kernel_size // 2 for layer in self)

    def from_rows_above(self, x, i, cond=None, cond_vector=None):
        """Per layer, what the vertical stack passes to the horizontal stack along row ``i``
        (shape ``(N, 2 * channels, 1, W)`` each), computed from input rows ``i - R - 1 .. i - 1``
        only: exact, since nothing farther up is in the receptive field of row ``i``."""
        top = max(0, i - self.reach - 1)
        v, cond = x[:, :, top:i], None if cond is None else cond[:, :, top:i]
        contributions = []
        for layer in self:
            if i == 0:  # the shift down fills the top row with zeros
                v_pre_above = x.new_zeros(len(x), layer.vertical.out_channels, 1, x.shape[-1])
            else:
                v, v_pre = layer.vertical_step(v, layer.conditioning(cond, cond_vector)[0])
                v_pre_above = v_pre[:, :, -1:]
            contributions.append(layer.vertical_to_horizontal(v_pre_above))
        return contributions

    def features_at(self, x, i, j, from_above, cond=None, cond_vector=None):
        """Horizontal features ``(N, channels, 1, 1)`` at ``(i, j)``, equal to those of
        :meth:`forward` there, computed from ``from_above`` (:meth:`from_rows_above` of row ``i``)
        and the inputs ``(i, j - R) .. (i, j)`` only: one raster-order sampling step."""
        cols = slice(max(0, j - self.reach), j + 1)
        h, cond = x[:, :, i:i + 1, cols], None if cond is None else cond[:, :, i:i + 1, cols]
        for layer, above in zip(self, from_above):
            h = layer.horizontal_step(h, above[:, :, :, cols], layer.conditioning(cond, cond_vector)[1])
        return h[:, :, :, -1:]

    def forward(self, x, cond=None, cond_vector=None):
        """Horizontal features ``(N, channels, H, W)``; those at (i, j) see only earlier inputs."""
        v = h = x
        for layer in self:
            v, h = layer(v, h, cond, cond_vector)
        return h


def output_head(channels, hidden_channels, out_channels):
    """Per-position 1x1 network from the stack's features to logits (ReLU, 1x1, ReLU, 1x1)."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden_channels, 1), nn.ReLU(),
                         nn.Conv2d(hidden_channels, out_channels, 1))
