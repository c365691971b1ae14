"""Exceptions that name the problem, shared by every layer of the library.

Every error a user can cause by what they pass in (a setting, a file, a data folder) derives
from :class:`UsageError`; the command line prints its message as one line and exits with
status 2. Each message names the problem and the fix.
"""


class UsageError(ValueError):
    """Bad input from the user: a setting, a path or a file. The message names the fix."""


class DataError(UsageError):
    """A data set is missing, unreadable, truncated, empty or of the wrong kind."""


class RunFolderError(UsageError):
    """A run folder cannot be used: another process writes it, it is a file, it is read-only."""


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; ``sites`` names the sample sites that produced it."""

    def __init__(self, message, sites=()):
        super().__init__(message)
        self.sites = tuple(sites)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, unsafe, or does not match the model it is loaded into."""
