"""Training loops: the VQ-VAE (or plain autoencoder), then the PixelCNN prior on its codes.

Both loops return a history, one dict per epoch, and call ``on_epoch_end(row)`` after each epoch
(the command line uses it to write metrics and checkpoints as training goes). Codebook health is
accumulated over the whole epoch (:class:`~pyro_lvm.vqvae.health.CodebookUsage`), not read off
single batches.

``device=`` moves the model (and each batch) to a device; ``precision="bf16"`` runs the encoder
and decoder under bfloat16 autocast with the quantizer (distances, the nearest-code search and
the codebook upkeep) and the losses in float32 (:func:`~pyro_lvm.device.network_autocast`, whose
quantizers are skipped). Under ``torchrun`` (a process group joined with
:func:`pyro_lvm.distributed.init_from_env`) each process trains on its shard of every batch
(:meth:`~pyro_lvm.data.TensorLoader.shard`), the gradients are averaged over processes weighted
by their images (the losses are means), so one step equals the step of the global batch, and the
codebook upkeep is synchronized (:mod:`pyro_lvm.vqvae.distributed`); the epoch's metrics are
those of all processes together.

The prior (:func:`fit_prior`) is trained the same way: every process draws the same permutation
of the code maps, cuts the same global batch of :math:`B` maps and keeps its contiguous share
:math:`S_r`; its loss is :math:`\sum_{i \in S_r} -\log p(c_i) / (B P)` (:math:`P` positions per
map), so the gradients summed over processes are those of the global batch's mean
:math:`\frac{1}{BP}\sum_{i=1}^{B} -\log p(c_i)`, the single-process loss. A loss that is not
finite on any process stops every process (the flag travels with the gradients), so none waits
for the others forever.
"""

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pyro_lvm import distributed
from pyro_lvm.data import TensorLoader
from pyro_lvm.device import network_autocast, resolve_device
from pyro_lvm.errors import NonFiniteLossError
from pyro_lvm.vqvae.evaluate import (code_batches, evaluate_reconstruction, images_of,
                                     level_prefixes, prior_nll)
from pyro_lvm.vqvae.health import CodebookUsage
from pyro_lvm.vqvae.model import evaluating


def _restarts(model):
    return sum(int(q.num_restarts) for q in getattr(model, "quantizers", ()))


def _backward(loss, params, where, rows=None):
    """``loss.backward()`` on this process; under ``torchrun`` the gradients then summed over processes.

    With ``rows`` (this process's images; ``loss`` a mean over them) the gradients are weighted
    by ``rows`` and divided by the total, the gradient of the global batch's mean; without, they
    are summed (``loss`` already scaled by the global batch). A loss that is not finite on any
    process raises :class:`~pyro_lvm.errors.NonFiniteLossError` on every process, after the one
    all-reduce, so no process waits for the others.

    :returns: this process's loss, as a float.
    """
    value = loss.item()
    finite = math.isfinite(value)
    if finite:
        loss.backward()
    if distributed.world_size() > 1:
        params = list(params)
        if rows is not None:
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(rows)
        total, failed = distributed.sum_gradients(params, rows or 0, not finite)
        if failed and finite:
            raise NonFiniteLossError(f"the training loss became non-finite on another training process ({where}); "
                                     "try a smaller learning rate")
        if rows is not None:
            for p in params:
                p.grad.div_(total)
    if not finite:
        raise NonFiniteLossError(f"the training loss became {value} ({where}); try a smaller learning rate")
    return value


def _check_shards(loader):
    """Under ``torchrun`` every process needs an image of every batch (the quantizers' k-means and
    restarts draw from them); refuse a final batch smaller than the number of processes."""
    processes = distributed.world_size()
    if processes == 1 or not isinstance(loader, TensorLoader) or loader.drop_last:
        return
    rest = loader.dataset_size % loader.batch_size
    if 0 < rest < processes:
        raise ValueError(f"the last batch of {rest} image(s) cannot be shared by {processes} training processes "
                         f"({loader.dataset_size} images in batches of {loader.batch_size}); choose another batch "
                         "size or number of images")


def train_epoch(model, loader, optimizer, progress=False, description="train", device=None, precision="fp32"):
    """One pass over ``loader``.

    :returns: ``(row, usages)``: the epoch's mean losses and codebook health (codes used, dead
        codes, usage, perplexity and the whole histogram ``train_histogram``, per level), and the
        :class:`~pyro_lvm.vqvae.health.CodebookUsage` of each level.
    """
    model.train()
    sums = {"train_loss": 0.0, "train_mse": 0.0, "codebook_loss": 0.0, "commitment_loss": 0.0}
    usages, seen, restarts_before = None, 0, _restarts(model)
    bar = tqdm(loader, desc=description, leave=False, disable=not progress)
    where = device or next(model.parameters()).device
    quantizers = getattr(model, "quantizers", ())
    params = [p for p in model.parameters() if p.requires_grad]
    for batch in bar:
        x = images_of(batch)
        if device is not None:
            x = x.to(device, non_blocking=True)
        with network_autocast([model], where, precision, skip=quantizers):
            out = model(x)
        optimizer.zero_grad(set_to_none=True)
        loss = _backward(out.loss, params, f"{description}, after {seen} images", rows=x.shape[0])
        optimizer.step()
        n = x.shape[0]
        seen += n
        sums["train_loss"] += loss * n
        sums["train_mse"] += out.reconstruction_loss.item() * n
        sums["codebook_loss"] += sum(q.codebook_loss.item() for q in out.quantizer_outputs) * n
        sums["commitment_loss"] += sum(q.commitment_loss.item() for q in out.quantizer_outputs) * n
        if usages is None:
            usages = [CodebookUsage(q.counts.numel()) for q in out.quantizer_outputs]
        for usage, q in zip(usages, out.quantizer_outputs):
            usage.update(q.counts)
        bar.set_postfix(loss=f"{loss:.4f}")
    if distributed.world_size() > 1:  # the epoch of all processes together
        totals = distributed.all_reduce_sum(torch.tensor([seen, *sums.values()], dtype=torch.float64)).tolist()
        seen, sums = int(totals[0]), dict(zip(sums, totals[1:]))
        for usage in usages or ():
            usage.counts = distributed.all_reduce_sum(usage.counts)
    if not seen:
        raise ValueError("the training loader yielded no images")
    row = {key: value / seen for key, value in sums.items()}
    for prefix, usage in zip(level_prefixes(len(usages)), usages):
        row.update(usage.summary("train_" + prefix))
        row[f"train_{prefix}histogram"] = usage.counts.tolist()
    if usages:
        row["restarts"] = _restarts(model) - restarts_before
    return row, usages


def fit_vqvae(model, train_loader, epochs, lr=1e-3, test_loader=None, progress=True,
              on_epoch_end=None, optimizer=None, history=None, device=None, precision="fp32"):
    """Train a :class:`~pyro_lvm.vqvae.model.VQVAE` or
    :class:`~pyro_lvm.vqvae.model.PlainAutoencoder` with Adam.

    :param train_loader: re-iterable of image batches (reshuffled on each pass if it shuffles).
    :param int epochs: passes over ``train_loader``.
    :param float lr: Adam learning rate.
    :param test_loader: optional; adds ``test_mse`` and test codebook health to each row.
    :param callable on_epoch_end: called with each finished row.
    :param optimizer: an optimizer to continue with (default: a fresh Adam with ``lr``).
    :param list history: rows of epochs already done; training resumes after them, up to ``epochs``.
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``: the model goes there (before
        the optimizer is made) and each batch is moved there; ``None`` leaves the model where it is.
    :param str precision: ``"fp32"`` or ``"bf16"`` (the encoder and decoder under autocast).
    :returns: the history, one dict per epoch (``epoch``, ``seconds``, train losses, the epoch's
        codebook usage, and test metrics).
    """
    if device is not None:
        device = resolve_device(device)
        model.to(device)
        for loader in (train_loader, test_loader):
            if isinstance(loader, TensorLoader):
                loader.to(device)  # the images moved once, where they fit
    _check_shards(train_loader)
    progress = progress and distributed.is_main()
    if distributed.world_size() > 1:  # one starting point on every process
        distributed.broadcast_tensors([*model.parameters(), *model.buffers()])
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history = _epoch_loop(
        epochs, history, "vq-vae epochs", progress,
        lambda epoch: train_epoch(model, train_loader, optimizer, progress, f"epoch {epoch}", device, precision)[0],
        None if test_loader is None else lambda: evaluate_reconstruction(model, test_loader)[0],
        on_epoch_end, shown=("test_mse", "train_mse"))
    model.eval()
    return history


def _epoch_loop(epochs, history, description, progress, train, evaluate, on_epoch_end, shown):
    """Call ``train(epoch)`` for each epoch after those in ``history``, then ``evaluate()``;
    time the training part, keep the rows and pass each to ``on_epoch_end``.
    The first of the ``shown`` keys found in a row goes on the progress bar."""
    history = list(history or [])
    bar = tqdm(range(len(history) + 1, epochs + 1), desc=description, disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        row = {"epoch": epoch, **train(epoch)}
        row["seconds"] = time.perf_counter() - start
        if evaluate is not None:
            row.update(evaluate())
        history.append(row)
        key = next(k for k in shown if k in row)
        bar.set_postfix({key: f"{row[key]:.4g}"})
        if on_epoch_end is not None:
            on_epoch_end(row)
    return history


def encode_dataset(model, loader, gather=False):
    """Code maps of every image in ``loader``: a list (one per level) of ``(N, H_l, W_l)`` tensors,
    on the model's device.

    :param bool gather: the loader yields this process's share of each batch
        (:meth:`~pyro_lvm.data.TensorLoader.shard`); the shares of all processes are gathered in
        rank order, so every process gets the codes of every image (as one process would).
    """
    maps = []
    where = next(model.parameters()).device
    with evaluating(model):
        for batch in loader:
            codes = model.encode(images_of(batch).to(where))
            maps.append([distributed.all_gather_rows(c) for c in codes] if gather else codes)
    if not maps:
        raise ValueError("the loader yielded no images")
    return [torch.cat(level) for level in zip(*maps)]


def fit_prior(prior, train_codes, epochs, test_codes=None, batch_size=128, lr=1e-3, seed=0,
              progress=True, on_epoch_end=None, optimizer=None, history=None, generator=None,
              device=None, precision="fp32"):
    """Fit a :class:`~pyro_lvm.vqvae.prior.CodePrior` by maximum likelihood on encoded images.

    :param list train_codes: per-level code maps from :func:`encode_dataset` (the whole training
        set, on every process under ``torchrun``: each process trains on its share of every
        global batch of ``batch_size`` maps, see the module's docstring).
    :param int epochs: passes over the training codes.
    :param list test_codes: optional held-out codes; adds ``test_bits_per_code`` to each row.
    :param int seed: seeds the shuffling, unless a ``generator`` is given (the same on every process).
    :param optimizer: an optimizer to continue with (default: a fresh Adam with ``lr``).
    :param list history: rows of epochs already done; training resumes after them.
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``: the prior goes there (before
        the optimizer is made) and each batch of codes is moved there; ``None`` leaves it where it is.
    :param str precision: ``"fp32"`` or ``"bf16"`` (the PixelCNN's layers under autocast; the
        logits leave it in float32 and the cross-entropy is float32).
    :returns: the history, one dict per epoch with ``train_bits_per_code`` (running mean over the
        epoch, all processes together) and the test metrics of
        :func:`~pyro_lvm.vqvae.evaluate.prior_nll`.
    """
    if any(c.dim() != 3 for c in train_codes):
        raise ValueError("the PixelCNN code prior models one code per position (code maps of shape (N, H, W)), "
                         f"got maps of shape {[tuple(c.shape) for c in train_codes]}; residual VQ gives several "
                         "codes per position: train its model without a prior, or with residual_depth=1")
    progress = progress and distributed.is_main()
    if device is not None:
        prior.to(resolve_device(device))
    where = next(prior.parameters()).device
    if distributed.world_size() > 1:  # one starting point on every process
        distributed.broadcast_tensors([*prior.parameters(), *prior.buffers()])
    optimizer = optimizer or torch.optim.Adam(prior.parameters(), lr=lr)
    generator = generator or torch.Generator().manual_seed(seed)
    positions = sum(c[0].numel() for c in train_codes)
    steps = math.ceil(train_codes[0].shape[0] / batch_size)
    params = [p for p in prior.parameters() if p.requires_grad]

    def train(epoch):
        total, seen = 0.0, 0
        prior.train()
        batches = code_batches(train_codes, batch_size, shuffle=True, generator=generator)
        for batch in tqdm(batches, desc=f"prior epoch {epoch}", leave=False, disable=not progress,
                          total=steps):
            size = batch[0].shape[0]  # the global batch; this process keeps its share
            start, stop = distributed.shard_bounds(size)
            mine = [c[start:stop].to(where, non_blocking=True) for c in batch]
            with network_autocast([prior], where, precision):
                logits = prior(mine)
            nats = sum(F.cross_entropy(l, c, reduction="sum") for l, c in zip(logits, mine))
            optimizer.zero_grad(set_to_none=True)
            _backward(nats / (size * positions), params, f"prior epoch {epoch}, after {seen} code maps")
            optimizer.step()
            total += nats.item()
            seen += size
        if distributed.world_size() > 1:  # the nats of all processes
            total = float(distributed.all_reduce_sum(torch.tensor(total, dtype=torch.float64)))
        return {"train_bits_per_code": total / (seen * positions * math.log(2))}

    def evaluate():
        return {"test_" + k: v for k, v in prior_nll(prior, test_codes).items()}

    history = _epoch_loop(epochs, history, "prior epochs", progress, train,
                          None if test_codes is None else evaluate, on_epoch_end,
                          shown=("test_bits_per_code", "train_bits_per_code"))
    prior.eval()
    return history
