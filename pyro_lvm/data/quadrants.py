"""The masked-quadrant completion task of Sohn et al. (2015, sec. 4.1) on images.

An image is cut into four quadrants; 1, 2 or 3 of them are given and the rest are to be
predicted. The given quadrants follow Pyro's CVAE tutorial [2]: one given quadrant is the
bottom-left one, two are the left half, three are all but the bottom-right one.

A *condition* is the image with its missing pixels set to :data:`MISSING` (-1, a value no
pixel in [0, 1] takes), so one tensor carries both the given pixels and where the missing ones
are; :func:`missing_pixels` reads the mask back from it.

**References**

[1] K. Sohn, H. Lee, X. Yan, "Learning Structured Output Representation using Deep
    Conditional Generative Models", NeurIPS 2015.
[2] Pyro's tutorial "Conditional Variational Auto-encoder", examples/cvae in pyro-ppl/pyro.
"""
import torch

__all__ = ["MISSING", "given_quadrants", "mask_quadrants", "missing_pixels"]

#: the value of a missing pixel in a condition
MISSING = -1.0


def given_quadrants(num_given, height=28, width=28):
    """Boolean ``(height, width)`` mask, ``True`` on the pixels of the ``num_given`` given quadrants.

    :param int num_given: 1 (bottom-left), 2 (left half) or 3 (all but bottom-right).
    """
    if num_given not in (1, 2, 3):
        raise ValueError(f"the number of given quadrants must be 1, 2 or 3, got {num_given!r}")
    top, left = torch.zeros(height, 1, dtype=torch.bool), torch.zeros(1, width, dtype=torch.bool)
    top[: height // 2] = True
    left[:, : width // 2] = True
    bottom, right = ~top, ~left
    given = bottom & left
    if num_given >= 2:
        given = given | (top & left)
    if num_given == 3:
        given = given | (top & right)
    return given


def mask_quadrants(images, num_given):
    """The conditions of a batch of images ``(.., H, W)``: the missing quadrants set to :data:`MISSING`."""
    given = given_quadrants(num_given, *images.shape[-2:]).to(images.device)
    return torch.where(given, images, torch.full_like(images, MISSING))


def missing_pixels(condition):
    """Boolean mask of the pixels a condition leaves to be predicted."""
    return condition == MISSING
