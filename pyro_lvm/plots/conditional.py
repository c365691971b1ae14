"""Figures of conditional models: completions of partial images, and samples by class."""
import torch

from pyro_lvm.plots.images import save_image_grid

#: grey level that shows a missing pixel of a partial image
MISSING_SHADE = 0.35


def save_completion_grid(given, truth, completions, path, missing=None, baseline=None, title=None):
    """One row per image: the given part, the truth, the baseline's prediction (if any), then completions.

    :param torch.Tensor given: partial images ``(N, C, H, W)``.
    :param torch.Tensor truth: the whole images ``(N, C, H, W)``.
    :param torch.Tensor completions: ``(S, N, C, H, W)``, S completions of each image.
    :param torch.Tensor missing: boolean mask of the missing pixels (shown grey in the given part).
    :param torch.Tensor baseline: a deterministic prediction ``(N, C, H, W)``.
    """
    given = given.float().clone()
    if missing is not None:
        given[missing] = MISSING_SHADE
    columns = [given, truth.float()] + ([baseline.float()] if baseline is not None else []) + \
        [c.float() for c in completions]
    rows = torch.stack(columns, 1)  # (N, columns, C, H, W)
    if title is None:
        title = "given | truth | " + ("baseline | " if baseline is not None else "") + \
            f"{len(completions)} completions"
    return save_image_grid(rows.flatten(0, 1), path, nrow=len(columns), title=title)


def save_class_grid(samples, path, title="samples, one row per class"):
    """Samples ``(num_classes, n, C, H, W)`` as a grid with one row per class."""
    return save_image_grid(samples.flatten(0, 1), path, nrow=samples.shape[1], title=title)
