"""Start N local processes the way ``torchrun --nproc_per_node N`` does (gloo, one thread each).

Each process gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
the caller's script joins the group with :func:`pyro_lvm.distributed.init_from_env`. Plain
subprocesses start faster than torchrun's elastic agent, which matters for tests of a few seconds.
"""
import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv, nproc=2, timeout=120):
    """Run ``python argv...`` in ``nproc`` processes; returns their combined output, raising on failure."""
    port = free_port()
    processes = []
    for rank in range(nproc):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(nproc),
               "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
        processes.append(subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, cwd=REPO))
    outputs = []
    try:
        for p in processes:
            outputs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    failed = [(rank, p.returncode) for rank, p in enumerate(processes) if p.returncode != 0]
    if failed:
        raise AssertionError(f"processes {failed} failed:\n" + "\n---\n".join(outputs))
    return "\n".join(outputs)
