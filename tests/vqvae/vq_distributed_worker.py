"""What each process runs in tests/vqvae/test_vq_distributed.py.

``python tests/vqvae/vq_distributed_worker.py MODE OUT_DIR``, one process per rank:

* ``fit``: a small EMA VQ-VAE with k-means initialisation and restarts after one unused batch
  (so restarts happen) trains for two epochs on random images, each process on its shard of every
  batch; every rank saves its state dict and whether Pyro was imported.
* ``prior``: :func:`prior_case` trained by :func:`~pyro_lvm.vqvae.train.fit_prior`, each process
  its share of every global batch; every rank saves the prior's state dict and history.
* ``nan``: the images of rank 1's share of the first batch are NaN; every rank saves the error
  it stopped with (none may wait for the other forever).
* ``cli``: ``pyro-lvm train vqvae`` (the command line itself) three times: straight for two
  epochs into ``OUT_DIR/a``, then one epoch and a continuation to two into ``OUT_DIR/b``. Every
  rank saves the state dicts of the model and prior it ended each run with (captured where the
  run kind calls ``fit_vqvae`` and ``fit_prior``) and the files it opened for writing inside the
  run folders (an audit hook sees every ``open``).
"""
import os
import sys

import torch

from pyro_lvm import distributed
from pyro_lvm.data import TensorLoader
from pyro_lvm.vqvae.model import VQVAE, VQVAEConfig
from pyro_lvm.vqvae.prior import CodePrior
from pyro_lvm.vqvae.train import fit_prior, fit_vqvae

#: ``pyro-lvm train vqvae`` options of the ``cli`` mode: 96 images in batches of 32, tiny nets
CLI_OPTIONS = ["train", "vqvae", "--data", "synthetic", "--train-subset", "96", "--test-subset", "32",
               "--batch-size", "32", "--codebook-size", "16", "--embedding-dim", "4", "--hidden-channels", "8",
               "--residual-channels", "4", "--residual-layers", "1", "--restart-after", "1",
               "--prior-layers", "2", "--prior-channels", "8", "--num-samples", "4", "--no-progress",
               "--device", "cpu", "--threads", "1"]


def prior_case():
    """A float64 two-level prior, its training and test codes and fit_prior's options."""
    torch.manual_seed(7)
    prior = CodePrior([5, 6], [(2, 2), (4, 4)], channels=4, num_layers=2).double()
    codes = torch.Generator().manual_seed(8)
    train = [torch.randint(5, (40, 2, 2), generator=codes), torch.randint(6, (40, 4, 4), generator=codes)]
    test = [torch.randint(5, (10, 2, 2), generator=codes), torch.randint(6, (10, 4, 4), generator=codes)]
    # 40 maps in batches of 16: two full global batches and one of 8, each cut in two shares
    options = dict(epochs=2, test_codes=test, batch_size=16, lr=1e-2, seed=3, progress=False)
    return prior, train, options


def run_fit(out):
    torch.manual_seed(100 + distributed.rank())  # different draws per process: sync must not rely on luck
    config = VQVAEConfig(image_size=(8, 8), hidden_channels=8, residual_channels=4, num_residual_layers=1,
                         embedding_dim=4, num_codes=16, num_downsamples=1, kmeans_init=True, restart_after=1)
    model = VQVAE(config)
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loader = TensorLoader(images, 16, generator=torch.Generator().manual_seed(1))
    loader.shard(distributed.rank(), distributed.world_size())
    history = fit_vqvae(model, loader, epochs=2, lr=1e-2, progress=False, device="cpu")
    return {"state": model.state_dict(), "restarts": [row["restarts"] for row in history],
            "train_loss": [row["train_loss"] for row in history], "pyro": "pyro" in sys.modules}


def run_prior(out):
    prior, train, options = prior_case()
    torch.manual_seed(distributed.rank())  # another start on rank 1: fit_prior must broadcast rank 0's
    if distributed.rank():
        for p in prior.parameters():
            p.data.normal_()
    history = fit_prior(prior, train, **options)
    return {"state": prior.state_dict(), "history": history}


def run_nan(out):
    from pyro_lvm.errors import NonFiniteLossError

    model = VQVAE(VQVAEConfig(image_size=(8, 8), hidden_channels=8, residual_channels=4, num_residual_layers=1,
                              embedding_dim=4, num_codes=16, num_downsamples=1))
    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    images[8:16] = float("nan")  # rank 1's half of the first batch of 16
    loader = TensorLoader(images, 16, shuffle=False).shard(distributed.rank(), distributed.world_size())
    try:
        fit_vqvae(model, loader, epochs=1, progress=False)
    except NonFiniteLossError as e:
        return {"error": str(e)}
    return {"error": None}


def run_cli(out):
    from pyro_lvm import cli
    from pyro_lvm.runs import vqvae as run_kind

    written, ends = [], {}
    folders = [os.path.join(out, name) + os.sep for name in "ab"]

    def audit(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode, flags = os.fsdecode(args[0]), args[1], args[2]
            writing = any(c in (mode or "") for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writing and any(os.path.abspath(path).startswith(f) for f in folders):
                written.append(os.path.abspath(path))

    def capture(fit, stage):
        def captured(module, *args, **kwargs):
            history = fit(module, *args, **kwargs)
            ends[(current[0], stage)] = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return history
        return captured

    current = [None]
    run_kind.fit_vqvae = capture(run_kind.fit_vqvae, "vqvae")
    run_kind.fit_prior = capture(run_kind.fit_prior, "prior")
    sys.addaudithook(audit)
    for name, epochs in (("a", "2"), ("b", "1"), ("b2", "2")):
        current[0] = name
        cli.run(CLI_OPTIONS + ["--epochs", epochs, "--prior-epochs", epochs, "--out", os.path.join(out, name[0])])
    return {"ends": {f"{run}/{stage}": state for (run, stage), state in ends.items()},
            "written": sorted(set(written))}


def main(mode, out):
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    result = {"fit": run_fit, "prior": run_prior, "nan": run_nan, "cli": run_cli}[mode](out)
    torch.save(result, os.path.join(out, f"{mode}_rank{distributed.rank()}.pt"))
    distributed.barrier()


if __name__ == "__main__":
    main(*sys.argv[1:])
