"""The IAF guide: exact log|det J|, the autoregressive property, zero flows = the diagonal guide, checkpoints."""
import pyro
import pytest
import torch
from torch.autograd.functional import jacobian

from pyro_lvm.guides import AmortizedNormalGuide, IAFGuide, iaf_guide
from pyro_lvm.guides.heads import encode
from pyro_lvm.nn import MLPEncoder


def _guide(update, flows=3, k=4, d=5):
    guide = iaf_guide(d, k, hidden=(8,), flows=flows, update=update)
    with torch.no_grad():  # larger weights than the default init, so every step is far from identity
        for flow in guide.head.flows:
            for layer in flow.nn.layers:
                layer.weight.normal_(0, 0.5)
    return guide


@pytest.mark.parametrize("update", ["affine", "gated"])
def test_log_q_is_the_base_density_minus_the_autograd_log_det(update, float64):
    """log q(z|x) = log N(z_0) - log|det dz/dz_0|, the Jacobian of the whole flow by autograd."""
    guide, x = _guide(update), torch.randn(2, 5)
    h, loc, scale = encode(guide.encoder, x)
    q = guide.head(h, loc, scale)
    context = guide.head.context(h)
    z0, points, expectations = torch.randn(2, 4), [], []
    for i in range(2):
        def flow(z):
            for step in guide.head.transforms(context[i]):
                z = step(z)
            return z

        log_det = torch.linalg.slogdet(jacobian(flow, z0[i]))[1]
        expected = torch.distributions.Normal(loc[i], scale[i]).log_prob(z0[i]).sum() - log_det
        points.append(flow(z0[i]).detach())
        expectations.append(expected.item())
        # and at its own sample, through the caches
        steps = guide.head.transforms(context[i])
        own = pyro.distributions.TransformedDistribution(pyro.distributions.Normal(loc[i], scale[i]).to_event(1),
                                                         steps)
        z = z0[i]
        for step in steps:
            z = step(z)
        assert abs(own.log_prob(z).item() - expected.item()) < 1e-8  # slogdet of a Jacobian with entries ~1e2
    # log q at points it did not sample itself: Pyro inverts every step (no cache to read)
    assert torch.allclose(q.log_prob(torch.stack(points)), torch.tensor(expectations), rtol=0, atol=1e-8)


@pytest.mark.parametrize("update", ["affine", "gated"])
def test_each_step_is_autoregressive_in_its_order(update, float64):
    guide = _guide(update)
    context = guide.head.context(guide.encoder.features(torch.randn(1, 5)))[0]
    steps = guide.head.transforms(context)
    z = torch.randn(4)
    for step in steps:
        jac = jacobian(step, z)
        order = step.arn.permutation
        jac = jac[order][:, order]
        assert torch.count_nonzero(jac.triu(1)) == 0, jac  # y_i reads z_j only for j <= i
        assert torch.count_nonzero(jac.diagonal()) == 4
        z = step(z)
    assert [s.arn.permutation.tolist() for s in steps] == [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3]]


def test_zero_flows_is_the_diagonal_guide(float64):
    encoder = MLPEncoder((5,), (7,), 3)
    iaf, diag = IAFGuide(encoder, flows=0), AmortizedNormalGuide(encoder)
    x = torch.randn(6, 5)
    traces = []
    for guide in (iaf, diag):
        pyro.set_rng_seed(3)
        trace = pyro.poutine.trace(guide).get_trace(x)
        trace.compute_log_prob()
        traces.append(trace.nodes["z"])
    assert torch.equal(traces[0]["value"], traces[1]["value"])
    assert torch.equal(traces[0]["log_prob"], traces[1]["log_prob"])
    assert set(iaf.state_dict()) == {f"encoder.{k}" for k in encoder.state_dict()}


def test_log_prob_at_a_sample_reads_the_cache(float64, monkeypatch):
    """log q at the guide's own sample must not invert the flow (k passes a step, and rounding)."""
    guide, x = _guide("gated"), torch.randn(3, 5)
    q = guide.distribution(x).expand([7, 3])  # a particle dim in front, as vectorised particles draw
    z = q.rsample()
    calls = []
    from pyro.distributions.transforms import AffineAutoregressive
    monkeypatch.setattr(AffineAutoregressive, "_inverse_stable", lambda self, y: calls.append(y))
    log_q = q.log_prob(z)
    assert log_q.shape == (7, 3) and not calls


def test_permutations_and_masks_are_in_the_state_dict():
    guide = _guide("affine", flows=2)
    state = guide.state_dict()
    assert torch.equal(state["head.flows.0.nn.permutation"], torch.arange(4))
    assert torch.equal(state["head.flows.1.nn.permutation"], torch.tensor([3, 2, 1, 0]))
    assert "head.flows.0.nn.layers.0.mask" in state and "head.flows.1.nn.layers.1.mask" in state
    # a fresh guide with other random weights becomes the same function once loaded
    other = _guide("affine", flows=2)
    other.load_state_dict(state)
    x = torch.randn(2, 5)
    h, loc, scale = encode(guide.encoder, x)
    base = torch.randn(2, 4)
    for a, b in zip(guide.head(h, loc, scale).transforms, other.head(*encode(other.encoder, x)).transforms):
        assert torch.equal(a(base), b(base))
        base = a(base)


def test_log_q_broadcasts_values_against_the_batch(float64):
    """Every draw under every datum's q (aggregate-posterior estimates): (M, 1, k) against N data."""
    guide, x = _guide("gated"), torch.randn(3, 5)
    q = guide.distribution(x)
    z = q.sample()
    pairs = q.log_prob(z.unsqueeze(-2))
    assert pairs.shape == (3, 3)
    assert torch.allclose(pairs.diagonal(), q.log_prob(z), rtol=0, atol=1e-10)
