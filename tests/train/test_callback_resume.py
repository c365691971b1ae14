"""fit runs its callbacks before it writes the checkpoint: their state after the epoch and what they add
to the epoch's record are saved, so a resumed run's callbacks carry on exactly where they left off."""
import pytest
import torch

from pyro_lvm.models import VAE
from pyro_lvm.train import EarlyStopping, fit, load_checkpoint

EPOCHS = 20


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.2), generator=g)


class _Tally:
    """Counts the epochs it has seen (its state) and writes the count into each record."""

    def __init__(self):
        self.count = 0

    def __call__(self, record, state):
        self.count += 1
        record["tally"] = self.count
        return False

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def _run(path, epochs, resume=False):
    torch.manual_seed(1)  # fresh weights: on resume everything must come from the checkpoint
    vae = VAE(latent_dim=3, hidden=(16,))
    # lr 1e-2: the test loss falls for about five epochs, then wanders within a nat
    early, tally = EarlyStopping(monitor="test_loss", patience=3, min_delta=1.0), _Tally()
    result = fit(vae.model, vae.guide, "elbo", _data(96, 0), _data(32, 1), epochs=epochs, batch_size=32, lr=1e-2,
                 seed=3, progress=False, checkpoint=str(path), resume=resume, callbacks=[early, tally])
    return result, early, tally


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("straight") / "ck.pt", EPOCHS)


def test_early_stopping_resumed_from_the_epoch_before_it_stops_stops_there(straight, tmp_path):
    full, early, _ = straight
    stopped = len(full.history)
    assert 4 <= stopped < EPOCHS and early.bad_epochs == early.patience  # it did stop early, after a plateau
    # the checkpoint of the epoch before: bad_epochs = patience - 1 there, one short of stopping
    _run(tmp_path / "ck.pt", stopped - 1)
    assert load_checkpoint(tmp_path / "ck.pt")["callbacks"][0]["bad_epochs"] == early.patience - 1
    resumed, resumed_early, _ = _run(tmp_path / "ck.pt", EPOCHS, resume=True)
    assert len(resumed.history) == stopped
    assert (resumed_early.best, resumed_early.bad_epochs) == (early.best, early.bad_epochs)
    assert [r["test_loss"] for r in resumed.history] == [r["test_loss"] for r in full.history]


def test_the_checkpoint_holds_what_callbacks_did_in_its_epoch(straight, tmp_path):
    full, early, tally = straight
    saved = load_checkpoint(full.checkpoint)
    assert saved["callbacks"] == [early.state_dict(), tally.state_dict()]  # their state after the last epoch
    assert [r["tally"] for r in saved["history"]] == list(range(1, len(full.history) + 1))
    # and a resumed tally counts on from there, into the records of the epochs it adds
    _run(tmp_path / "ck.pt", 3)
    resumed, _, resumed_tally = _run(tmp_path / "ck.pt", 5, resume=True)
    assert resumed_tally.count == 5 and [r["tally"] for r in resumed.history] == [1, 2, 3, 4, 5]
    assert load_checkpoint(tmp_path / "ck.pt")["history"][-1]["tally"] == 5
