"""Run kinds: what ``pyro-lvm train KIND`` and ``pyro-lvm evaluate RUN_DIR`` run.

Each kind is one module of this package holding a :class:`~pyro_lvm.runs.base.RunKind`
registered with :func:`~pyro_lvm.runs.base.register`; :func:`discover` imports every module
here once, so a new kind is one new module and no edit elsewhere. A kind owns its command-line
arguments, its training, its evaluation and what its run folder holds
(:class:`~pyro_lvm.runs.folder.RunFolder`: lock, ``config.json``, checkpoint, metrics, PNGs,
one evaluation file per evaluation setting).

:func:`save_model` and :func:`load_model` save and rebuild a whole trained model in one call,
in the same format as the command line's run folders.
"""
import importlib
import pkgutil

from pyro_lvm.runs.base import RunKind, get_run_kind, register, run_kinds
from pyro_lvm.runs.folder import RunFolder, read_config
from pyro_lvm.runs.saved import load_model, load_run, save_model

__all__ = ["RunFolder", "RunKind", "discover", "get_run_kind", "load_model", "load_run", "read_config",
           "register", "run_kinds", "save_model"]

_DISCOVERED = False


def discover():
    """Import every module of this package, so that each registers its run kind."""
    global _DISCOVERED
    if not _DISCOVERED:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _DISCOVERED = True
