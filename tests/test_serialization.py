"""The one checkpoint format: plain values only, a digest that names damage, kinds that name loaders."""
import random

import numpy as np
import pytest
import pyro
import torch

from pyro_lvm.errors import CheckpointError
from pyro_lvm.models import VAE
from pyro_lvm.serialization import digest, load_state, numpy_rng_state, save_state, set_numpy_rng_state
from pyro_lvm.train import fit, load_checkpoint
from pyro_lvm.train.checkpoint import (decode_constraint, encode_constraint, param_store_state, rng_state,
                                       set_param_store_state, set_rng_state)


def _trained_checkpoint(path):
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.full((40, 1, 28, 28), 0.3))
    pyro.param("extra", torch.ones(3), constraint=pyro.distributions.constraints.positive)
    fit(vae.model, vae.guide, "elbo", x, epochs=1, batch_size=20, progress=False, checkpoint=str(path),
        modules={"vae": vae})
    return path


def test_round_trip_keeps_every_value(tmp_path):
    state = {"t": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([True, False]), "i": 3, "f": 0.5, "s": "x",
             "n": None, "l": [1, (2, 3.0)], "nested": {"half": torch.ones(2, dtype=torch.bfloat16)}}
    save_state(tmp_path / "c.pt", "fit", state)
    kind, loaded = load_state(tmp_path / "c.pt")
    assert kind == "fit" and digest(loaded) == digest(state)
    assert torch.equal(loaded["nested"]["half"], state["nested"]["half"]) and loaded["l"] == [1, (2, 3.0)]


def test_objects_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"state\['bad'\] is a object"):
        save_state(tmp_path / "c.pt", "fit", {"bad": object()})
    assert not (tmp_path / "c.pt").exists()


def test_digest_sees_every_change():
    base = {"w": torch.zeros(4), "k": [1, 2]}
    changed = [{"w": torch.tensor([0.0, 0.0, 0.0, 1e-30]), "k": [1, 2]}, {"w": torch.zeros(4), "k": [1, 3]},
               {"w": torch.zeros(2, 2), "k": [1, 2]}, {"w": torch.zeros(4, dtype=torch.float64), "k": [1, 2]},
               {"w": torch.zeros(4), "k": (1, 2)}]
    assert len({digest(base), *map(digest, changed)}) == 1 + len(changed)


def test_a_flipped_byte_is_an_error_naming_the_file_or_changes_nothing(tmp_path):
    path = _trained_checkpoint(tmp_path / "checkpoint.pt")
    original = load_checkpoint(path)
    raw = bytearray(path.read_bytes())
    rng = random.Random(0)
    positions = sorted(rng.sample(range(len(raw)), 150) + [len(raw) // 2, len(raw) - 30])
    integrity = 0
    for position in positions:
        damaged = bytearray(raw)
        damaged[position] ^= 0x5A
        (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
        try:
            state = load_checkpoint(tmp_path / "damaged.pt")
        except CheckpointError as e:
            assert "damaged.pt" in str(e) and any(w in str(e) for w in ("corrupt", "integrity", "damaged")), str(e)
            integrity += "integrity" in str(e)
            continue
        assert digest(state) == digest(original), f"byte {position} changed the contents silently"
    assert integrity > 0  # tensor bytes are covered by the digest, not only by the zip reader


def test_truncated_file_is_named(tmp_path):
    path = _trained_checkpoint(tmp_path / "checkpoint.pt")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="checkpoint.pt is corrupt or truncated"):
        load_checkpoint(path)


def test_vqvae_and_fit_checkpoints_name_each_others_loader(tmp_path):
    from pyro_lvm.vqvae import VQVAE
    from pyro_lvm.vqvae import load_checkpoint as load_vq
    from pyro_lvm.vqvae.checkpoint import save_checkpoint as save_vq

    fit_path = _trained_checkpoint(tmp_path / "fit.pt")
    vq_path = save_vq(tmp_path / "vq.pt", VQVAE(num_codes=8))
    with pytest.raises(CheckpointError, match="is a 'vqvae' checkpoint, not a 'fit' one; load it with "
                                              "pyro_lvm.vqvae.load_checkpoint"):
        load_checkpoint(vq_path)
    with pytest.raises(CheckpointError, match="is a 'fit' checkpoint, not a 'vqvae' one; load it with "
                                              "pyro_lvm.train.load_checkpoint"):
        load_vq(fit_path)


def test_random_states_and_constraints_round_trip(tmp_path):
    np.random.seed(3)
    random.seed(4)
    torch.manual_seed(5)
    generator = torch.Generator().manual_seed(6)
    state = rng_state(generator)
    save_state(tmp_path / "r.pt", "fit", state)
    expected = (np.random.rand(), random.random(), torch.rand(1).item(), torch.rand(1, generator=generator).item())
    np.random.seed(0), random.seed(0), torch.manual_seed(0)
    other = torch.Generator()
    set_rng_state(load_state(tmp_path / "r.pt")[1], other)
    assert (np.random.rand(), random.random(), torch.rand(1).item(), torch.rand(1, generator=other).item()) == expected
    np.random.standard_normal()  # a cached Gaussian is part of numpy's state too
    cached = numpy_rng_state()
    after = np.random.standard_normal()
    set_numpy_rng_state(cached)
    assert np.random.standard_normal() == after

    constraints = pyro.distributions.constraints
    for c in (constraints.positive, constraints.interval(-1.0, 2.0), constraints.simplex,
              constraints.independent(constraints.greater_than(0.5), 1), constraints.lower_cholesky):
        rebuilt = decode_constraint(encode_constraint(c))
        assert type(rebuilt) is type(c) and vars(rebuilt).keys() == vars(c).keys()
        value = torch.tensor([[0.75, 0.25], [0.5, 1.5]])
        assert torch.equal(rebuilt.check(value), c.check(value))


def test_param_store_round_trips_with_its_constraint():
    constraints = pyro.distributions.constraints
    pyro.param("scale", torch.tensor([0.5, 2.0]), constraint=constraints.positive)
    pyro.param("p", torch.tensor([0.2, 0.8]), constraint=constraints.simplex)
    state = param_store_state()
    pyro.clear_param_store()
    set_param_store_state(state)
    assert torch.allclose(pyro.param("scale"), torch.tensor([0.5, 2.0]))
    assert torch.allclose(pyro.param("p"), torch.tensor([0.2, 0.8]))
    rebuilt = pyro.get_param_store()._constraints["scale"]
    assert type(rebuilt) is type(constraints.positive) and vars(rebuilt) == vars(constraints.positive)
    assert (pyro.param("scale").unconstrained() - torch.tensor([0.5, 2.0]).log()).abs().max() < 1e-6


def test_module_parameters_are_not_stored_twice():
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    vae = VAE(latent_dim=2, hidden=(8,))
    pyro.param("extra", torch.ones(2))
    x = torch.bernoulli(torch.full((8, 1, 28, 28), 0.3))
    SVI(vae.model, vae.guide, Adam({"lr": 1e-3}), Trace_ELBO()).step(x)  # registers the networks
    assert len(pyro.get_param_store()) > 1
    assert list(param_store_state([vae])["params"]) == ["extra"]
    assert len(param_store_state()["params"]) == len(pyro.get_param_store())
