"""Small models for the data-parallel tests, with a ``pyro.param`` site outside every module.

The deterministic case has a Delta guide, so its ELBO draws no random numbers and a run over
two processes must give the parameters of one process to float64 rounding. The stochastic case
(a Normal guide) checks the exact resume, where every process's random stream matters.
"""
from types import SimpleNamespace

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import nn

DATA, DIM, LATENT = 48, 4, 2
OPTIONS = {"batch_size": 12, "lr": 0.05, "seed": 3, "progress": False, "device": "cpu"}


class Pair(nn.Module):
    def __init__(self, stochastic):
        super().__init__()
        self.stochastic = stochastic
        self.decoder = nn.Linear(LATENT, DIM)
        self.encoder = nn.Linear(DIM, 2 * LATENT)

    def model(self, x):
        scale = pyro.param("noise_scale", lambda: torch.ones(DIM), constraint=constraints.positive)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(LATENT), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(self.decoder(z), scale).to_event(1), obs=x)

    def guide(self, x):
        loc, log_scale = self.encoder(x).chunk(2, -1)
        with pyro.plate("data", x.shape[0]):
            if self.stochastic:
                pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))
            else:
                pyro.sample("z", dist.Delta(loc).to_event(1))


def _case(stochastic, epochs=2):
    torch.manual_seed(0)
    pair = Pair(stochastic)
    data = torch.randn(DATA, DIM, generator=torch.Generator().manual_seed(1))

    def parameters():
        values = {k: v.detach().clone() for k, v in pair.state_dict().items()}
        store = pyro.get_param_store()
        values["noise_scale"] = (store["noise_scale"] if "noise_scale" in store else torch.ones(DIM)).detach().clone()
        return values

    return SimpleNamespace(pair=(pair.model, pair.guide), module=pair, data=data, parameters=parameters,
                           options={**OPTIONS, "modules": {"pair": pair}, **({} if stochastic else {"epochs": epochs})})


def deterministic_case():
    return _case(False)


def stochastic_case():
    return _case(True)
