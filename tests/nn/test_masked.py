"""The gated PixelCNN stack and the PixelCNN decoder: causality by autograd, the documented
receptive field, and sampling that agrees with teacher forcing."""
import pytest
import torch

from pyro_lvm.nn import MLPDecoder, PixelCNNDecoder
from pyro_lvm.nn.masked import GatedLayer, GatedStack
from pyro_lvm.vqvae import GatedPixelCNN


def decoder(shape=(2, 6, 7), layers=2, latent_dim=3, with_map=True):
    torch.manual_seed(0)
    latent_map = MLPDecoder((2, *shape[1:]), (8,), latent_dim, "tanh") if with_map else None
    return PixelCNNDecoder(shape, latent_dim, layers=layers, channels=6, latent_map=latent_map,
                           map_channels=2 if with_map else 0).double()


def dependence(net, z, x):
    """``dep[i, j, r, c]``: |d logits at pixel (i, j) / d x at pixel (r, c)|, summed over channels and data."""
    x = x.clone().requires_grad_(True)
    logits = net(z, x)
    height, width = x.shape[-2:]
    dep = torch.zeros(height, width, height, width, dtype=x.dtype)
    for i in range(height):
        for j in range(width):
            (grad,) = torch.autograd.grad(logits[..., i, j].sum(), x, retain_graph=True)
            dep[i, j] = grad.abs().sum(tuple(range(grad.dim() - 2)))
    return dep


def in_field(i, j, r, c, reach):
    """The module docstring's receptive field of (i, j)."""
    if r == i:
        return j - reach <= c < j
    return i - reach - 1 <= r < i and abs(c - j) <= reach


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_decoder_logits_depend_exactly_on_earlier_pixels_in_the_documented_field(layers):
    net = decoder(shape=(2, 10, 11), layers=layers)
    assert net.reach == layers
    z = torch.randn(2, 3, dtype=torch.float64)
    x = torch.bernoulli(torch.full((2, 2, 10, 11), 0.5, dtype=torch.float64))
    dep = dependence(net, z, x)
    height, width = x.shape[-2:]
    for i in range(height):
        for j in range(width):
            for r in range(height):
                for c in range(width):
                    if not in_field(i, j, r, c, net.reach):  # includes (r, c) >= (i, j) in raster order
                        assert dep[i, j, r, c] == 0, f"logits at {(i, j)} see pixel {(r, c)}"
    # inside the field, the extreme corners are reached (the field is not smaller than documented)
    i, j, R = 6, 5, net.reach
    for r, c in [(i, j - 1), (i, j - R), (i - 1, j), (i - R - 1, j), (i - R - 1, j - R), (i - R - 1, j + R),
                 (i - 1, j + R)]:
        assert dep[i, j, r, c] > 0, f"logits at {(i, j)} miss pixel {(r, c)}"


def test_first_pixel_depends_only_on_z():
    net = decoder()
    z = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    x = torch.zeros(3, 2, 6, 7, dtype=torch.float64)
    first = net(z, x)[..., 0, 0]
    assert dependence(net, z.detach(), x)[0, 0].sum() == 0
    (grad_z,) = torch.autograd.grad(first.sum(), z)
    assert grad_z.abs().sum() > 0


def test_logits_broadcast_particles_over_data():
    net = decoder()
    z = torch.randn(4, 3, 3, dtype=torch.float64)  # (K, N, d)
    x = torch.bernoulli(torch.full((3, 2, 6, 7), 0.5, dtype=torch.float64))
    logits = net(z, x)
    assert logits.shape == (4, 3, 2, 6, 7)
    assert torch.allclose(logits[2, 1], net(z[2, 1:2], x[1:2])[0], atol=1e-12)
    with torch.no_grad():  # the chunked path without gradients gives the same numbers
        assert torch.allclose(net(z, x), logits, atol=1e-12)


@pytest.mark.parametrize("with_map", [False, True])
def test_sampling_draws_each_pixel_from_the_teacher_forced_probabilities(with_map):
    net = decoder(shape=(2, 7, 6), layers=2, with_map=with_map)
    z = torch.randn(5, 3, dtype=torch.float64)
    x = net.sample(z, generator=torch.Generator().manual_seed(3))
    assert x.shape == (5, 2, 7, 6) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert 0 < x.mean() < 1
    teacher = torch.sigmoid(net(z, x)).detach()
    # the logits a sampling step computes on the partial image equal the teacher-forced ones
    maps = None if net.latent_map is None else net.latent_map(z).detach()
    for i, j in [(0, 0), (0, 5), (3, 0), (4, 2), (6, 5)]:
        partial = x.clone()
        partial.view(5, 2, -1)[:, :, i * 6 + j:] = 0
        with torch.no_grad():
            from_above = net.stack.from_rows_above(partial, i, maps, z)
            step = net.head(net.stack.features_at(partial, i, j, from_above, maps, z))[:, :, 0, 0]
        assert torch.allclose(torch.sigmoid(step), teacher[:, :, i, j], atol=1e-12)
    # replaying the draws in raster order from the teacher-forced probabilities gives the same image
    g, replay = torch.Generator().manual_seed(3), torch.zeros_like(x)
    for i in range(7):
        for j in range(6):
            replay[:, :, i, j] = torch.bernoulli(teacher[:, :, i, j], generator=g)
    assert torch.equal(replay, x)
    # leading sample dimensions of z carry over
    assert net.sample(z.reshape(1, 5, 3), generator=torch.Generator().manual_seed(3)).shape == (1, 5, 2, 7, 6)


def test_vq_prior_sampling_step_equals_its_teacher_forced_logits():
    torch.manual_seed(1)
    net = GatedPixelCNN(num_codes=5, channels=8, num_layers=3, cond_channels=2).double()
    cond = torch.randn(4, 2, 5, 6, dtype=torch.float64)
    codes = net.sample(4, (5, 6), cond, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = net(codes, cond)
        for i, j in [(0, 0), (2, 3), (4, 5)]:
            embedded = net.embed(codes)
            from_above = net.layers.from_rows_above(embedded, i, cond)
            step = net.head(net.layers.features_at(embedded, i, j, from_above, cond))[:, :, 0, 0]
            assert torch.allclose(step, logits[:, :, i, j], atol=1e-12)


def test_vq_prior_keeps_its_state_dict_keys():
    keys = set(GatedPixelCNN(num_codes=4, channels=4, num_layers=2, cond_channels=3).state_dict())
    assert {"embedding.weight", "layers.0.vertical.weight", "layers.0.vertical.mask",
            "layers.0.horizontal.mask", "layers.1.vertical_to_horizontal.weight", "layers.1.horizontal_out.bias",
            "layers.1.condition.weight", "head.1.weight", "head.3.bias"} <= keys
    assert not any("condition_vector" in k or "stack" in k for k in keys)


def test_a_conditioned_layer_refuses_to_run_without_its_condition():
    layer = GatedLayer(4, 3, "B", cond_features=2)
    v = torch.randn(1, 4, 3, 3)
    with pytest.raises(ValueError, match="cond vector"):
        layer(v, v)
    with pytest.raises(ValueError, match="at least 1"):
        GatedStack(4, 0)
