r"""Vector quantizers: nearest codebook entry, straight-through gradient, codebook upkeep.

Both quantizers take a grid of encoder outputs :math:`z_e(x)` of shape ``(N, D, *spatial)``,
replace every ``D``-vector by its nearest codebook entry
:math:`e_k,\ k = \arg\min_j \|z_e - e_j\|_2^2` (van den Oord et al. 2017, eq. 1-2), and return
named outputs (:class:`VQOutput`).

Shared upkeep, all of it only in training mode:

- *k-means initialisation*: on the first training batch the codebook is set to the centres
  found by a few Lloyd iterations on that batch's encoder outputs, so no code starts far from
  the data. With the count floor below, the moving-average counts start at the cluster sizes.
- *dead-code replacement*, two rules that may be combined:

  * the *count floor* (``dead_code_threshold``, the default): every step, each code whose
    moving-average count :math:`N_k` (decay :math:`\gamma`) is below the floor is moved onto a
    randomly chosen encoder output of the current batch and its count is set to the floor. This
    also replaces rarely used codes, which spreads use evenly over the codebook (the random
    restarts of Dhariwal et al. 2020, section 2.2, reset codes whose mean usage falls below a
    threshold; this form is the vector-quantize-pytorch library's ``threshold_ema_dead_code``).
    With ``replacement="error"`` the new position is drawn in proportion to the squared
    quantization error instead of uniformly;
  * the *unused-batches* rule (``restart_after``): a code that no vector in ``restart_after``
    consecutive training batches was assigned to is moved onto a random encoder output.

  ``num_restarts`` counts every replacement; the training loop reports them per epoch.

Reduced precision: under ``torch.autocast`` the distances, the nearest-code search and the
upkeep run in float32 (bfloat16 distances change about 0.6% of the code choices of an MNIST
VQ-VAE), and ``quantized`` comes back in the input's dtype.

Under ``torchrun`` the counts and sums of the upkeep are summed over processes and the k-means
centres and restart vectors are broadcast from rank 0 (:mod:`pyro_lvm.vqvae.distributed`), so
every process holds the same codebook.

References

1. A. van den Oord, O. Vinyals, K. Kavukcuoglu. Neural Discrete Representation Learning.
   NeurIPS 2017 (eq. 3 for the loss, appendix A.1 for the moving-average codebook).
2. A. Razavi, A. van den Oord, O. Vinyals. Generating Diverse High-Fidelity Images with
   VQ-VAE-2. NeurIPS 2019.
3. J. Dhariwal et al. Jukebox: A Generative Model for Music. 2020 (section 2.2: random restarts
   of codes whose usage falls below a threshold, at encoder outputs).
4. D. Arthur, S. Vassilvitskii. k-means++: The Advantages of Careful Seeding. SODA 2007
   (:math:`D^2` weighting).
"""
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from pyro_lvm.vqvae.distributed import all_reduce_sum, broadcast, world_size


class VQOutput(NamedTuple):
    """What a quantizer returns for one grid of encoder outputs.

    :ivar quantized: :math:`z_q` with the input's shape ``(N, D, *spatial)``; its value is the
        chosen codebook vectors, its gradient passes straight through to the input.
    :ivar indices: chosen code per position, ``(N, *spatial)``, dtype long.
    :ivar loss: the quantizer's part of the training loss, eq. 3 of van den Oord et al. (2017)
        without its first (reconstruction) term.
    :ivar codebook_loss: :math:`\\|\\mathrm{sg}[z_e] - e\\|_2^2`, the second term of eq. 3 (the
        codebook moves towards the encoder outputs), mean over elements.
    :ivar commitment_loss: :math:`\\|z_e - \\mathrm{sg}[e]\\|_2^2`, the third term of eq. 3 before
        its weight :math:`\\beta` (the encoder commits to its codes), mean over elements.
    :ivar perplexity: :math:`\\exp(-\\sum_k p_k \\log p_k)` of this batch's code frequencies.
    :ivar counts: uses of each code in this batch, shape ``(K,)`` (residual VQ: its stages' counts
        side by side, ``(N_q K,)``).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
    counts: torch.Tensor


def perplexity(counts):
    r"""Perplexity :math:`\exp H(p)` of the frequencies ``counts / counts.sum()``.

    It equals the number of codes when all are used equally, and 1 when one code takes every
    vector; :math:`0 \log 0` is taken as 0.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    total = counts.sum()
    if total <= 0:
        return torch.tensor(0.0)
    p = counts / total
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
    return entropy.exp().float()


def squared_distances(x, codebook):
    r""":math:`\|x_i - e_k\|_2^2` for rows ``x`` of shape ``(M, D)`` and ``codebook`` ``(K, D)``."""
    return (x.pow(2).sum(1, keepdim=True)
            - 2 * x @ codebook.t()
            + codebook.pow(2).sum(1).unsqueeze(0))


def _random_rows(x, n, weights=None):
    """``n`` rows of ``x`` chosen at random, without replacement where there are enough.

    With ``weights`` (one non-negative number per row) row :math:`i` is drawn with probability
    proportional to ``weights[i]``; rows of weight 0 only where there are too few others.
    """
    if weights is not None:
        weights = weights.to(torch.float64).clamp_min(0) + 1e-300  # every row possible, zero-weight ones last
        return x[torch.multinomial(weights, n, replacement=x.shape[0] < n)]
    if x.shape[0] >= n:
        return x[torch.randperm(x.shape[0], device=x.device)[:n]]
    return x[torch.randint(x.shape[0], (n,), device=x.device)]


def working_dtype(*tensors):
    """float32, or float64 where any of ``tensors`` is float64: the dtype of the nearest-code search."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def no_autocast(device):
    """A context in which autocast is off on ``device``'s type (the quantizers' float32 island)."""
    return torch.autocast(torch.device(device).type, enabled=False)


def channels_last(z, dim):
    """``(N, D, *spatial)`` as rows ``(M, D)``, with the channels-last shape to undo it."""
    if z.dim() < 2 or z.shape[1] != dim:
        raise ValueError(f"expected encoder outputs of shape (N, {dim}, ...), got {tuple(z.shape)}")
    moved = z.movedim(1, -1)
    return moved.reshape(-1, dim), moved.shape


def check_indices(indices, num_codes):
    """``indices`` as a long tensor, after checking that they are integers in ``[0, num_codes)``."""
    indices = torch.as_tensor(indices)
    if indices.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"code indices must be integers, got dtype {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= num_codes):
        raise ValueError(f"code indices must lie in [0, {num_codes}), got values in "
                         f"[{int(indices.min())}, {int(indices.max())}]")
    return indices.long()


#: how a replaced code's new position is drawn from the batch's encoder outputs
REPLACEMENTS = ("uniform", "error")


class _Quantizer(nn.Module):
    """Nearest-neighbour lookup, losses, k-means start and code replacement shared by the quantizers.

    A subclass decides whether the codebook is learned by gradient (:class:`VectorQuantizer`) or
    by moving averages (:class:`VectorQuantizerEMA`) through :meth:`_update_codebook` and
    :meth:`_loss`, and may map vectors onto a manifold first (:meth:`_normalize`, the identity
    here; the unit sphere in :mod:`pyro_lvm.vqvae.cosine`).
    """

    def __init__(self, num_codes, embedding_dim, commitment_cost=0.25, kmeans_init=False,
                 kmeans_iters=10, restart_after=None, dead_code_threshold=None, decay=0.99,
                 replacement="uniform"):
        super().__init__()
        if replacement not in REPLACEMENTS:
            raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
        if num_codes < 1 or embedding_dim < 1:
            raise ValueError(f"need num_codes >= 1 and embedding_dim >= 1, "
                             f"got {num_codes} and {embedding_dim}")
        if restart_after is not None and restart_after < 1:
            raise ValueError(f"restart_after must be a positive number of batches or None, "
                             f"got {restart_after}")
        if dead_code_threshold is not None and not dead_code_threshold > 0:
            raise ValueError(f"dead_code_threshold must be a positive count or None, got {dead_code_threshold}")
        if dead_code_threshold is not None and not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.num_codes = num_codes
        self.embedding_dim = embedding_dim
        self.commitment_cost = commitment_cost
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.restart_after = restart_after
        self.dead_code_threshold = dead_code_threshold
        self.decay = decay
        self.replacement = replacement
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("num_restarts", torch.zeros((), dtype=torch.long))

    index_shape = ()  # per-position shape of ``indices`` beyond the grid (residual VQ: (depth,))

    @staticmethod
    def _initial_codebook(num_codes, embedding_dim):
        bound = 1.0 / num_codes
        return torch.empty(num_codes, embedding_dim).uniform_(-bound, bound)

    def extra_repr(self):
        return (f"num_codes={self.num_codes}, embedding_dim={self.embedding_dim}, "
                f"commitment_cost={self.commitment_cost}, kmeans_init={self.kmeans_init}, "
                f"restart_after={self.restart_after}, dead_code_threshold={self.dead_code_threshold}, "
                f"replacement={self.replacement!r}")

    def _normalize(self, x):
        """Map vectors (rows) onto the space the codes live in; the identity for Euclidean codes."""
        return x

    def codes(self):
        """The codebook as it is searched and looked up, ``(K, D)``."""
        return self._normalize(self.codebook)

    def lookup(self, indices):
        """Codebook vectors for a grid of indices ``(N, *spatial)``, as ``(N, D, *spatial)``."""
        return F.embedding(check_indices(indices, self.num_codes), self.codes()).movedim(-1, 1)

    def forward(self, z):
        flat, shape = channels_last(z, self.embedding_dim)
        with no_autocast(z.device):
            flat = self._normalize(flat.to(working_dtype(z, self.codebook)))
            if self.training and not bool(self.initialized):
                self._kmeans_initialize(flat.detach())
            codebook = self.codes().to(flat.dtype)  # float32 (or 64) even in a model cast to bf16
            indices = squared_distances(flat.detach(), codebook.detach()).argmin(1)
            codes = codebook[indices]
            counts = torch.bincount(indices, minlength=self.num_codes)
            codebook_loss = F.mse_loss(codes, flat.detach())
            commitment_loss = F.mse_loss(flat, codes.detach())
            loss = self._loss(codebook_loss, commitment_loss)
            if self.training:
                with torch.no_grad():
                    everywhere = all_reduce_sum(counts)  # the global batch's counts (these under one process)
                    self._update_codebook(flat.detach(), indices, everywhere)
                    errors = (flat.detach() - codes.detach()).pow(2).sum(1) if self.replacement == "error" else None
                    self._replace_dead_codes(flat.detach(), everywhere, errors)
            quantized = flat + (codes - flat).detach()
        return VQOutput(
            quantized=quantized.reshape(shape).movedim(-1, 1).to(z.dtype),
            indices=indices.reshape(shape[:-1]),
            loss=loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            perplexity=perplexity(counts),
            counts=counts,
        )

    @torch.no_grad()
    def _kmeans_initialize(self, flat):
        """Lloyd's k-means on one batch; an empty cluster keeps its previous centre.

        With the count floor the moving-average counts start at the cluster sizes of the global
        batch (rank 0's sizes times the number of processes under ``torchrun``).
        """
        centres = _random_rows(flat, self.num_codes).clone()
        for _ in range(self.kmeans_iters):
            assign = squared_distances(flat, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, assign, flat)
            sizes = torch.bincount(assign, minlength=self.num_codes).unsqueeze(1)
            centres = self._normalize(torch.where(sizes > 0, sums / sizes.clamp_min(1), centres))
        sizes = torch.bincount(squared_distances(flat, centres).argmin(1), minlength=self.num_codes)
        centres, sizes = broadcast(centres), broadcast(sizes) * world_size()
        self._set_codes(torch.arange(self.num_codes, device=flat.device), centres)
        if self.dead_code_threshold is not None:
            self._set_counts(sizes.to(centres.dtype), centres)
        self.initialized.fill_(True)

    def dead_codes(self):
        """Indices of the codes the upkeep replaces at this step (before any replacement)."""
        dead = torch.zeros(self.num_codes, dtype=torch.bool, device=self.unused_steps.device)
        if self.restart_after is not None:
            dead |= self.unused_steps >= self.restart_after
        if self.dead_code_threshold is not None:
            dead |= self.ema_count < self.dead_code_threshold
        return torch.nonzero(dead).squeeze(1)

    def _replace_dead_codes(self, flat, counts, errors=None):
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        dead = self.dead_codes()
        if dead.numel():
            self._set_codes(dead, broadcast(_random_rows(flat, dead.numel(), errors)))
            self.num_restarts.add_(dead.numel())

    def _reset_count(self):
        """The moving-average count a replaced code starts with: the floor, or one use."""
        return float(self.dead_code_threshold) if self.dead_code_threshold is not None else 1.0

    def _set_codes(self, which, vectors):
        self.codebook.data[which] = vectors.to(self.codebook.dtype)
        self.unused_steps[which] = 0
        if hasattr(self, "ema_count"):
            self._set_counts(torch.full((len(which),), self._reset_count(), device=vectors.device),
                             vectors, which)

    def _set_counts(self, counts, vectors, which=slice(None)):
        self.ema_count[which] = counts.to(self.ema_count.dtype)

    def _track_counts(self, counts):
        self.ema_count.mul_(self.decay).add_(counts.to(self.ema_count.dtype), alpha=1 - self.decay)

    def _update_codebook(self, flat, indices, counts):
        raise NotImplementedError

    def _loss(self, codebook_loss, commitment_loss):
        raise NotImplementedError


class VectorQuantizer(_Quantizer):
    r"""Vector quantizer with a codebook learned by gradient descent.

    The loss it returns is eq. 3 of van den Oord et al. (2017) without the reconstruction term:

    .. math::

        \mathcal{L}_{VQ} = \|\mathrm{sg}[z_e(x)] - e\|_2^2 + \beta\,\|z_e(x) - \mathrm{sg}[e]\|_2^2,

    the first (codebook) term moving the chosen codes towards the encoder outputs and the second
    (commitment) term keeping the encoder outputs near their codes. Both norms are averaged over
    vectors and dimensions. The straight-through estimator
    :math:`z_q = z_e + \mathrm{sg}[e - z_e]` copies the decoder's gradient to the encoder.

    :param int num_codes: codebook size :math:`K`.
    :param int embedding_dim: code dimension :math:`D`.
    :param float commitment_cost: :math:`\beta`, 0.25 as in the paper.
    :param bool kmeans_init: set the codebook by k-means on the first training batch.
    :param int kmeans_iters: Lloyd iterations for that initialisation.
    :param int restart_after: move a code unused for this many consecutive training batches onto
        a random encoder output of the current batch; ``None`` never does.
    :param float dead_code_threshold: move every code whose moving-average count falls below
        this floor onto a random encoder output, every step; ``None`` turns the rule off. The
        counts (buffer ``ema_count``) are kept only for this rule.
    :param float decay: decay :math:`\gamma` of those counts.
    :param str replacement: where a replaced code goes: ``"uniform"``, an encoder output of the
        batch drawn uniformly; ``"error"``, one drawn with probability proportional to its squared
        distance to its code, :math:`\|z_i - e_{k(i)}\|^2` (the :math:`D^2` weighting of k-means++,
        Arthur & Vassilvitskii 2007), so new codes go where the codebook serves the data worst.
    """

    def __init__(self, num_codes, embedding_dim, commitment_cost=0.25, kmeans_init=False,
                 kmeans_iters=10, restart_after=None, dead_code_threshold=None, decay=0.99,
                 replacement="uniform"):
        super().__init__(num_codes, embedding_dim, commitment_cost, kmeans_init, kmeans_iters,
                         restart_after, dead_code_threshold, decay, replacement)
        self.codebook = nn.Parameter(self._initial_codebook(num_codes, embedding_dim))
        if dead_code_threshold is not None:
            self.register_buffer("ema_count", torch.ones(num_codes))

    def _update_codebook(self, flat, indices, counts):
        # the optimizer moves the codebook through codebook_loss; only the counts are tracked here
        if self.dead_code_threshold is not None:
            self._track_counts(counts)

    def _loss(self, codebook_loss, commitment_loss):
        return codebook_loss + self.commitment_cost * commitment_loss


class VectorQuantizerEMA(_Quantizer):
    r"""Vector quantizer whose codebook follows exponential moving averages of its assignments.

    Appendix A.1 of van den Oord et al. (2017): with :math:`n_k` vectors :math:`z_{k,j}` assigned
    to code :math:`k` in a batch and decay :math:`\gamma`,

    .. math::

        N_k \leftarrow \gamma N_k + (1 - \gamma) n_k, \qquad
        m_k \leftarrow \gamma m_k + (1 - \gamma) \sum_j z_{k,j}, \qquad
        e_k = m_k / \tilde N_k,

    where :math:`\tilde N_k = n \frac{N_k + \epsilon}{n + K \epsilon}`, :math:`n = \sum_k N_k`, is
    the Laplace-smoothed count, so a rarely used code never divides by zero. The codebook term of
    eq. 3 is then replaced by these updates, and the loss is only
    :math:`\beta\,\|z_e(x) - \mathrm{sg}[e]\|_2^2` (the codebook term is still reported).
    The moving averages start as if each code had been assigned once, at its own position
    (:math:`N_k = 1, m_k = e_k`), which keeps unused codes in place instead of blowing them up;
    with k-means and the count floor they start at the cluster sizes
    (:math:`N_k = |C_k|, m_k = |C_k| e_k`). A replaced code restarts with :math:`N_k` at the
    floor (or 1) and :math:`m_k = N_k e_k`. Updates happen only in training mode.

    :param int num_codes: codebook size :math:`K`.
    :param int embedding_dim: code dimension :math:`D`.
    :param float commitment_cost: :math:`\beta`.
    :param float decay: :math:`\gamma`, 0.99 as in the paper.
    :param float epsilon: Laplace smoothing :math:`\epsilon`.
    :param bool kmeans_init: set the codebook by k-means on the first training batch.
    :param int kmeans_iters: Lloyd iterations for that initialisation.
    :param int restart_after: see :class:`VectorQuantizer`.
    :param float dead_code_threshold: floor on :math:`N_k`; see :class:`VectorQuantizer`.
    :param str replacement: ``"uniform"`` or ``"error"``; see :class:`VectorQuantizer`.
    """

    def __init__(self, num_codes, embedding_dim, commitment_cost=0.25, decay=0.99, epsilon=1e-5,
                 kmeans_init=False, kmeans_iters=10, restart_after=None, dead_code_threshold=None,
                 replacement="uniform"):
        super().__init__(num_codes, embedding_dim, commitment_cost, kmeans_init, kmeans_iters,
                         restart_after, dead_code_threshold, decay, replacement)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.epsilon = epsilon
        codebook = self._initial_codebook(num_codes, embedding_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_weight", codebook.clone())

    def extra_repr(self):
        return super().extra_repr() + f", decay={self.decay}, epsilon={self.epsilon}"

    def _update_codebook(self, flat, indices, counts):
        self._track_counts(counts)
        sums = all_reduce_sum(torch.zeros_like(self.ema_weight).index_add_(0, indices, flat.to(self.ema_weight.dtype)))
        self.ema_weight.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        self.codebook.copy_(self._normalize(self.ema_weight / smoothed.unsqueeze(1)))

    def _set_counts(self, counts, vectors, which=slice(None)):
        super()._set_counts(counts, vectors, which)
        self.ema_weight[which] = vectors.to(self.ema_weight.dtype) * counts.to(self.ema_weight.dtype).unsqueeze(1)

    def _loss(self, codebook_loss, commitment_loss):
        return self.commitment_cost * commitment_loss
