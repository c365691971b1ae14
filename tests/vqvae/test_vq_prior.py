import math

import pytest
import torch
import torch.nn.functional as F

from pyro_lvm.vqvae import VQVAE, CodePrior, GatedPixelCNN


def input_gradient_map(net, i, j, shape=(6, 7), cond=None):
    """|d logits[:, :, i, j] / d input| summed over channels and samples, shape (H, W)."""
    x = torch.randn(2, net.embedding.embedding_dim, *shape, dtype=torch.float64, requires_grad=True)
    logits = net.logits_from_embedding(x, cond)
    (grad,) = torch.autograd.grad(logits[:, :, i, j].sum(), x)
    return grad.abs().sum((0, 1))


@pytest.mark.parametrize("conditional", [False, True])
def test_pixelcnn_is_causal_in_raster_order_without_blind_spot(conditional):
    torch.manual_seed(0)
    height, width = 6, 7
    net = GatedPixelCNN(num_codes=5, channels=8, num_layers=4, kernel_size=3, first_kernel_size=5,
                        cond_channels=3 if conditional else 0).double()
    cond = torch.randn(2, 3, height, width, dtype=torch.float64) if conditional else None
    for i in range(height):
        for j in range(width):
            grad = input_gradient_map(net, i, j, (height, width), cond)
            for r in range(height):
                for c in range(width):
                    if (r, c) >= (i, j):  # the position itself and everything after it
                        assert grad[r, c] == 0, f"logits at {(i, j)} see the input at {(r, c)}"
            if j > 0:
                assert grad[i, j - 1] > 0
            if i > 0:
                # straight above, and above-right: the cell a naive masked PixelCNN misses
                assert grad[i - 1, j] > 0
                if j + 1 < width:
                    assert grad[i - 1, j + 1] > 0
            if i > 1:
                assert grad[i - 2, j] > 0


def test_first_position_depends_on_nothing():
    net = GatedPixelCNN(num_codes=4, channels=4, num_layers=2).double()
    assert input_gradient_map(net, 0, 0).sum() == 0


def test_nll_bits_equal_cross_entropy_in_bits():
    torch.manual_seed(1)
    prior = CodePrior([6, 5], [(2, 3), (4, 6)], channels=8, num_layers=2)
    codes = [torch.randint(6, (3, 2, 3)), torch.randint(5, (3, 4, 6))]
    logits = prior(codes)
    bits = prior.nll_bits(codes)
    for lg, c, b in zip(logits, codes, bits):
        by_hand = -torch.log_softmax(lg, 1).gather(1, c.unsqueeze(1)).squeeze(1).sum((1, 2)) / math.log(2)
        assert torch.allclose(b, by_hand, atol=1e-5)
    # the bottom level depends on the top codes
    changed = [codes[0].clone(), codes[1]]
    changed[0][:, 0, 0] = (changed[0][:, 0, 0] + 1) % 6
    assert not torch.allclose(prior(changed)[1], logits[1])


@pytest.mark.parametrize("levels", [1, 2])
def test_sampling_gives_valid_codes_and_images(levels):
    torch.manual_seed(2)
    model = VQVAE(levels=levels, num_downsamples=3 - levels, num_codes=16, embedding_dim=4,
                  hidden_channels=8, residual_channels=4, num_residual_layers=1).eval()
    prior = CodePrior(model.num_codes, model.grid_shapes, channels=8, num_layers=2)
    codes = prior.sample(3, generator=torch.Generator().manual_seed(0))
    assert len(codes) == levels
    for c, shape in zip(codes, model.grid_shapes):
        assert c.shape == (3,) + shape and c.dtype == torch.long
        assert c.min() >= 0 and c.max() < 16
    images = model.decode(codes)
    assert images.shape == (3, 1, 28, 28)
    again = prior.sample(3, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(codes, again))


def test_prior_learns_and_samples_a_left_to_right_rule():
    """Codes follow c[i, j] = c[i, j-1] + 1 (mod 4) from a uniform first column: 2 bits per row.

    Sampling in the wrong order, or a model that peeks ahead during training, would break the rule.
    """
    torch.manual_seed(3)
    first = torch.randint(4, (512, 4, 1))
    codes = (first + torch.arange(4).view(1, 1, 4)) % 4
    prior = CodePrior([4], [(4, 4)], channels=16, num_layers=3)
    optimizer = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for step in range(150):
        batch = codes[torch.randint(512, (64,))]
        loss = F.cross_entropy(prior([batch])[0], batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    bits_per_code = prior.nll_bits([codes])[0].mean().item() / 16
    assert bits_per_code < 0.75  # the ideal is 4 rows * 2 bits / 16 codes = 0.5
    sample = prior.sample(200, generator=torch.Generator().manual_seed(0))[0]
    follows = (sample[:, :, 1:] == (sample[:, :, :-1] + 1) % 4).float().mean()
    assert follows > 0.95


def test_prior_rejects_bad_code_maps():
    prior = CodePrior([4], [(3, 3)], channels=4, num_layers=1)
    with pytest.raises(ValueError, match=r"shape \(N, 3, 3\)"):
        prior([torch.zeros(2, 4, 4, dtype=torch.long)])
    with pytest.raises(ValueError, match="1 code map"):
        prior([torch.zeros(2, 3, 3, dtype=torch.long)] * 2)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        prior([torch.full((2, 3, 3), 4)])
