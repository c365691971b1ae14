"""Synthetic images: bright rectangles and discs on a dark background, made on the spot.

Cheap, structured stand-ins for real data in tests and smoke runs: no file, no
download, and a model that learns them shows that it learns shapes. The images are
a deterministic function of the seed, and the ``k``-th image does not depend on how
many are drawn, so a smaller set is the start of a larger one.
"""
import torch

from .dataset import ImageDataset

__all__ = ["load_synthetic", "synthetic_images"]


def synthetic_images(num_images, size=28, channels=1, seed=0):
    """Images of one to three bright rectangles and discs on a dark background.

    :param int num_images: how many.
    :param int size: height and width in pixels.
    :param int channels: colour channels; each shape has one random colour.
    :param int seed: seeds the one generator that places and colours the shapes.
    :returns: float32 images ``(num_images, channels, size, size)`` in [0, 1], each value
        a multiple of 1/255 like scaled 8-bit pixels.
    :rtype: torch.Tensor
    """
    generator = torch.Generator().manual_seed(seed)
    rows = torch.arange(size).view(size, 1).float()
    cols = torch.arange(size).view(1, size).float()
    images = torch.zeros(num_images, channels, size, size)
    for image in images:
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            cy, cx = (torch.rand(2, generator=generator) * size).tolist()
            radius = float(2 + torch.rand(1, generator=generator) * size / 5)
            if float(torch.rand(1, generator=generator)) < 0.5:
                shape = ((rows - cy).abs() <= radius) & ((cols - cx).abs() <= radius)
            else:
                shape = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius ** 2
            colour = 0.4 + 0.6 * torch.rand(channels, 1, 1, generator=generator)
            image.copy_(torch.where(shape, colour, image))
    return torch.round(images * 255) / 255


def load_synthetic(train_size=2000, test_size=500, seed=0):
    """A data set of :func:`synthetic_images`, 28x28 and one channel, without labels.

    :param int train_size: training images, drawn with ``seed``.
    :param int test_size: test images, drawn with ``seed + 1``.
    :rtype: ImageDataset
    """
    return ImageDataset(name="synthetic", train=synthetic_images(train_size, seed=seed),
                        test=synthetic_images(test_size, seed=seed + 1), source="generated")
