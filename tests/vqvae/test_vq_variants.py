"""Cosine, projected, residual and finite scalar quantizers: outputs recomputed independently."""
import itertools
import math

import pytest
import torch

from pyro_lvm.vqvae import (CosineVectorQuantizer, CosineVectorQuantizerEMA, FiniteScalarQuantizer,
                            ProjectedQuantizer, ResidualVectorQuantizer, VectorQuantizer, VectorQuantizerEMA)


def rows_of(z):
    return z.movedim(1, -1).reshape(-1, z.shape[1])


@pytest.mark.parametrize("cls", [CosineVectorQuantizer, CosineVectorQuantizerEMA])
def test_cosine_picks_the_largest_cosine_and_returns_unit_codes(cls):
    torch.manual_seed(0)
    vq = cls(num_codes=23, embedding_dim=5).double().eval()
    vq.codebook.data.normal_().mul_(torch.rand(23, 1, dtype=torch.float64) * 5)  # codes of any length
    z = torch.randn(3, 5, 4, 4, dtype=torch.float64) * 3
    out = vq(z)
    vectors = rows_of(z)
    cos = torch.tensor([[float(v @ e / (v.norm() * e.norm())) for e in vq.codebook.detach()] for v in vectors])
    assert torch.equal(out.indices.flatten(), cos.argmax(1))
    unit_codes = vq.codebook.detach() / vq.codebook.detach().norm(dim=1, keepdim=True)
    chosen = unit_codes[cos.argmax(1)]
    assert torch.allclose(rows_of(out.quantized), chosen, atol=1e-12)
    unit_inputs = vectors / vectors.norm(dim=1, keepdim=True)
    assert torch.allclose(out.commitment_loss, ((unit_inputs - chosen) ** 2).mean(), atol=1e-12)
    assert torch.allclose(out.commitment_loss, (2 - 2 * cos.max(1).values.double()).sum() / vectors.numel(), atol=1e-6)


def test_cosine_ema_codebook_stays_on_the_sphere_and_follows_normalized_means():
    torch.manual_seed(1)
    vq = CosineVectorQuantizerEMA(num_codes=8, embedding_dim=3, decay=0.0,
                                  dead_code_threshold=None).double().train()
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    out = vq(z)
    unit = torch.nn.functional.normalize(rows_of(z), dim=1)
    used = out.indices.flatten().unique()
    for k in used:  # decay 0: each used code is its members' mean, renormalized (smoothing only scales it)
        mean = unit[out.indices.flatten() == k].mean(0)
        assert torch.allclose(vq.codebook[k], mean / mean.norm(), atol=1e-12)
    assert len(used) > 3
    assert torch.allclose(vq.codebook[used].norm(dim=1), torch.ones(len(used), dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("inner", [VectorQuantizerEMA, CosineVectorQuantizer])
def test_projection_recomputed_by_hand_and_its_straight_through_gradient(inner):
    torch.manual_seed(2)
    q = ProjectedQuantizer(inner(num_codes=11, embedding_dim=3), input_dim=6).double().eval()
    z = torch.randn(2, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    out = q(z)
    w_in, b_in = q.project_in.weight.detach(), q.project_in.bias.detach()
    w_out, b_out = q.project_out.weight.detach(), q.project_out.bias.detach()
    low = rows_of(z.detach()) @ w_in.t() + b_in
    codes = q.quantizer.codes().detach()
    low = q.quantizer._normalize(low)
    index = torch.cdist(low, codes).argmin(1)
    assert torch.equal(out.indices.flatten(), index)
    assert torch.allclose(rows_of(out.quantized), codes[index] @ w_out.t() + b_out, atol=1e-12)
    assert torch.allclose(q.lookup(out.indices), out.quantized, atol=1e-12)
    if inner is VectorQuantizerEMA:  # identity through the rounding: dq/dz = W_out W_in
        upstream = torch.randn_like(out.quantized)
        (out.quantized * upstream).sum().backward()
        assert torch.allclose(rows_of(z.grad), rows_of(upstream) @ w_out @ w_in, atol=1e-12)


def test_residual_stages_code_what_the_previous_ones_missed():
    torch.manual_seed(3)
    stages = [VectorQuantizer(num_codes=7, embedding_dim=4) for _ in range(3)]
    rvq = ResidualVectorQuantizer(stages).double().eval()
    for stage in rvq.stages:
        stage.codebook.data.normal_()
    z = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    out = rvq(z)
    residual, total, commitment = rows_of(z.detach()), 0, 0
    for i, stage in enumerate(rvq.stages):
        codebook = stage.codebook.detach()
        index = torch.cdist(residual, codebook).argmin(1)
        assert torch.equal(out.indices[:, i].flatten(), index)
        commitment = commitment + ((residual - codebook[index]) ** 2).mean()
        residual, total = residual - codebook[index], total + codebook[index]
    assert torch.allclose(rows_of(out.quantized), total, atol=1e-12)
    assert torch.allclose(out.commitment_loss, commitment, atol=1e-12)
    assert torch.allclose(out.loss, out.codebook_loss + 0.25 * out.commitment_loss, atol=1e-12)
    assert torch.allclose(rvq.lookup(out.indices), out.quantized, atol=1e-12)
    assert out.counts.shape == (21,) and int(out.counts.sum()) == 3 * 18
    assert torch.equal(out.counts[7:14], torch.bincount(out.indices[:, 1].flatten(), minlength=7))
    upstream = torch.randn_like(out.quantized)
    (out.quantized * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)  # the whole sum is straight-through, once


def test_residual_error_shrinks_with_depth_on_data_it_was_fitted_to():
    torch.manual_seed(4)
    z = torch.randn(8, 4, 6, 6, dtype=torch.float64)
    errors = []
    for depth in (1, 2, 4):
        rvq = ResidualVectorQuantizer([VectorQuantizerEMA(32, 4, kmeans_init=True) for _ in range(depth)]).double()
        rvq.train()(z)
        errors.append(float(((rvq.eval()(z).quantized - z) ** 2).mean()))
    assert errors[0] > errors[1] > errors[2]


def fsq_by_hand(value, levels, eps=1e-3):
    half = (levels - 1) * (1 - eps) / 2
    offset = 0.5 if levels % 2 == 0 else 0.0
    shift = math.tan(offset / half)  # as in the paper's appendix A.1
    bounded = math.tanh(value + shift) * half - offset
    slope = half * (1 - math.tanh(value + shift) ** 2)
    return round(bounded) / (levels // 2), slope / (levels // 2)


def test_fsq_rounding_indices_and_straight_through_gradient_by_hand():
    levels = (3, 4, 5, 8)
    fsq = FiniteScalarQuantizer(levels).double()
    torch.manual_seed(5)
    z = (torch.randn(2, 4, 3, 3, dtype=torch.float64) * 2).requires_grad_()
    out = fsq(z)
    upstream = torch.randn_like(out.quantized)
    (out.quantized * upstream).sum().backward()
    values, slopes = rows_of(z.detach()), []
    expected = torch.zeros_like(values)
    for m, row in enumerate(values):
        for i, level in enumerate(levels):
            expected[m, i], slope = fsq_by_hand(float(row[i]), level)
            slopes.append(slope)
    assert torch.equal(rows_of(out.quantized), expected)
    assert torch.allclose(rows_of(z.grad), rows_of(upstream) * torch.tensor(slopes).reshape(-1, 4), atol=1e-12)
    digits = torch.round(expected * torch.tensor([1, 2, 2, 4]) + torch.tensor([1, 2, 2, 4])).long()
    index = digits[:, 0] + 3 * digits[:, 1] + 12 * digits[:, 2] + 60 * digits[:, 3]
    assert torch.equal(out.indices.flatten(), index)
    assert float(out.loss) == 0.0 and int(out.counts.sum()) == 18


@pytest.mark.parametrize("levels", [(3, 4, 5), (2, 2, 3)])
def test_fsq_grid_has_exactly_the_product_of_levels_points(levels):
    fsq = FiniteScalarQuantizer(levels)
    count = math.prod(levels)
    assert fsq.num_codes == count
    codes = fsq.lookup(torch.arange(count).reshape(1, count)).squeeze(0).t()
    assert len({tuple(c.tolist()) for c in codes}) == count
    for i, level in enumerate(levels):  # each channel takes exactly L_i values, (j - L//2) / (L//2)
        expected = {(j - level // 2) / (level // 2) for j in range(level)}
        assert set(codes[:, i].tolist()) == expected
    assert torch.equal(fsq.codes_to_indices(codes), torch.arange(count))
    # any input lands on the grid: extreme values reach the end levels and never beyond
    extremes = torch.tensor(list(itertools.product([-50.0, 50.0], repeat=3))).t().reshape(1, 3, 1, 8)
    out = fsq(extremes)
    assert set(out.indices.flatten().tolist()) <= set(range(count))
    assert out.quantized.abs().max() <= 1.0
    # and a dense sweep of inputs reaches every level of every channel
    sweep = torch.linspace(-6, 6, 2001)
    for i, level in enumerate(levels):
        z = torch.zeros(1, 3, 1, len(sweep))
        z[0, i, 0] = sweep
        assert len(fsq(z).quantized[0, i].unique()) == level


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="at least 2 levels"):
        FiniteScalarQuantizer((4, 1))
    with pytest.raises(ValueError, match="same dimension and codebook size"):
        ResidualVectorQuantizer([VectorQuantizer(8, 4), VectorQuantizer(16, 4)])
    with pytest.raises(ValueError, match=r"shape \(N, 2, \.\.\.\)"):
        ResidualVectorQuantizer([VectorQuantizer(8, 4)] * 2).lookup(torch.zeros(1, 3, 2, 2, dtype=torch.long))
