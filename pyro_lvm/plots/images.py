"""Image grids of samples and reconstructions."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def save_image_grid(images, path, nrow=10, title=None):
    """Save a batch of images as one PNG grid.

    :param torch.Tensor images: shape ``(N, C, H, W)`` (or ``(N, H, W)``) with values in [0, 1].
    :param str path: where to write the PNG; parent folders are created.
    :param int nrow: images per row.
    :param str title: optional figure title.
    :returns: the path written.
    """
    images = torch.as_tensor(images).detach().float().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    array = grid.permute(1, 2, 0).numpy()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    height, width = array.shape[:2]
    fig = plt.figure(figsize=(width / 50, height / 50 + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1 if not title else 0.92])
    ax.imshow(array[..., 0] if array.shape[2] == 1 else array, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_reconstruction_grid(originals, reconstructions, path, pairs_per_row=8,
                             title="test images (left of each pair) and their reconstructions (right)"):
    """Each original with its reconstruction beside it, ``pairs_per_row`` pairs per row.

    :param originals: ``(N, C, H, W)``; ``reconstructions`` the same shape.
    :returns: the path written.
    """
    originals = torch.as_tensor(originals).detach().float().cpu()
    reconstructions = torch.as_tensor(reconstructions).detach().float().cpu().reshape(originals.shape)
    pairs = torch.stack([originals, reconstructions], 1).reshape(-1, *originals.shape[1:])
    return save_image_grid(pairs, path, nrow=2 * pairs_per_row, title=title)
