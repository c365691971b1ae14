"""Callbacks called after every epoch of :func:`pyro_lvm.train.fit`.

A callback is any callable ``callback(record, state) -> bool | None``; ``record`` is the epoch's
metrics dict and ``state`` the :class:`~pyro_lvm.train.fit.FitState`. Returning ``True`` stops
training after this epoch. A callback with ``state_dict``/``load_state_dict`` has its state
saved in checkpoints and restored on resume.
"""
import math
import time


class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor="test_loss", patience=5, min_delta=0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best, self.bad_epochs = math.inf, 0

    def __call__(self, record, state):
        value = record.get(self.monitor)
        if value is None:
            return False
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class TimeBudget:
    """Stop once training has used ``minutes`` (checked after each epoch).

    :param float minutes: the budget.
    :param str clock: ``"wall"`` counts fit's training seconds (wall time, excluding the test
        evaluation); ``"cpu"`` counts this process's CPU time (``time.process_time``) since the
        callback was made, which other jobs on a shared machine do not shrink: with one torch
        thread, "15 CPU minutes" is the same amount of work however busy the machine is.
    """

    def __init__(self, minutes, clock="wall"):
        if clock not in ("wall", "cpu"):
            raise ValueError(f"unknown clock {clock!r}; choose 'wall' or 'cpu'")
        self.seconds, self.clock = 60.0 * minutes, clock
        self.start = time.process_time()

    def used(self, state):
        """Seconds of the budget used so far."""
        return state.train_seconds if self.clock == "wall" else time.process_time() - self.start

    def __call__(self, record, state):
        return self.used(state) >= self.seconds
