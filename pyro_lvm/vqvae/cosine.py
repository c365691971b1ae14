r"""Cosine-similarity codebooks: codes and encoder outputs on the unit sphere.

Yu et al. (2022), section 3.2 ("l2-normalized codes"): both the encoder output and every code are
projected onto the unit sphere before the search,

.. math::

    \bar z = z / \|z\|_2, \qquad \bar e_j = e_j / \|e_j\|_2, \qquad
    k = \arg\min_j \|\bar z - \bar e_j\|_2^2 = \arg\max_j \bar z^\top \bar e_j,

so the nearest code is the one of largest cosine similarity, the losses of eq. 3 of van den Oord
et al. (2017) compare unit vectors (:math:`\|\bar z - \bar e\|^2 = 2 - 2\cos`), and the decoder
reads the unit code :math:`\bar e_k` (straight-through from :math:`\bar z`). The paper reports
that this improves codebook usage and training stability. A moving-average codebook keeps the
averages of the normalized vectors assigned to each code and re-normalizes the result; k-means
initialisation becomes spherical k-means (centres re-normalized after each Lloyd step).

References

1. J. Yu et al. Vector-quantized Image Modeling with Improved VQGAN. ICLR 2022 (section 3.2).
2. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning. NeurIPS 2017.
"""
import torch.nn.functional as F

from pyro_lvm.vqvae.quantizer import VectorQuantizer, VectorQuantizerEMA


def l2_normalize(x, eps=1e-12):
    """Rows of ``x`` divided by their Euclidean norm (``eps`` guards the zero vector)."""
    return F.normalize(x, dim=-1, eps=eps)


class CosineVectorQuantizer(VectorQuantizer):
    """:class:`~pyro_lvm.vqvae.quantizer.VectorQuantizer` (codebook learned by gradient) with
    l2-normalized codes and inputs. Same parameters."""

    def _normalize(self, x):
        return l2_normalize(x)


class CosineVectorQuantizerEMA(VectorQuantizerEMA):
    """:class:`~pyro_lvm.vqvae.quantizer.VectorQuantizerEMA` (moving-average codebook) with
    l2-normalized codes and inputs. Same parameters."""

    def _normalize(self, x):
        return l2_normalize(x)
