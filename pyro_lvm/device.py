"""Where tensors live and in which precision the networks run (plain torch: no Pyro here).

``resolve_device("auto")`` is a GPU where one is present, else the CPU; ``"cpu"``, ``"cuda"``
and ``"cuda:N"`` are taken as given and checked, so a wrong choice is one line naming the fix
rather than a CUDA error deep inside the first step.

Mixed precision (``precision="bf16"``) is *scoped to the networks*: :func:`network_autocast`
runs every forward pass of the given modules' sub-networks (linear layers, convolutions) under
``torch.autocast`` with ``bfloat16`` and casts their outputs back to ``float32`` as they leave
the network. Everything after the networks -- distribution parameters, log-densities, the
log-weights :math:`\\log w_k = \\log p(x, z_k) - \\log q(z_k|x)`, their ``logsumexp``, KL terms and
the loss -- is computed in ``float32``. ``bfloat16`` keeps ``float32``'s exponent range (no loss
scaling is needed, unlike ``float16``) with an 8-bit mantissa, a relative rounding error of
:math:`2^{-8}` per operation inside the networks [1].

**References**

[1] P. Micikevicius et al., "Mixed Precision Training", ICLR 2018; D. Kalamkar et al., "A Study
    of BFLOAT16 for Deep Learning Training", arXiv:1905.12322, 2019.
"""
import contextlib

import torch

from pyro_lvm.errors import UsageError

__all__ = ["PRECISIONS", "add_device_arguments", "autocast_dtype", "network_autocast", "resolve_device"]

#: ``--precision`` choices and the autocast dtype of each (``None``: no autocast)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def resolve_device(spec="auto"):
    """The :class:`torch.device` that ``spec`` names.

    :param spec: ``"auto"`` (the current GPU if CUDA is available, else the CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``, or a :class:`torch.device`.
    :raises UsageError: for an unknown name, or a GPU this machine does not have.
    """
    if spec is None or spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise UsageError(f"device {spec!r} is not supported; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UsageError(f"device {spec!r} asked for, but this machine has no usable CUDA GPU; use --device cpu "
                         "(or auto)")
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise UsageError(f"device {spec!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s) "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return torch.device("cuda", index)


def autocast_dtype(precision):
    """The autocast dtype of a ``--precision`` name (``None`` for ``"fp32"``)."""
    if precision is None:
        return None
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; use one of {sorted(PRECISIONS)}")
    return PRECISIONS[precision]


def add_device_arguments(parser, precision=True):
    """``--device`` (and ``--precision``) on a run kind's parser."""
    parser.add_argument("--device", default="auto",
                        help="auto (a GPU if present), cpu, cuda or cuda:N; under torchrun each process takes "
                             "cuda:LOCAL_RANK")
    if precision:
        parser.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32",
                            help="bf16: the networks' layers under bfloat16 autocast; densities, log-weights, "
                                 "logsumexp and KL stay float32")


def _to_float32(value):
    if torch.is_tensor(value):
        return value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_to_float32(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def network_autocast(modules, device, precision, skip=()):
    """Run the sub-networks of ``modules`` under autocast, their outputs cast back to float32.

    Hooks are put on every *descendant* of each module (not the modules themselves, whose
    methods are the Pyro model and guide); a depth count makes the outermost network call
    the one that enters and leaves autocast, so nested layers run inside it.

    :param modules: ``nn.Module`` s (or a dict of them).
    :param device: the device the networks run on (its type picks CPU or CUDA autocast).
    :param str precision: ``"fp32"`` (nothing happens) or ``"bf16"``.
    :param skip: sub-modules left in float32, with their descendants (e.g. a VQ-VAE's quantizers,
        whose nearest-code search must not round distances).
    """
    dtype = autocast_dtype(precision)
    if dtype is None:
        yield
        return
    device_type = torch.device(device).type
    modules = list(modules.values()) if isinstance(modules, dict) else list(modules)
    owners = {id(m) for m in modules}
    kept = {id(m) for s in skip for m in s.modules()}
    contexts = []

    def enter(module, args):
        if not contexts:
            context = torch.autocast(device_type, dtype=dtype)
            context.__enter__()
            contexts.append(context)
        else:
            contexts.append(None)

    def leave(module, args, output):
        context = contexts.pop()
        if context is None:
            return None
        context.__exit__(None, None, None)
        return _to_float32(output)

    handles = []
    for module in modules:
        for sub in module.modules():
            if id(sub) not in owners and id(sub) not in kept:
                handles += [sub.register_forward_pre_hook(enter), sub.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        while contexts:
            context = contexts.pop()
            if context is not None:
                context.__exit__(None, None, None)
