"""``--beta``, ``--warmup-steps``, ``--cyclical`` and ``--free-bits`` on the fitted run kinds."""
import json

import pytest

from pyro_lvm.cli import run
from tests.cli_helpers import fails


def test_warmup_run_records_beta_and_refuses_other_settings_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    # --smoke: 512 images in batches of 128, 4 steps; the last one (step 3) has beta = 0.5 * 3 / 10
    run(["train", "vae", "--smoke", "--no-progress", "--hidden", "32", "--latent-dim", "2",
         "--beta", "0.5", "--warmup-steps", "10", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["beta"] for row in metrics] == [pytest.approx(0.15, abs=1e-15)]
    assert "beta" in (out / "metrics.csv").read_text().splitlines()[0].split(",")
    capsys.readouterr()
    fails(["train", "vae", "--smoke", "--no-progress", "--hidden", "32", "--latent-dim", "2",
           "--beta", "0.5", "--out", str(out)], capsys, "different config", "kl_control")


@pytest.mark.parametrize("argv, fragments", [
    (["--free-bits", "-1"], ["--free-bits", "non-negative"]),
    (["--beta", "nan"], ["--beta", "non-negative"]),
    (["--objective", "iwae", "--beta", "0.5"], ["--beta", "'iwae'", "no bound"]),
    (["--objective", "renyi", "--free-bits", "0.1"], ["'renyi'"]),
    (["--warmup-steps", "5", "--cyclical", "2"], ["not allowed with"]),
    (["--cyclical", "100"], ["--cyclical 100", "training steps"]),
])
def test_bad_kl_options_are_one_line_errors(tmp_path, capsys, argv, fragments):
    fails(["train", "vae", "--smoke", "--no-progress", "--out", str(tmp_path / "run"), *argv], capsys, *fragments)
