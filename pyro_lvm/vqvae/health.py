"""Codebook health over a whole epoch rather than a single batch.

A batch of a few thousand vectors can miss codes that the epoch uses, and a batch perplexity
says little about how many codes the model can actually call on; so the training loop adds every
batch's code counts into a :class:`CodebookUsage` and reports its summary once per epoch.
"""
import torch

from pyro_lvm.vqvae.quantizer import perplexity


class CodebookUsage:
    """Histogram of code assignments, accumulated over many batches.

    :param int num_codes: codebook size :math:`K`.
    """

    def __init__(self, num_codes):
        self.num_codes = num_codes
        self.counts = torch.zeros(num_codes, dtype=torch.long)

    @classmethod
    def from_counts(cls, counts):
        """A tracker holding a finished histogram (e.g. one saved in a training history)."""
        usage = cls(len(counts))
        usage.update(counts)
        return usage

    def update(self, counts):
        """Add one batch's per-code counts (the ``counts`` field of a quantizer's output)."""
        counts = torch.as_tensor(counts).detach().cpu().long()
        if counts.shape != (self.num_codes,):
            raise ValueError(f"expected counts of shape ({self.num_codes},), got {tuple(counts.shape)}")
        self.counts += counts

    def summary(self, prefix=""):
        """``codes_used``, ``dead_codes`` (never assigned), ``usage`` (fraction used) and ``perplexity``.

        :param str prefix: prepended to each key, e.g. ``"train_"``.
        """
        used = int((self.counts > 0).sum())
        return {
            prefix + "codes_used": used,
            prefix + "dead_codes": self.num_codes - used,
            prefix + "usage": used / self.num_codes,
            prefix + "perplexity": float(perplexity(self.counts)),
        }
