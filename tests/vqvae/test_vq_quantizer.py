import math

import pytest
import torch

from pyro_lvm.vqvae import CodebookUsage, VectorQuantizer, VectorQuantizerEMA, perplexity

QUANTIZERS = [VectorQuantizer, VectorQuantizerEMA]

# A tiny example worked by hand: codes e0=(0,0), e1=(1,1), e2=(3,0) and four encoder outputs.
CODEBOOK = [[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]
VECTORS = [[0.2, -0.1],   # nearest e0, squared distance 0.04 + 0.01 = 0.05
           [0.9, 1.3],    # nearest e1, 0.01 + 0.09 = 0.10
           [2.5, 0.5],    # nearest e2, 0.25 + 0.25 = 0.50
           [1.1, 0.7]]    # nearest e1, 0.01 + 0.09 = 0.10
ASSIGNED = [0, 1, 2, 1]


def as_grid(vectors):
    """(M, D) vectors as an encoder output of shape (1, D, 1, M)."""
    return torch.tensor(vectors, dtype=torch.float64).t().reshape(1, -1, 1, len(vectors))


def hand_quantizer(cls, **kwargs):
    vq = cls(num_codes=3, embedding_dim=2, **kwargs).double()
    vq.codebook.data.copy_(torch.tensor(CODEBOOK, dtype=torch.float64))
    if isinstance(vq, VectorQuantizerEMA):
        vq.ema_weight.copy_(vq.codebook)
    return vq


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_assignments_match_brute_force_nearest_neighbour(cls):
    torch.manual_seed(0)
    vq = cls(num_codes=37, embedding_dim=8).double().eval()
    vq.codebook.data.normal_()
    z = torch.randn(4, 8, 5, 6, dtype=torch.float64)
    out = vq(z)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 8)
    best = []
    for v in vectors:
        distances = [float(((v - e) ** 2).sum()) for e in vq.codebook.detach()]
        best.append(min(range(len(distances)), key=distances.__getitem__))
    expected = torch.tensor(best).reshape(4, 5, 6)
    assert torch.equal(out.indices, expected)
    assert torch.allclose(out.quantized, vq.codebook[expected].permute(0, 3, 1, 2), atol=1e-12)


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_straight_through_gradient_reaches_encoder_unchanged(cls):
    torch.manual_seed(1)
    vq = cls(num_codes=16, embedding_dim=4).train()
    z = torch.randn(3, 4, 5, 5, requires_grad=True)
    out = vq(z)
    upstream = torch.randn_like(out.quantized)
    (out.quantized * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)
    if cls is VectorQuantizer:
        assert vq.codebook.grad is None  # only the codebook loss moves the codebook


def test_loss_terms_equal_hand_computed_values():
    vq = hand_quantizer(VectorQuantizer, commitment_cost=0.25)
    z = as_grid(VECTORS).requires_grad_()
    out = vq(z)
    # sum of squared distances 0.05 + 0.10 + 0.50 + 0.10 = 0.75 over 8 elements
    assert out.indices.flatten().tolist() == ASSIGNED
    assert out.codebook_loss.item() == pytest.approx(0.75 / 8, abs=1e-12)
    assert out.commitment_loss.item() == pytest.approx(0.75 / 8, abs=1e-12)
    assert out.loss.item() == pytest.approx(0.75 / 8 * 1.25, abs=1e-12)
    # code frequencies (1/4, 1/2, 1/4): entropy 1.5 log 2
    assert out.perplexity.item() == pytest.approx(2 ** 1.5, rel=1e-6)
    assert out.counts.tolist() == [1, 2, 1]

    out.loss.backward()
    residual = torch.tensor(VECTORS, dtype=torch.float64) - torch.tensor(CODEBOOK, dtype=torch.float64)[ASSIGNED]
    # d/dz of beta * mean((z - sg[e])^2) is 2 * beta * (z - e) / 8; the codebook term sends nothing to z
    expected_z_grad = (2 * 0.25 / 8) * residual
    assert torch.allclose(z.grad[0, :, 0, :].t(), expected_z_grad, atol=1e-12)
    # d/de of mean((sg[z] - e)^2) is -2 * (z - e) / 8, summed over the vectors assigned to e
    expected_codebook_grad = torch.zeros(3, 2, dtype=torch.float64)
    for k, r in zip(ASSIGNED, residual):
        expected_codebook_grad[k] -= 2 * r / 8
    assert torch.allclose(vq.codebook.grad, expected_codebook_grad, atol=1e-12)


def test_ema_loss_is_the_commitment_term_only():
    vq = hand_quantizer(VectorQuantizerEMA, commitment_cost=0.25).eval()
    out = vq(as_grid(VECTORS))
    assert out.codebook_loss.item() == pytest.approx(0.75 / 8, abs=1e-12)
    assert out.loss.item() == pytest.approx(0.25 * 0.75 / 8, abs=1e-12)


def test_ema_updates_codebook_in_training_mode_only():
    vq = hand_quantizer(VectorQuantizerEMA, decay=0.9, epsilon=0.1)
    before = vq.codebook.clone()
    vq.eval()
    for _ in range(3):
        vq(as_grid(VECTORS))
    assert torch.equal(vq.codebook, before)
    assert torch.equal(vq.ema_count, torch.ones(3, dtype=torch.float64))

    vq.train()
    vq(as_grid(VECTORS))
    # by hand: N = 0.9 * 1 + 0.1 * (1, 2, 1); m = 0.9 * e + 0.1 * (sum of assigned vectors)
    counts = torch.tensor([1.0, 1.1, 1.0], dtype=torch.float64)
    sums = torch.tensor([[0.02, -0.01], [0.9 + 0.2, 0.9 + 0.2], [2.7 + 0.25, 0.05]], dtype=torch.float64)
    # Laplace smoothing: n (N_k + eps) / (n + K eps) with n = 3.1, eps = 0.1
    smoothed = 3.1 * (counts + 0.1) / (3.1 + 3 * 0.1)
    assert torch.allclose(vq.ema_count, counts, atol=1e-12)
    assert torch.allclose(vq.ema_weight, sums, atol=1e-12)
    assert torch.allclose(vq.codebook, sums / smoothed.unsqueeze(1), atol=1e-12)


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_dead_code_is_restarted_at_an_encoder_output(cls):
    torch.manual_seed(2)
    vq = cls(num_codes=4, embedding_dim=2, restart_after=3).double().train()
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [-1.0, 1.0]], dtype=torch.float64)
    vq.codebook.data.copy_(codebook)
    if cls is VectorQuantizerEMA:
        vq.ema_weight.copy_(codebook)
    centres = codebook[[0, 1, 3]]

    def batch():
        vectors = centres.repeat(10, 1) + 0.05 * torch.randn(30, 2, dtype=torch.float64)
        return vectors, as_grid(vectors.tolist())

    for step in range(2):
        vq(batch()[1])
        assert torch.allclose(vq.codebook[2], codebook[2], atol=1e-3)  # EMA shrinks it a hair
        assert vq.unused_steps.tolist() == [0, 0, step + 1, 0]
    vectors, z = batch()
    vq(z)
    restarted = vq.codebook[2]
    assert not torch.allclose(restarted, codebook[2], atol=1.0)
    assert (vectors == restarted).all(1).any(), "a restarted code must sit on an encoder output"
    assert int(vq.num_restarts) == 1
    assert vq.unused_steps[2] == 0
    if cls is VectorQuantizer:  # no optimizer step, so the used codes stay where they were
        assert torch.equal(vq.codebook[[0, 1, 3]], codebook[[0, 1, 3]])
    else:
        assert vq.ema_count[2] == 1.0 and torch.equal(vq.ema_weight[2], restarted)


def test_no_restarts_in_eval_mode_or_when_disabled():
    far = torch.tensor([[0.0, 0.0], [50.0, 50.0]])
    for vq, mode in ((VectorQuantizer(2, 2, restart_after=1), "eval"),
                     (VectorQuantizer(2, 2, restart_after=None), "train")):
        vq.codebook.data.copy_(far)
        vq.train(mode == "train")
        for _ in range(5):
            vq(0.1 * torch.randn(2, 2, 3, 3))
        assert torch.equal(vq.codebook.data, far)
        assert int(vq.num_restarts) == 0


def test_kmeans_initialisation_on_first_training_batch():
    torch.manual_seed(3)
    vq = VectorQuantizerEMA(num_codes=8, embedding_dim=2, kmeans_init=True, kmeans_iters=30)
    untouched = vq.codebook.clone()
    vq.eval()
    vq(torch.randn(2, 2, 4, 4))
    assert torch.equal(vq.codebook, untouched) and not vq.initialized
    clusters = 10 * torch.randn(8, 2)
    vectors = clusters.repeat(50, 1) + 0.1 * torch.randn(400, 2)
    vq.train()
    vq.decay = 1.0 - 1e-12  # isolate the initialisation from the moving-average step
    vq(vectors.t().reshape(1, 2, 20, 20))
    assert vq.initialized
    # k-means centres are the means of the vectors assigned to them
    assign = torch.cdist(vectors, vq.codebook).argmin(1)
    for k in assign.unique():
        assert torch.allclose(vq.codebook[k], vectors[assign == k].mean(0), atol=1e-4)
    first = vq.codebook.clone()
    vq(vectors.t().reshape(1, 2, 20, 20))  # no second initialisation
    assert torch.allclose(vq.codebook, first, atol=1e-4)


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_bad_shapes_and_indices_raise_clear_errors(cls):
    vq = cls(num_codes=4, embedding_dim=3)
    with pytest.raises(ValueError, match=r"expected encoder outputs of shape \(N, 3"):
        vq(torch.randn(2, 5, 4, 4))
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        vq.lookup(torch.tensor([[0, 4]]))
    with pytest.raises(ValueError, match="integers"):
        vq.lookup(torch.zeros(2, 2))


def test_perplexity_and_epoch_usage():
    assert perplexity(torch.tensor([5, 5, 5, 5])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([0, 9, 0])).item() == pytest.approx(1.0)
    usage = CodebookUsage(4)
    usage.update(torch.tensor([3, 0, 0, 1]))
    usage.update(torch.tensor([1, 0, 0, 3]))
    summary = usage.summary("train_")
    assert summary["train_codes_used"] == 2 and summary["train_dead_codes"] == 2
    assert summary["train_usage"] == 0.5
    assert summary["train_perplexity"] == pytest.approx(2.0)
    p = torch.tensor([0.25, 0.75])
    assert perplexity(torch.tensor([1, 3])).item() == pytest.approx(math.exp(-(p * p.log()).sum()))
    with pytest.raises(ValueError, match=r"counts of shape \(4,\)"):
        usage.update(torch.ones(3))
