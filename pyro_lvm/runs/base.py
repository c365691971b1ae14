"""What every run kind is: its arguments, how it trains into a run folder and evaluates one.

A run kind is one module of :mod:`pyro_lvm.runs` holding a :class:`RunKind` subclass decorated
with :func:`register`. The command line finds it through the registry; nothing else names it.
"""
import argparse
import os

from pyro_lvm.errors import UsageError

_REGISTRY = {}


def register(cls):
    """Class decorator: make a :class:`RunKind` subclass available by its ``name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a name")
    if cls.name in _REGISTRY and type(_REGISTRY[cls.name]) is not cls:
        raise TypeError(f"two run kinds are named {cls.name!r}")
    _REGISTRY[cls.name] = cls()
    return cls


def bounded_number(cast, accept, what):
    """An ``argparse`` type: ``cast(text)`` where ``accept`` holds, else a message naming ``what``."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    parse.__name__ = what.replace(" ", "_")
    return parse


#: ``argparse`` types: an integer >= 1, an integer >= 0, a finite number > 0, a finite number >= 0
positive_int = bounded_number(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = bounded_number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = bounded_number(float, lambda v: 0 < v < float("inf"), "a positive number")
nonnegative_float = bounded_number(float, lambda v: 0 <= v < float("inf"), "a non-negative number")


class RunKind:
    """One kind of run (``vae``, ``sbn``, ``gmm``, ``vqvae``, ...).

    Subclasses set :attr:`name`, :attr:`help` and :attr:`smoke`, and implement
    :meth:`add_arguments`, :meth:`train` and :meth:`evaluate`.

    :cvar dict smoke: settings that ``--smoke`` fills in where they were not given (seconds on
        the embedded data); an integer given on the command line is capped at the smoke value.
    :cvar dict defaults: settings whose default depends on ``--smoke`` (``(normal, smoke)``).
    """

    name = None
    help = ""
    smoke = {}
    defaults = {}
    #: command-line keys that are not settings of the run
    _NOT_SETTINGS = ("command", "kind", "no_progress", "func")

    def add_arguments(self, parser):
        """Add this kind's options (beyond ``--out``, ``--seed``, ``--smoke``, ``--no-progress``)."""

    def settings(self, args):
        """The run's settings as a plain dict, with ``--smoke`` applied."""
        settings = {k: v for k, v in vars(args).items() if k not in self._NOT_SETTINGS}
        smoke = settings.get("smoke")
        for key, (normal, small) in self.defaults.items():
            if settings.get(key) is None:
                settings[key] = small if smoke else normal
        if smoke:  # integers given on the command line are capped, settings left unset are filled
            for key, value in self.smoke.items():
                current = settings.get(key)
                if current is None:
                    settings[key] = value
                elif isinstance(current, int) and not isinstance(current, bool) and isinstance(value, int):
                    settings[key] = min(current, value)
        settings["out"] = os.fspath(settings["out"])
        return settings

    def train(self, folder, settings, progress=True):
        """Train into ``folder`` (a :class:`~pyro_lvm.runs.folder.RunFolder`); print and return a summary."""
        raise NotImplementedError

    def evaluate(self, folder, options, progress=True):
        """Evaluate the run in ``folder``; print the table, then write the evaluation file.

        :param dict options: ``samples``, ``images``, ``batch_size``, ``data_root``, ``data``
            (``None`` where not given).
        """
        raise UsageError(f"run kind {self.name!r} has no separate evaluation; its training prints its results")


def run_kinds():
    """``name -> RunKind`` of every registered kind (importing the kind modules once)."""
    from pyro_lvm.runs import discover

    discover()
    return dict(_REGISTRY)


def get_run_kind(name):
    """The run kind called ``name``."""
    kinds = run_kinds()
    if name not in kinds:
        raise UsageError(f"unknown run kind {name!r}; choose one of {sorted(kinds)}")
    return kinds[name]
