"""Learning-rate schedules as epoch -> multiplier functions (for ``LambdaLR``)."""


class BurdaSchedule:
    r"""The schedule of Burda et al. (2015, sec. 5): stage :math:`i = 0, 1, \ldots` lasts
    :math:`3^i` epochs at learning rate :math:`10^{-3} \cdot 10^{-i/7}` (8 stages, 3280 epochs).

    ``epoch_scale`` shortens every stage proportionally (e.g. 0.01 gives ~33 epochs in all),
    so a short CPU run follows the same shape as the paper's full schedule.
    """

    def __init__(self, epoch_scale=1.0, stages=8):
        self.epoch_scale, self.stages = epoch_scale, stages
        bounds, total = [], 0.0
        for i in range(stages):
            total += 3 ** i * epoch_scale
            bounds.append(total)
        self.bounds = bounds

    @property
    def total_epochs(self):
        return max(1, round(self.bounds[-1]))

    def __call__(self, epoch):
        for i, bound in enumerate(self.bounds):
            if epoch < bound:
                return 10 ** (-i / 7)
        return 10 ** (-(self.stages - 1) / 7)


class ExponentialDecay:
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, gamma=1.0):
        self.gamma = gamma

    def __call__(self, epoch):
        return self.gamma ** epoch


def make_schedule(name, **kwargs):
    """``"constant"``, ``"exponential"`` (``gamma``) or ``"burda"`` (``epoch_scale``)."""
    if name in (None, "constant"):
        return ExponentialDecay(1.0)
    if name == "exponential":
        return ExponentialDecay(**kwargs)
    if name == "burda":
        return BurdaSchedule(**kwargs)
    raise ValueError(f"unknown learning-rate schedule {name!r}; choose constant, exponential or burda")
