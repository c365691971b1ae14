"""The estimator harness against exact answers: bounds, gaps, gradient statistics, rows and files."""
import csv
import json
import math

import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO, TraceEnum_ELBO

from linear_gaussian_cases import ShiftedGuide, analytic_elbo, make_case
from pyro_lvm.evaluate import (EstimatorSpec, compare_estimators, gradient_statistics, log_likelihood,
                               parameter_groups, standard_specs)
from pyro_lvm.evaluate.exact_cases import exact_case
from pyro_lvm.objectives import get_objective
from pyro_lvm.plots import plot_bound_vs_k, plot_snr_vs_k
from pyro_lvm.testing import assert_bound_sandwich, assert_monotone_in_k, assert_within_se


@pytest.fixture
def shifted(float64):
    model, x, loc, scale = make_case()
    return model, x, ShiftedGuide(loc + 0.3, 0.8 * scale)


def _rows(table):
    return {row["label"]: row for row in table}


def test_exact_posterior_guide_makes_every_bound_exact(float64):
    model, x, _, _ = make_case()
    specs = [("elbo", "elbo", {"num_particles": 3}), ("iwae", "iwae", {"num_particles": 7}),
             ("renyi", "renyi", {"num_particles": 4, "alpha": 0.3}), ("pyro Trace_ELBO", Trace_ELBO())]
    table = compare_estimators(model.model, model.exact_guide, x, specs, repeats=5)
    assert table.exact == pytest.approx(model.log_prob(x).mean().item(), abs=1e-12)  # found on the model
    for row in table:
        assert row["value"] == pytest.approx(table.exact, abs=1e-10), row["label"]
        assert row["gap"] == pytest.approx(0.0, abs=1e-10) and row["value_se"] < 1e-10


def test_bounds_match_the_analytic_elbo_and_sandwich_log_px(shifted):
    model, x, guide = shifted
    ks = (2, 10, 100)
    specs = [("elbo", "elbo", {"num_particles": 5}), ("meanfield", "meanfield", {"num_particles": 5})]
    specs += [(f"iwae K={k}", "iwae", {"num_particles": k}) for k in ks]
    rows = _rows(compare_estimators(model.model, guide, x, specs, repeats=30, seed=2))
    elbo = analytic_elbo(model, guide, x).item() / len(x)
    for name in ("elbo", "meanfield"):
        assert_within_se(rows[name]["value"], elbo, rows[name]["value_se"], what=name)
    iwae = {k: rows[f"iwae K={k}"]["value"] for k in ks}
    ses = {k: rows[f"iwae K={k}"]["value_se"] for k in ks}
    assert_monotone_in_k(iwae, ses)
    assert_bound_sandwich(elbo, iwae, model.log_prob(x).mean().item(), se=(0.0, ses))
    assert iwae[100] - elbo > 10 * ses[100]  # the gap closes visibly: the test has power
    assert rows["iwae K=100"]["gap"] == pytest.approx(rows["iwae K=100"]["exact"] - iwae[100])


def test_common_random_numbers_and_pyro_elbos(shifted):
    model, x, guide = shifted
    specs = [("elbo", "elbo"), ("iwae K=1", "iwae", {"num_particles": 1}), ("Trace_ELBO", Trace_ELBO()),
             ("renyi", "renyi", {"num_particles": 5, "alpha": 0.5}),
             ("RenyiELBO", RenyiELBO(alpha=0.5, num_particles=5))]  # only loss_and_grads: the .grad path
    rows = _rows(compare_estimators(model.model, guide, x, specs, repeats=6))
    # one seed for every spec: estimators that agree draw by draw give identical rows
    for a, b in (("elbo", "iwae K=1"), ("elbo", "Trace_ELBO"), ("renyi", "RenyiELBO")):
        for key in ("value", "value_se", "encoder_variance", "decoder_variance", "encoder_snr", "decoder_mean_sq"):
            assert rows[a][key] == pytest.approx(rows[b][key], rel=1e-10), (a, b, key)


def test_gradient_statistics_are_those_of_the_draws(shifted):
    model, x, guide = shifted
    table = compare_estimators(model.model, guide, x, [("elbo", "elbo", {"num_particles": 2})], repeats=8, seed=4,
                               groups={"guide": guide, "weights": [model.weight]})
    row = table.rows[0]
    # the same draws by hand: one untimed draw, then the measured ones
    objective = get_objective("elbo", num_particles=2)
    params = list(guide.parameters()) + [model.weight]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        draws = [torch.cat([g.flatten() for g in torch.autograd.grad(
            objective.differentiable_loss(model.model, guide, x), params)]) for _ in range(9)][1:]
    draws = torch.stack(draws)
    split = sum(p.numel() for p in guide.parameters())
    for name, part in (("guide", draws[:, :split]), ("weights", draws[:, split:])):
        mean, std = part.mean(0), part.std(0)
        assert row[f"{name}_variance"] == pytest.approx(part.var(0).sum().item(), rel=1e-9)
        assert row[f"{name}_mean_sq"] == pytest.approx(mean.pow(2).sum().item(), rel=1e-9)
        assert row[f"{name}_snr"] == pytest.approx((mean.abs() / std).mean().item(), rel=1e-9)
    assert table.groups == ["guide", "weights"]
    assert row["ms_per_draw"] > 0 and row["memory_mb"] > 0


def test_gradient_statistics_edge_cases():
    exact = torch.tensor([[1.0, 0.0, 0.1], [1.0, 0.0, 0.1], [1.0, 0.0, 0.1]])
    stats = gradient_statistics(exact)  # an exact gradient: no spread, infinite SNR
    assert stats["variance"] == 0.0 and stats["snr"] == math.inf
    assert stats["mean_sq"] == pytest.approx(1.01)
    mixed = torch.tensor([[1.0, 0.0, 2.0], [1.0, 0.0, 4.0]])  # exact coordinates are left out of the average
    assert gradient_statistics(mixed)["snr"] == pytest.approx(3.0 / 2 ** 0.5)
    assert math.isnan(gradient_statistics(torch.zeros(3, 2))["snr"])
    assert math.isnan(gradient_statistics(torch.ones(1, 3))["variance"])  # one draw has no variance


def test_default_groups_follow_who_uses_a_parameter(float64):
    case = exact_case("linear-gaussian", num_data=8)
    groups = parameter_groups(case.model, case.guide, case.data)
    as_ids = {name: {id(p) for p in ps} for name, ps in groups.items()}
    assert as_ids == {"encoder": {id(p) for p in case.guide.parameters()},
                      "decoder": {id(p) for p in case.model.__self__.parameters()}}
    bernoulli = exact_case("bernoulli", num_data=8)  # one module serves model and guide; its baseline net is unused
    model = bernoulli.model.__self__
    groups = parameter_groups(bernoulli.model, bernoulli.guide, bernoulli.data)
    assert {id(p) for p in groups["encoder"]} == {id(p) for p in model.encoder.parameters()}
    assert {id(p) for p in groups["decoder"]} == {id(p) for p in [model.prior_logits, *model.decoder.parameters()]}
    assert set(groups) == {"encoder", "decoder"}


def test_enumeration_is_exact_and_discrete_bounds_agree(float64):
    case = exact_case("bernoulli", num_data=12)
    specs = standard_specs(ks=(2, 20), discrete=True, enumeration=case.enumeration)
    rows = _rows(compare_estimators(case.model, case.guide, case.data, specs, repeats=25, seed=1))
    exact_elbo = case.model.__self__.exact_elbo(case.data).mean().item()
    enumerated = rows["enumerated (TraceEnum_ELBO)"]
    assert enumerated["value"] == pytest.approx(exact_elbo, abs=1e-10)
    assert enumerated["value_se"] < 1e-12 and enumerated["encoder_variance"] < 1e-20  # the exact gradient
    assert enumerated["encoder_snr"] > 1e6
    for label in ("elbo K=2", "tracegraph K=2", "elbo K=20", "tracegraph K=20"):
        assert_within_se(rows[label]["value"], exact_elbo, rows[label]["value_se"], what=label)
    # a baseline lowers the score-function variance of the encoder's gradient
    assert rows["tracegraph K=20"]["encoder_variance"] < rows["elbo K=20"]["encoder_variance"] / 2
    iwae = {k: rows[f"iwae K={k}"]["value"] for k in (2, 20)}
    ses = {k: rows[f"iwae K={k}"]["value_se"] for k in (2, 20)}
    assert_monotone_in_k(iwae, ses)
    assert_bound_sandwich(exact_elbo, iwae, rows["elbo K=2"]["exact"], se=(0.0, ses))


def test_mixture_enumeration_gives_the_exact_log_likelihood(float64):
    case = exact_case("mixture", num_data=10)
    spec = EstimatorSpec("enumerated", TraceEnum_ELBO(max_plate_nesting=1), model=case.enumeration[0],
                         guide=case.enumeration[1])
    row = compare_estimators(case.model, case.guide, case.data, [spec], repeats=3).rows[0]
    assert row["value"] == pytest.approx(case.exact_log_prob(case.data).mean().item(), abs=1e-10)
    assert row["gap"] == pytest.approx(0.0, abs=1e-10)


def test_values_only_iwae_is_the_importance_sampled_log_likelihood(shifted):
    model, x, guide = shifted
    table = compare_estimators(model.model, guide, x, [("iwae", "iwae", {"num_particles": 60})], repeats=1,
                               gradients=False, seed=3, exact_log_prob=model.log_prob)
    ll = log_likelihood(model.model, guide, x, num_samples=60, batch_size=len(x), seed=3, progress=False)
    row = table.rows[0]
    assert row["value"] == ll.mean and row["value_se"] == ll.se_mc
    assert row["khat_max"] == ll.summary()["khat_max"] and row["unreliable"] == ll.summary()["unreliable"]
    assert table.groups == [] and "encoder_snr" not in row
    number = compare_estimators(model.model, guide, x, [("iwae", "iwae", {"num_particles": 60})], repeats=1,
                                gradients=False, seed=3, exact_log_prob=-1.5).rows[0]
    assert number["gap"] == pytest.approx(-1.5 - ll.mean)


def test_estimators_that_do_not_apply_become_notes(float64):
    case = exact_case("bernoulli", num_data=4)
    specs = [("unknown option", "iwae", {"num_particles": 3, "no_such_option": 1}),
             ("meanfield on discrete latents", "meanfield"),
             ("elbo", "elbo")]
    table = compare_estimators(case.model, case.guide, case.data, specs, repeats=3)
    rows = _rows(table)
    assert rows["unknown option"]["note"].startswith("skipped, not offered here (TypeError")
    note = rows["meanfield on discrete latents"]["note"]
    assert note.startswith("skipped: ") and "'meanfield' needs" in note and "reparameterised" in note, note
    assert math.isnan(rows["unknown option"]["value"]) and not rows["elbo"]["note"]
    assert f"meanfield on discrete latents: {note}" in table.format()
    with pytest.raises((ValueError, NotImplementedError), match="meanfield"):
        compare_estimators(case.model, case.guide, case.data, specs[1:2], repeats=3, errors="raise")
    with pytest.raises(TypeError, match="EstimatorSpec"):
        compare_estimators(case.model, case.guide, case.data, ["elbo"], repeats=3)


def test_memory_grows_with_k(shifted):
    model, x, guide = shifted
    rows = _rows(compare_estimators(model.model, guide, x, [(k, "iwae", {"num_particles": k}) for k in (10, 100)],
                                    repeats=2))
    # the saved activations are (K, N, ...) tensors: ten times the particles, about ten times the memory
    assert 8 < rows[100]["memory_mb"] / rows[10]["memory_mb"] < 11


def test_table_text_files_and_plots(shifted, tmp_path):
    model, x, guide = shifted
    specs = standard_specs(ks=(1, 5), gradients=("no-such-estimator",))
    table = compare_estimators(model.model, guide, x, specs, repeats=3, exact_log_prob=model.log_prob)
    text = table.format()
    assert text.splitlines()[0].startswith("exact log p(x) = ")
    assert "iwae K=5" in text and "SNR encoder" in text and "iwae no-such-estimator K=1: skipped" in text
    table.write_csv(tmp_path / "t.csv")
    table.write_json(tmp_path / "t.json")
    with open(tmp_path / "t.csv") as f:
        read = list(csv.DictReader(f))
    assert [r["label"] for r in read] == [r["label"] for r in table]
    stored = json.load(open(tmp_path / "t.json"))
    assert stored["exact_log_likelihood"] == table.exact and len(stored["rows"]) == len(table)
    assert "autograd" in stored["memory_mb"]
    for path in (plot_bound_vs_k(table, tmp_path / "bound.png"), plot_snr_vs_k(table, tmp_path / "snr.png")):
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_gradient_variants_share_the_bound_or_say_why_not(shifted):
    """``gradient=`` changes the gradient, never the bound: before the objectives offered it, a note."""
    model, x, guide = shifted
    specs = [s for s in standard_specs(ks=(5,)) if s.objective in ("iwae", "elbo") and "meanfield" not in s.label]
    rows = _rows(compare_estimators(model.model, guide, x, specs, repeats=4))
    for variant, plain in (("iwae dreg K=5", "iwae K=5"), ("iwae stl K=5", "iwae K=5"), ("elbo stl K=5", "elbo K=5")):
        if rows[variant]["note"]:
            assert rows[variant]["note"].startswith("skipped, not offered here"), rows[variant]["note"]
        else:
            assert rows[variant]["value"] == pytest.approx(rows[plain]["value"], rel=1e-12)
            assert rows[variant]["decoder_variance"] == pytest.approx(rows[plain]["decoder_variance"], rel=1e-9)
