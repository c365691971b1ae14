"""Nothing the package loads runs code: a malicious pickle in a run folder is refused everywhere.

The payload's ``__reduce__`` calls ``os.system("touch MARKER")``. The first test shows the payload
works (a plain ``torch.load(..., weights_only=False)`` creates the marker); every other test hands
the same file to one loader or command and checks that it is refused with a clear error and that
the marker never appears.
"""
import os
import pickle

import pytest
import torch

from pyro_lvm.cli import run
from pyro_lvm.errors import CheckpointError


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(folder, marker, legacy=False, config_kind=None):
    """A run folder whose checkpoint.pt holds the payload (zip or legacy pickle format)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "checkpoint.pt")
    state = {"format": "pyro-lvm", "version": 2, "kind": "fit", "digest": "", "state": {"x": _Payload(marker)}}
    if legacy:
        with open(path, "wb") as f:
            pickle.dump(state, f)
    else:
        torch.save(state, path)
    if config_kind:
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write('{"run_kind": "%s", "settings": {}}' % config_kind)
    return path


@pytest.fixture(params=["zip", "legacy"])
def planted(request, tmp_path):
    marker = tmp_path / "PWNED"
    path = _plant(tmp_path / "run", marker, legacy=request.param == "legacy")
    yield path, marker
    assert not marker.exists(), "the checkpoint's payload ran"


def test_the_payload_would_run_under_an_unsafe_load(tmp_path):
    marker = tmp_path / "PWNED"
    path = _plant(tmp_path / "run", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("loader", ["train.load_checkpoint", "vqvae.load_checkpoint", "runs.load_model",
                                    "runs.load_run", "serialization.load_state"])
def test_every_loader_refuses_it(planted, loader):
    from pyro_lvm import runs, serialization, train, vqvae

    path, _ = planted
    module, name = loader.split(".")
    fn = getattr({"train": train, "vqvae": vqvae, "runs": runs, "serialization": serialization}[module], name)
    with pytest.raises(CheckpointError, match="refusing to load .*could run code"):
        fn(path)


@pytest.mark.parametrize("kind", [None, "vae", "sbn", "vqvae"])
def test_evaluate_refuses_it(planted, kind, capsys):
    path, marker = planted
    if kind:
        _plant(os.path.dirname(path), marker, config_kind=kind)
    for target in (os.path.dirname(path), path):
        with pytest.raises(SystemExit) as info:
            run(["evaluate", target, "--no-progress"])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "refusing to load" in err and "weights_only" not in err


@pytest.mark.parametrize("kind", ["vae", "sbn", "vqvae"])
def test_resuming_a_run_refuses_it(planted, kind, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    path, _ = planted
    with pytest.raises(SystemExit) as info:
        run(["train", kind, "--smoke", "--no-progress", "--out", os.path.dirname(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing to load" in err
