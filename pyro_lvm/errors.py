"""Exceptions that name the problem, shared by every layer of the library."""


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; ``sites`` names the sample sites that produced it."""

    def __init__(self, message, sites=()):
        super().__init__(message)
        self.sites = tuple(sites)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""
