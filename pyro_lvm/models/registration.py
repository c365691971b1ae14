"""Registering the networks of models and guides with Pyro's param store, and when not to.

``pyro.infer.SVI`` optimises only what appears as a ``param`` site in the traces of the model
and the guide; a network that is merely *called* there gets gradients that nobody applies, so
the loss never moves and nothing says why. Every model and guide of this package therefore
calls :func:`register` (``pyro.module``) for the networks it uses, and trains out of the box
under stock Pyro.

:func:`pyro_lvm.train.fit` optimises the modules' parameters directly, so it switches
registration off around its own objectives with :func:`registration_enabled` (one flag check
per call instead of a ``pyro.module`` walk over every parameter). It keeps registration on when
it is given a Pyro ELBO, which backpropagates only when param sites exist in the trace
(``loss_and_grads``) or compiles against the param store (``JitTrace_ELBO``).

**References**

1. Pyro documentation, ``pyro.module`` and ``pyro.infer.SVI``; the Pyro VAE tutorial, which
   registers the encoder and decoder inside the guide and the model.
"""
import threading

import pyro
from pyro.params import param_with_module_name

__all__ = ["is_registration_enabled", "register", "registration_enabled"]

_state = threading.local()


def is_registration_enabled():
    """Whether :func:`register` currently registers (per thread; on by default)."""
    return getattr(_state, "enabled", True)


class registration_enabled:  # noqa: N801  (lower case: used like pyro.validation_enabled)
    """Switch :func:`register` on or off inside a ``with`` block (restored on exit).

    A small class rather than a generator: :func:`pyro_lvm.train.fit` enters one per step.

    :param bool enabled: ``False`` skips registration: for loops that optimise the modules'
        parameters themselves, such as :func:`pyro_lvm.train.fit`.
    """

    __slots__ = ("enabled", "_previous")

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)

    def __enter__(self):
        self._previous = getattr(_state, "enabled", True)
        _state.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False


def register(name, module):
    """``pyro.module(name, module)`` unless registration is switched off; returns ``module``.

    The live module wins a name clash: an entry under the same name that holds another tensor
    (left by an earlier instance, or restored by ``ParamStoreDict.set_state``) is replaced by
    this module's own parameter. Otherwise ``pyro.module`` would hand the stale tensor to the
    optimizer while the model computes with its own parameters, and training would silently
    do nothing.
    """
    if not getattr(_state, "enabled", True):
        return module
    store = pyro.get_param_store()
    for param_name, param in module.named_parameters():
        full_name = param_with_module_name(name, param_name)
        if full_name in store and store.get_param(full_name).unconstrained() is not param:
            del store[full_name]
    return pyro.module(name, module)
