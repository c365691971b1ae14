"""One codebook on every process when a VQ-VAE trains under ``torchrun`` (plain torch).

The gradients of the networks (and of a gradient-learned codebook) are summed over processes by
the training loop (:func:`pyro_lvm.distributed.sum_gradients`). The codebook upkeep of
:mod:`pyro_lvm.vqvae.quantizer` changes buffers outside any gradient, and each process sees
only its own images, so without the three steps below the codebooks drift apart -- or a process
whose batch left a code unused restarts it while the others do not, and then waits forever in
the next collective call:

* *moving averages*: the batch's code counts :math:`n_k` and sums :math:`\\sum_j z_{k,j}` are
  summed over processes before the update of van den Oord et al. (2017), appendix A.1, which is
  then the update of the global batch; the unused-code counters use the same summed counts, so
  every process finds the same dead codes;
* *k-means initialisation*: rank 0 runs Lloyd's iterations on its batch and broadcasts the centres;
* *dead-code restarts*: rank 0 draws the encoder outputs the dead codes move to and broadcasts them.

Every function is the identity in a single process.
"""
from pyro_lvm.distributed import all_reduce_sum, broadcast, world_size

__all__ = ["all_reduce_sum", "broadcast", "world_size"]
