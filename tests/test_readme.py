"""The README's code runs as written, and its commands are the ones CI uses."""
import os
import re

from conftest import REPO


def _readme():
    with open(os.path.join(REPO, "README.md")) as f:
        return f.read()


def test_python_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    snippets = re.findall(r"```python\n(.*?)```", _readme(), re.S)
    assert snippets
    for code in snippets:
        code = code.replace("epochs=2", "epochs=1").replace("num_samples=500", "num_samples=20")
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_ci_runs_the_readme_install_and_test_commands():
    with open(os.path.join(REPO, ".ci", "run")) as f:
        ci = f.read()
    bash_blocks = re.findall(r"```bash\n(.*?)```", _readme(), re.S)
    install, main_job = bash_blocks[0].strip().splitlines()
    test_command = bash_blocks[1].strip()
    assert install in ci and test_command in ci
    assert main_job.startswith("pyro-lvm train vae")
