"""The VQ-VAE package stands apart: it imports no Pyro."""
import subprocess
import sys


def test_package_does_not_import_pyro():
    code = ("import sys\n"
            "import pyro_lvm.vqvae, pyro_lvm.vqvae.checkpoint, pyro_lvm.vqvae.train, pyro_lvm.vqvae.figures\n"
            "import pyro_lvm.vqvae.datasets, pyro_lvm.serialization, pyro_lvm.data\n"
            "pyro_lvm.vqvae.datasets.load_images('synthetic', train_subset=4, test_subset=2)\n"
            "loaded = sorted(m for m in sys.modules if m == 'pyro' or m.startswith('pyro.'))\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
