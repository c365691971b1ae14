"""Training: the fit loop, checkpoints, learning-rate schedules and callbacks."""
from pyro_lvm.train.callbacks import EarlyStopping, TimeBudget
from pyro_lvm.train.checkpoint import load_checkpoint, load_modules, save_checkpoint
from pyro_lvm.train.fit import FitResult, FitState, evaluate_loss, fit, owner_modules
from pyro_lvm.train.schedules import BurdaSchedule, ExponentialDecay, make_schedule

__all__ = ["BurdaSchedule", "EarlyStopping", "ExponentialDecay", "FitResult", "FitState", "TimeBudget",
           "evaluate_loss", "fit", "load_checkpoint", "load_modules", "make_schedule", "owner_modules",
           "save_checkpoint"]
