r"""Schedules of the KL weight :math:`\beta`, as functions of the training step.

A schedule maps ``step``, the number of optimizer steps taken before the current one (``0``
for the first step of a run), to the weight :math:`\beta_t \ge 0` that
:class:`~pyro_lvm.objectives.kl_control.KLControl` puts on the latent sites. It is a pure
function of the step, so a run resumed from a checkpoint (which stores the step count) continues
the schedule exactly; :func:`~pyro_lvm.train.fit` hands the step to the objective before every
training step.

==========================  ============================================================
schedule                    :math:`\beta` at step :math:`t = 0, 1, \ldots`
==========================  ============================================================
:class:`Constant`           :math:`\beta`
:class:`LinearWarmup`       :math:`\beta_0 + (\beta_1 - \beta_0) \min(1, t / N)`
:class:`Cyclical`           :math:`\beta_1 \min(1, \tau_t / R)`,
                            :math:`\tau_t = (t \bmod \lceil T/M \rceil) / (T/M)`
==========================  ============================================================

References:

1. S. Bowman, L. Vilnis, O. Vinyals, A. Dai, R. Jozefowicz, S. Bengio, "Generating Sentences
   from a Continuous Space", CoNLL 2016 (KL cost annealing from 0 to 1).
2. C. Sønderby, T. Raiko, L. Maaløe, S. Sønderby, O. Winther, "Ladder Variational
   Autoencoders", NeurIPS 2016 (warm-up: :math:`\beta` linear from 0 to 1).
3. H. Fu, C. Li, X. Liu, J. Gao, A. Celikyilmaz, L. Carin, "Cyclical Annealing Schedule: A
   Simple Approach to Mitigating KL Vanishing", NAACL 2019 (the cyclical schedule).
"""
import math


def _weight(value, what):
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {value}")
    return value


def _steps(value, what):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class Constant:
    r"""The same weight at every step, :math:`\beta_t = \beta` (``beta = 0`` allowed).

    :param float beta: the KL weight, ``>= 0``.
    """

    def __init__(self, beta=1.0):
        self.beta = _weight(beta, "beta")

    def __call__(self, step):
        return self.beta

    def __repr__(self):
        return f"Constant(beta={self.beta})"


class LinearWarmup:
    r"""KL warm-up: :math:`\beta_t = \beta_0 + (\beta_1 - \beta_0) \min(1, t / N)`.

    Starts at :math:`\beta_0` on the first step (:math:`t = 0`), reaches :math:`\beta_1` at step
    :math:`N` and stays there (Bowman et al. 2016; Sønderby et al. 2016, both with
    :math:`\beta_0 = 0, \beta_1 = 1`).

    :param int steps: :math:`N`, the length of the warm-up in training steps.
    :param float beta0: the first step's weight (default 0).
    :param float beta1: the weight after the warm-up (default 1).
    """

    def __init__(self, steps, beta0=0.0, beta1=1.0):
        self.steps = _steps(steps, "steps")
        self.beta0, self.beta1 = _weight(beta0, "beta0"), _weight(beta1, "beta1")

    def __call__(self, step):
        return self.beta0 + (self.beta1 - self.beta0) * min(1.0, step / self.steps)

    def __repr__(self):
        return f"LinearWarmup(steps={self.steps}, beta0={self.beta0}, beta1={self.beta1})"


class Cyclical:
    r"""The cyclical schedule of Fu et al. (2019): :math:`M` cycles over :math:`T` steps.

    .. math:: \tau_t = \frac{t \bmod \lceil T/M \rceil}{T/M}, \qquad
              \beta_t = \beta_1 \cdot \begin{cases} \tau_t / R & \tau_t \le R \\ 1 & \tau_t > R
              \end{cases}

    with the paper's step :math:`t - 1` written :math:`t` here (the first step is :math:`t = 0`).
    Within each cycle :math:`\beta` rises linearly from 0 over a fraction :math:`R` of the cycle,
    then stays at :math:`\beta_1`; the pattern repeats if training runs past :math:`T` steps.

    :param int total_steps: :math:`T`, the training steps the :math:`M` cycles span.
    :param int cycles: :math:`M` (default 4, as in the paper).
    :param float ratio: :math:`R \in (0, 1]`, the rising part of each cycle (default 0.5).
    :param float beta1: the weight at the top of each cycle (default 1).
    """

    def __init__(self, total_steps, cycles=4, ratio=0.5, beta1=1.0):
        self.total_steps, self.cycles = _steps(total_steps, "total_steps"), _steps(cycles, "cycles")
        if self.cycles > self.total_steps:
            raise ValueError(f"{self.cycles} cycles do not fit in {self.total_steps} steps; use at most one cycle "
                             "per step")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio, self.beta1 = float(ratio), _weight(beta1, "beta1")

    @property
    def period(self):
        """:math:`\\lceil T/M \\rceil`, the steps of one cycle."""
        return math.ceil(self.total_steps / self.cycles)

    def __call__(self, step):
        tau = (step % self.period) / (self.total_steps / self.cycles)
        return self.beta1 * (tau / self.ratio if tau <= self.ratio else 1.0)

    def __repr__(self):
        return (f"Cyclical(total_steps={self.total_steps}, cycles={self.cycles}, ratio={self.ratio}, "
                f"beta1={self.beta1})")


def as_schedule(beta):
    """A schedule from a number (:class:`Constant`) or any callable ``step -> beta``."""
    if callable(beta):
        return beta
    return Constant(beta)
