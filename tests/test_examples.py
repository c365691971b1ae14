"""Every example runs with its smoke flag; an example missing from the list fails the suite."""
import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = ["bernoulli_latent.py", "compare_estimators.py", "cvae.py", "dequantization.py", "flow_guide.py",
            "gmm.py", "posterior_collapse.py", "vae.py", "vqvae.py"]


def test_every_example_is_listed():
    found = sorted(f for f in os.listdir(os.path.join(REPO, "examples")) if f.endswith(".py"))
    assert found == sorted(EXAMPLES), "add new examples to EXAMPLES in tests/test_examples.py"


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_smoke(example, tmp_path):
    env = {**os.environ, "PYRO_LVM_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, os.path.join(REPO, "examples", example), "--smoke",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    pngs = [f for f in os.listdir(tmp_path / "out") if f.endswith(".png")]
    assert pngs, "an example should save its figures"
