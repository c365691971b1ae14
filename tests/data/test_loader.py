"""TensorLoader: coverage of every example, reproducible randomness, dynamic binarization."""
import pytest
import torch

from pyro_lvm.data import ImageDataset, TensorLoader, check_binary, check_finite


def _probabilities(n=300, seed=0):
    """Pixel probabilities with exact 0s and 1s, like real digits."""
    p = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    p[:, :, :4] = 0.0
    p[:, :, -4:] = 1.0
    return p


def _epoch(loader):
    """One epoch's batches, each as a tuple of tensors."""
    return [tuple(t.clone() for t in batch) if isinstance(batch, tuple) else (batch.clone(),)
            for batch in loader]


@pytest.mark.parametrize("n, batch_size, drop_last, batches", [
    (300, 64, False, 5), (300, 64, True, 4), (256, 64, True, 4), (5, 10, False, 1), (5, 10, True, 0),
])
def test_each_index_once_per_epoch(n, batch_size, drop_last, batches):
    data = torch.arange(n, dtype=torch.float32).reshape(n, 1)
    loader = TensorLoader(data, batch_size, drop_last=drop_last, labels=torch.arange(n),
                          generator=torch.Generator().manual_seed(0))
    assert len(loader) == batches and loader.dataset_size == n
    for _ in range(2):
        epoch = _epoch(loader)
        assert len(epoch) == batches
        index = torch.cat([y for _, y in epoch]) if epoch else torch.zeros(0, dtype=torch.long)
        assert len(index) == (n // batch_size) * batch_size if drop_last else n
        assert len(index.unique()) == len(index)  # no example twice
        for x, y in epoch:
            assert torch.equal(x[:, 0], y.float())  # images and labels stay paired
            assert len(x) == batch_size or not drop_last


def test_unshuffled_order_is_the_data_order():
    data = torch.arange(10.0).reshape(10, 1)
    batches = list(TensorLoader(data, 4, shuffle=False))
    assert [b[:, 0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffle_changes_between_epochs_and_is_uniform():
    """Each example's position is uniform over the epoch: its mean over E epochs is (n-1)/2
    with standard error sqrt((n^2 - 1) / 12 / E)."""
    n, epochs = 20, 2000
    loader = TensorLoader(torch.arange(n).reshape(n, 1), n, generator=torch.Generator().manual_seed(0))
    orders = torch.stack([next(iter(loader))[:, 0] for _ in range(epochs)])
    assert not torch.equal(orders[0], orders[1])
    position = orders.argsort(dim=1).double()  # position of each example in each epoch
    z = (position.mean(0) - (n - 1) / 2) / (((n ** 2 - 1) / 12 / epochs) ** 0.5)
    assert z.abs().max() < 4.5


def test_dynamic_draws_differ_between_epochs():
    p = _probabilities()
    loader = TensorLoader(p, 64, binarize=True, labels=torch.arange(len(p)),
                          generator=torch.Generator().manual_seed(0))
    first, second = (_sorted_draws(_epoch(loader)) for _ in range(2))
    check_binary(first)
    assert not torch.equal(first, second)
    # Agreement of two independent draws of the same pixel has probability
    # q = p^2 + (1 - p)^2; reusing draws would give 1.
    q = (p ** 2 + (1 - p) ** 2).double()
    agree = (first == second).double()
    z = (agree.sum() - q.sum()) / (q * (1 - q)).sum().sqrt()
    assert abs(z) < 4


def _sorted_draws(epoch):
    x = torch.cat([x for x, _ in epoch])
    y = torch.cat([y for _, y in epoch])
    return x[y.argsort()]


def test_restoring_generator_state_replays_the_epoch():
    p = _probabilities()
    generator = torch.Generator().manual_seed(1)
    loader = TensorLoader(p, 64, binarize=True, generator=generator)
    _epoch(loader)  # an epoch already trained
    state = generator.get_state()
    expected = _epoch(loader)
    _epoch(loader)  # training goes on, then resumes from the checkpoint
    generator.set_state(state)
    torch.manual_seed(12345)  # the global generator must play no part
    torch.rand(3)
    replay = _epoch(loader)
    assert len(replay) == len(expected)
    for (a,), (b,) in zip(expected, replay):
        assert torch.equal(a, b)


def test_dynamic_draws_have_the_grayscale_mean():
    """Over E epochs every pixel is drawn E times. For pixel position j the total count
    S_j of ones over images and epochs has mean E sum_i p_ij and variance
    E sum_i p_ij (1 - p_ij); so does the grand total, summed over j. The grand total
    must lie within 4 standard errors, each of the 784 positions within 4.5
    (a Bonferroni bound: 784 * P(|z| > 4.5) < 0.01)."""
    p = _probabilities(n=200, seed=2).double()
    epochs = 25
    loader = TensorLoader(p.float(), 50, binarize=True, generator=torch.Generator().manual_seed(2))
    ones = sum(x.double().sum(0) for _ in range(epochs) for x in loader).flatten()
    mean = epochs * p.sum(0).flatten()
    variance = epochs * (p * (1 - p)).sum(0).flatten()
    assert abs((ones.sum() - mean.sum()) / variance.sum().sqrt()) < 4
    certain = variance == 0  # pixels with p = 0 or 1 are never flipped
    assert certain.any() and torch.equal(ones[certain], mean[certain])
    z = (ones - mean)[~certain] / variance[~certain].sqrt()
    assert z.abs().max() < 4.5


def test_loader_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(3, 1), 0)
    with pytest.raises(ValueError, match="2 labels for 3 examples"):
        TensorLoader(torch.zeros(3, 1), 2, labels=torch.zeros(2))


def test_dataset_loaders():
    p = _probabilities(n=100)
    data = ImageDataset("toy", train=p, test=torch.bernoulli(p), train_labels=torch.arange(100),
                        test_labels=torch.arange(100), binarize="dynamic", source="test")
    generator = torch.Generator().manual_seed(0)
    train = data.train_loader(32, generator=generator, with_labels=True)
    assert train.binarize and train.shuffle and train.generator is generator and len(train) == 4
    x, y = next(iter(train))
    check_binary(x)
    test = data.test_loader(30)
    assert not test.binarize and not test.shuffle and len(test) == 4
    assert torch.equal(torch.cat(list(test)), data.test)
    with pytest.raises(ValueError, match="no validation split"):
        data.valid_loader(10)
    with pytest.raises(ValueError, match="binarize must be one of"):
        ImageDataset("toy", train=p, test=p, binarize="yes")


def test_check_binary():
    check_binary(torch.tensor([0.0, 1.0, 1.0]))
    check_binary(torch.bernoulli(_probabilities(n=2)))
    gray = torch.tensor([0.0, 0.3529, 1.0])
    with pytest.raises(ValueError) as error:
        check_binary(gray, what="batch")
    message = str(error.value)
    assert "Bernoulli likelihood needs batch in {0, 1}" in message
    assert "[0, 1]" in message and "0.3529" in message
    assert "binarize='dynamic' or 'static'" in message and "Gaussian likelihood" in message


def test_check_finite():
    check_finite(torch.rand(5))
    with pytest.raises(ValueError, match="1 NaN and 2 infinite"):
        check_finite(torch.tensor([0.0, float("nan"), float("inf"), -float("inf")]))
