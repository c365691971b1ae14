"""Run folders: one writer at a time, stale locks taken over, leftovers cleaned, a config that describes the run."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO
from pyro_lvm.cli import run
from pyro_lvm.errors import RunFolderError
from pyro_lvm.runs import RunFolder

HOLD = ("import sys, time\n"
        "from pyro_lvm.runs import RunFolder\n"
        "with RunFolder(sys.argv[1], 'vae'):\n"
        "    open(sys.argv[2], 'w').close()\n"
        "    time.sleep(60)\n")


def _wait_for(path, seconds=30):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture
def held_folder(tmp_path):
    """A run folder whose lock a live process holds."""
    folder, ready = tmp_path / "run", tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(ready)], cwd=REPO)
    try:
        _wait_for(ready)
        yield folder, holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_second_writer_is_refused_while_the_first_lives(held_folder, capsys):
    folder, pid = held_folder
    with pytest.raises(RunFolderError, match=f"being written by process {pid}"):
        RunFolder(folder, "vae").__enter__()
    with pytest.raises(SystemExit) as info:
        run(["train", "vae", "--smoke", "--no-progress", "--out", str(folder)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"process {pid}" in err and "another --out" in err
    assert not (folder / "checkpoint.pt").exists() and not (folder / "config.json").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_notice(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "run"
    folder.mkdir()
    import socket

    (folder / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    with RunFolder(folder, "vae") as opened:
        assert json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
        assert any(f"process {dead.pid}" in notice for notice in opened.notices)
    assert f"taking over the lock of process {dead.pid}" in capsys.readouterr().err
    assert (folder / ".lock").read_text() == ""  # released: kept, emptied


def test_temporary_files_of_a_killed_write_are_removed(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "checkpoint.pt.pyro-lvm-tmp-999999").write_bytes(b"half a checkpoint")
    (folder / "notes.txt").write_text("kept")
    (folder / "thesis.tmp-2024").write_text("a user's file that only looks temporary")
    with RunFolder(folder, "vae") as opened:
        assert opened.notices == ["removed checkpoint.pt.pyro-lvm-tmp-999999, left by an interrupted write"]
    assert sorted(os.listdir(folder)) == [".lock", "notes.txt", "thesis.tmp-2024"]


def test_a_file_or_a_run_of_another_kind_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as info:
        run(["train", "vae", "--smoke", "--no-progress", "--out", str(tmp_path / "file")])
    assert info.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x"
    (tmp_path / "gmm").mkdir()
    (tmp_path / "gmm" / "config.json").write_text(json.dumps({"run_kind": "gmm"}))
    with pytest.raises(SystemExit):
        run(["train", "vae", "--smoke", "--no-progress", "--out", str(tmp_path / "gmm")])
    assert "holds a 'gmm' run, not a 'vae' one" in capsys.readouterr().err


def test_config_json_describes_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_LVM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    run(["train", "vae", "--smoke", "--no-progress", "--latent-dim", "3", "--hidden", "16", "--seed", "7",
         "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["run_kind"] == "vae" and config["seed"] == 7
    assert config["settings"]["latent_dim"] == 3 and config["settings"]["hidden"] == [16]
    assert config["data"]["name"] == "embedded" and config["data"]["train_size"] == 512
    assert config["data"]["test_size"] == 1000 and config["data"]["input_shape"] == [1, 28, 28]
    for library in ("pyro_lvm", "torch", "pyro", "numpy", "python"):
        assert config["versions"][library]
    assert (out / ".lock").read_text() == ""


def test_two_concurrent_trainings_one_is_refused_and_the_folder_holds_one_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYRO_LVM_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "pyro_lvm.cli", "train", "vae", "--smoke", "--no-progress", "--latent-dim", "2",
               "--hidden", "8", "--out", str(out)]
    procs = [subprocess.Popen(command + ["--seed", str(seed)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert "being written by process" in loser and len(loser.strip().splitlines()) == 1
    winner_seed = 1 if results[0][0] == 0 else 2
    assert json.loads((out / "config.json").read_text())["seed"] == winner_seed
    evaluation = next(out.glob("evaluation_*.json"))
    assert json.loads(evaluation.read_text())["seed"] == winner_seed


def test_many_processes_racing_for_a_stale_lock_give_one_holder(tmp_path):
    """The lock is the kernel's (flock): of eight processes started together on a lock record
    left by a dead process, exactly one gets the folder, every time."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "run"
    folder.mkdir()
    # a holder keeps the folder until the seven others have been refused (or 120 s pass), so every
    # process tries while it is held, however slowly each one imports torch on a busy machine
    race = ("import os, sys, time\n"
            "from pyro_lvm.errors import RunFolderError\n"
            "from pyro_lvm.runs import RunFolder\n"
            "start, marks = float(sys.argv[2]), sys.argv[3]\n"
            "time.sleep(max(0.0, start - time.time()))\n"
            "try:\n"
            "    with RunFolder(sys.argv[1], 'vae'):\n"
            "        deadline = time.time() + 120\n"
            "        while len(os.listdir(marks)) < 7 and time.time() < deadline:\n"
            "            time.sleep(0.05)\n"
            "    print('held')\n"
            "except RunFolderError:\n"
            "    open(os.path.join(marks, str(os.getpid())), 'w').close()\n"
            "    print('refused')\n")
    for attempt in range(3):
        (folder / ".lock").write_text(json.dumps({"pid": dead.pid, "host": "h", "started": "then"}))
        marks = tmp_path / f"refused{attempt}"
        marks.mkdir()
        start = time.time() + 2.0
        procs = [subprocess.Popen([sys.executable, "-c", race, str(folder), str(start), str(marks)], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(8)]
        outcomes = sorted(p.communicate(timeout=300)[0].strip() for p in procs)
        assert outcomes.count("held") == 1 and outcomes.count("refused") == 7, outcomes
