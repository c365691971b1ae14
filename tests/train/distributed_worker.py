"""What each process runs in tests/train/test_distributed.py (launched by tests/distributed_launch.py).

``python tests/train/distributed_worker.py OUT_DIR``: under two gloo processes, (1) fits the
deterministic model (Delta guide) and saves the parameters, (2) fits the stochastic model for two
epochs straight, and for one epoch then resumed to two, saving both parameter sets, and (3) saves
each rank's parameters to check they agree. Rank 0 writes the files.
"""
import os
import sys

import pyro
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distributed_cases import deterministic_case, stochastic_case  # noqa: E402

from pyro_lvm import distributed  # noqa: E402
from pyro_lvm.train import fit  # noqa: E402


def main(out):
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    rank = distributed.rank()
    results = {}

    pyro.clear_param_store()
    case = deterministic_case()
    fit(*case.pair, "elbo", case.data, **case.options)
    results["deterministic"] = case.parameters()

    straight = os.path.join(out, "straight.pt")
    pyro.clear_param_store()
    case = stochastic_case()
    fit(*case.pair, "elbo", case.data, epochs=2, checkpoint=straight, **case.options)
    results["straight"] = case.parameters()

    resumed = os.path.join(out, "resumed.pt")
    pyro.clear_param_store()
    case = stochastic_case()
    fit(*case.pair, "elbo", case.data, epochs=1, checkpoint=resumed, **case.options)
    distributed.barrier()  # rank 0 has written the checkpoint
    pyro.clear_param_store()
    case = stochastic_case()
    fit(*case.pair, "elbo", case.data, epochs=2, checkpoint=resumed, resume=True, **case.options)
    results["resumed"] = case.parameters()

    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    distributed.barrier()


if __name__ == "__main__":
    main(sys.argv[1])
