"""Code upkeep (the count floor beside the unused-batches rule), EMA statistics by mode,
float32 search under autocast, and checkpoints of every quantizer kind."""
import pytest
import torch

from pyro_lvm.vqvae import VQVAE, VQVAEConfig, VectorQuantizer, VectorQuantizerEMA, load_checkpoint, save_checkpoint
from pyro_lvm.vqvae.model import make_quantizer
from pyro_lvm.vqvae.quantizer import squared_distances

CODEBOOK = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [-10.0, 0.0], [0.0, -10.0]],
                        dtype=torch.float64)
COUNTS = torch.tensor([5.0, 1.0, 3.0, 0.5, 4.0, 2.5], dtype=torch.float64)
# one batch: three vectors near code 0, one near code 2, two near code 5; none near 1, 3, 4
BATCH = torch.tensor([[0.1, 0.2], [-0.2, 0.1], [0.3, -0.1], [0.2, 9.8], [0.1, -10.2], [-0.3, -9.9]],
                     dtype=torch.float64)


def grid(rows):
    return rows.t().reshape(1, rows.shape[1], 1, rows.shape[0])


def floor_quantizer(cls, threshold=2.0, decay=0.5):
    vq = cls(num_codes=6, embedding_dim=2, dead_code_threshold=threshold, decay=decay).double().train()
    vq.codebook.data.copy_(CODEBOOK)
    vq.ema_count.copy_(COUNTS)
    if isinstance(vq, VectorQuantizerEMA):
        vq.ema_weight.copy_(CODEBOOK * COUNTS.unsqueeze(1))
    return vq


@pytest.mark.parametrize("cls", [VectorQuantizer, VectorQuantizerEMA])
def test_count_floor_replaces_exactly_the_codes_below_it(cls):
    vq = floor_quantizer(cls)
    torch.manual_seed(0)
    vq(grid(BATCH))
    # by hand: n = (3, 0, 1, 0, 0, 2); N <- 0.5 N + 0.5 n = (4, 0.5, 2, 0.25, 2, 2.25)
    counts_after_update = torch.tensor([4.0, 0.5, 2.0, 0.25, 2.0, 2.25], dtype=torch.float64)
    below = [1, 3]  # strictly below the floor 2; codes 2 and 4 sit exactly on it and stay
    replaced = [k for k in range(6) if not torch.equal(vq.codebook[k], CODEBOOK[k])]
    if cls is VectorQuantizerEMA:  # kept codes move to their moving averages: recompute those
        sums = torch.zeros(6, 2, dtype=torch.float64)
        for v, k in zip(BATCH, [0, 0, 0, 2, 5, 5]):
            sums[k] += v
        weight = 0.5 * CODEBOOK * COUNTS.unsqueeze(1) + 0.5 * sums
        total = counts_after_update.sum()
        smoothed = (counts_after_update + 1e-5) / (total + 6e-5) * total
        kept = [k for k in range(6) if k not in below]
        assert torch.allclose(vq.codebook[kept], (weight / smoothed.unsqueeze(1))[kept], atol=1e-12)
        replaced = [k for k in range(6) if not torch.allclose(vq.codebook[k], (weight / smoothed.unsqueeze(1))[k])]
    assert replaced == below
    for k in below:
        assert (BATCH == vq.codebook[k]).all(1).any(), "a replaced code must sit on an encoder output"
        assert vq.ema_count[k] == 2.0
        if cls is VectorQuantizerEMA:
            assert torch.equal(vq.ema_weight[k], 2.0 * vq.codebook[k])
    kept = [k for k in range(6) if k not in below]
    assert torch.allclose(vq.ema_count[kept], counts_after_update[kept])
    assert int(vq.num_restarts) == len(below)


def test_count_floor_off_keeps_every_code_and_the_gradient_codebook_keeps_no_counts():
    vq = VectorQuantizerEMA(num_codes=6, embedding_dim=2, decay=0.5).double().train()
    vq.codebook.data.copy_(CODEBOOK)
    vq.ema_weight.copy_(CODEBOOK)
    vq(grid(BATCH))
    assert int(vq.num_restarts) == 0
    assert not hasattr(VectorQuantizer(6, 2), "ema_count")
    assert "ema_count" in VectorQuantizer(6, 2, dead_code_threshold=1.0).state_dict()


def test_unused_batches_rule_and_count_floor_combine():
    vq = floor_quantizer(VectorQuantizerEMA, threshold=0.1)
    vq.restart_after = 1
    vq(grid(BATCH))  # floor 0.1 catches nothing; codes 1, 3, 4 went unused for one batch
    assert int(vq.num_restarts) == 3


@pytest.mark.parametrize("threshold, expect_sizes", [(2.0, True), (None, False)])
def test_kmeans_start_sets_counts_to_the_cluster_sizes_with_the_floor(threshold, expect_sizes):
    torch.manual_seed(3)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]], dtype=torch.float64)
    sizes = [3, 5, 7, 9]
    data = torch.cat([c + 0.1 * torch.randn(n, 2, dtype=torch.float64) for c, n in zip(centres, sizes)])
    vq = VectorQuantizerEMA(num_codes=4, embedding_dim=2, kmeans_init=True, kmeans_iters=20,
                            dead_code_threshold=threshold).double()
    vq._kmeans_initialize(data)
    order = [int(torch.cdist(c[None], vq.codebook).argmin()) for c in centres]
    means = torch.stack([data[sum(sizes[:i]):sum(sizes[:i + 1])].mean(0) for i in range(4)])
    assert torch.allclose(vq.codebook[order], means, atol=1e-10)
    expected = torch.tensor(sizes, dtype=torch.float64) if expect_sizes else torch.ones(4, dtype=torch.float64)
    assert torch.equal(vq.ema_count[order], expected)
    assert torch.allclose(vq.ema_weight, vq.codebook * vq.ema_count.unsqueeze(1), atol=1e-10)


VARIANTS = {
    "vq-ema": dict(),
    "vq-grad": dict(ema=False),
    "unused20": dict(dead_code_threshold=None, restart_after=20),
    "cosine-ema": dict(quantizer="cosine"),
    "cosine-grad": dict(quantizer="cosine", ema=False),
    "lowdim": dict(codebook_dim=3),
    "residual": dict(residual_depth=3),
    "fsq": dict(quantizer="fsq", fsq_levels=(4, 3, 5)),
}
SMALL = dict(hidden_channels=8, residual_channels=4, num_residual_layers=1, embedding_dim=4, num_codes=16)


def buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", VARIANTS)
def test_statistics_move_in_training_mode_only(name):
    torch.manual_seed(0)
    quantizer = make_quantizer(VQVAEConfig(**SMALL, **VARIANTS[name])).double()
    z = torch.randn(4, 4, 5, 5, dtype=torch.float64)
    before = buffers(quantizer.eval())
    first = quantizer(z)
    assert all(torch.equal(before[k], v) for k, v in quantizer.state_dict().items()), "eval mode changed a statistic"
    second = quantizer(z)
    assert torch.equal(first.indices, second.indices)
    quantizer.train()(z)
    moved = [k for k, v in quantizer.state_dict().items() if not torch.equal(before[k], v)]
    if name == "fsq":
        assert moved == []  # nothing to learn, nothing to keep
    else:
        assert any("codebook" in k or "ema_count" in k or "initialized" in k for k in moved)


@pytest.mark.parametrize("name", VARIANTS)
def test_search_runs_in_float32_under_autocast_and_returns_the_input_dtype(name):
    torch.manual_seed(1)
    quantizer = make_quantizer(VQVAEConfig(**SMALL, **VARIANTS[name])).eval()
    z = torch.randn(2, 4, 6, 6).bfloat16()
    reference = quantizer(z.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = quantizer(z)
    assert out.quantized.dtype == torch.bfloat16
    assert torch.equal(out.indices, reference.indices), "autocast changed code choices"
    assert out.loss.dtype == torch.float32


def test_bfloat16_distances_would_change_code_choices():
    # why the search leaves autocast: the same search in bfloat16 picks other codes
    torch.manual_seed(2)
    vq = VectorQuantizerEMA(512, 16).eval()
    vq.codebook.normal_()
    z = torch.randn(4096, 16)
    exact = torch.cdist(z.double(), vq.codebook.double()).argmin(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(vq(z.t().reshape(1, 16, 1, -1)).indices.flatten(), exact)
    in_bf16 = squared_distances(z.bfloat16(), vq.codebook.bfloat16()).argmin(1)
    assert (in_bf16 != exact).float().mean() > 0.001


@pytest.mark.parametrize("name", VARIANTS)
def test_checkpoint_round_trip_of_every_quantizer(tmp_path, name):
    torch.manual_seed(4)
    model = VQVAE(VQVAEConfig(**SMALL, **VARIANTS[name]))
    x = torch.rand(6, 1, 28, 28)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        out = model.train()(x)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_checkpoint(tmp_path / "m.pt").model
    assert loaded.config == model.config
    state, restored = model.state_dict(), loaded.state_dict()
    assert state.keys() == restored.keys() and all(torch.equal(state[k], restored[k]) for k in state)
    codes = model.encode(x)
    assert all(torch.equal(a, b) for a, b in zip(codes, loaded.encode(x)))
    assert torch.equal(model.decode(codes), loaded.decode(codes))


def test_configs_saved_before_the_count_floor_keep_their_rule():
    old = {k: v for k, v in VQVAEConfig(restart_after=20).to_dict().items()
           if k not in VQVAEConfig.LEGACY}
    config = VQVAEConfig.from_dict(old)
    assert config.dead_code_threshold is None and config.restart_after == 20 and config.quantizer == "vq"
    assert VQVAEConfig().dead_code_threshold == 2.0 and VQVAEConfig().restart_after is None


@pytest.mark.parametrize("cls", [VectorQuantizer, VectorQuantizerEMA])
def test_error_weighted_replacement_sends_codes_where_the_codebook_serves_worst(cls):
    vq = floor_quantizer(cls)
    vq.replacement = "error"
    # every vector sits on code 0, 2 or 5 (error 0) except two, at distance 1 and 2 from code 0
    batch = torch.tensor([[0.0, 0.0], [0.0, 10.0], [0.0, -10.0], [1.0, 0.0], [0.0, 0.0], [0.0, -2.0]],
                         dtype=torch.float64)
    # dead after the update: codes 1 and 3 (unused) and 5 (N = 0.5 * 2.5 + 0.5 * 1 = 1.75 < 2);
    # three codes and only two vectors with an error: both must be taken, the third code goes anywhere
    for seed in range(20):
        trial = floor_quantizer(cls)
        trial.replacement = "error"
        torch.manual_seed(seed)
        assert trial.dead_codes().tolist() == [1, 3]  # before this batch's update
        trial(grid(batch))
        assert int(trial.num_restarts) == 3
        moved = [tuple(trial.codebook[k].tolist()) for k in (1, 3, 5)]
        assert {(1.0, 0.0), (0.0, -2.0)} <= set(moved), "replacements skipped the worst-served vectors"
    with pytest.raises(ValueError, match="replacement must be one of"):
        cls(4, 2, replacement="nearest")
    assert VQVAEConfig.from_dict({k: v for k, v in VQVAEConfig().to_dict().items()
                                  if k != "replacement"}).replacement == "uniform"


@pytest.mark.parametrize("name", ["vq-ema", "vq-grad", "fsq", "lowdim"])
def test_a_model_cast_to_low_or_high_precision_still_quantizes(name):
    torch.manual_seed(5)
    x = torch.rand(2, 1, 28, 28)
    for dtype in (torch.bfloat16, torch.float64):
        model = VQVAE(VQVAEConfig(**SMALL, **VARIANTS[name])).to(dtype)
        out = model(x.to(dtype))
        assert out.reconstruction.dtype == dtype
        assert model.decode(model.encode(x.to(dtype)))[0].dtype == dtype


def test_the_prior_refuses_residual_codes_with_the_fix():
    from pyro_lvm.vqvae import CodePrior
    from pyro_lvm.vqvae.train import fit_prior

    codes = [torch.zeros(4, 2, 7, 7, dtype=torch.long)]
    with pytest.raises(ValueError, match="one code per position.*residual_depth=1"):
        fit_prior(CodePrior([16], [(7, 7)], channels=4, num_layers=1), codes, 1)
