"""A run folder: one writer at a time, a description of itself, and nothing half-written.

Every run kind trains into a :class:`RunFolder`. Opening one for writing

* refuses a path that is a file, and a folder that holds a run of another kind;
* takes ``.lock``: an exclusive ``flock`` on that file, which the kernel holds for the process
  and releases when it exits, however it exits; the file also records the writer's PID, host and
  start time for the message a second writer gets. A second writer is refused while the first
  lives; a record left by a process that died is taken over with a notice;
* removes temporary files (``*.pyro-lvm-tmp-PID``) that a killed write of this package left
  behind, and nothing else;
* writes ``config.json``: the run kind, every setting, the data set and its size, the seed and
  the versions of the package and its libraries.

Evaluations go to files named by their settings (:meth:`RunFolder.evaluation_path`), so a later
``pyro-lvm evaluate`` with other settings never overwrites the training's own evaluation.
"""
import datetime
import errno
import fcntl
import glob
import json
import os
import platform
import socket
import sys

from pyro_lvm.errors import RunFolderError
from pyro_lvm.files import TMP_MARK, write_json

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
LOCK = ".lock"


def versions():
    """Versions of Python, the package and the libraries a result depends on."""
    import numpy
    import torch

    import pyro_lvm

    found = {"python": platform.python_version(), "pyro_lvm": pyro_lvm.__version__, "torch": torch.__version__,
             "numpy": numpy.__version__}
    for name in ("pyro", "torchvision"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        found[name] = getattr(module, "__version__", "unknown")
    return found


class RunFolderNotWritable(RunFolderError):
    """The run folder cannot be written (read-only file system or permissions)."""


def evaluation_name(data, **settings):
    """``evaluation_mnist_K1000_images500_seed0.json``: the file of one evaluation, named by its data
    set and settings, so an evaluation with other settings or on other data never overwrites it."""
    parts = [str(data).replace(os.sep, "-")] + [f"{k}{v}" for k, v in settings.items() if v is not None]
    return "evaluation_" + "_".join(parts) + ".json"


class RunFolder:
    """A run folder opened for writing by one process (use as a context manager).

    :param str path: the folder (created if missing).
    :param str kind: the run kind that writes it.
    :param bool write: take the lock; ``False`` opens an existing run for reading only.
    """

    def __init__(self, path, kind, write=True):
        self.path, self.kind, self.write = os.fspath(path), kind, write
        self._lock_fd = None
        self.notices = []

    # ---- paths ------------------------------------------------------------------------
    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def checkpoint(self):
        return self.file(CHECKPOINT)

    def evaluation_path(self, data, **settings):
        return self.file(evaluation_name(data, **settings))

    # ---- opening and closing ----------------------------------------------------------
    def __enter__(self):
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise RunFolderError(f"--out {self.path} is a file, not a folder; give a new folder or the folder "
                                 "of an earlier run")
        existing = read_config(self.path)
        if existing is not None and existing.get("run_kind") != self.kind:
            raise RunFolderError(f"{self.path} holds a {existing.get('run_kind')!r} run, not a {self.kind!r} one; "
                                 "choose another --out")
        if self.write:
            try:
                os.makedirs(self.path, exist_ok=True)
            except OSError as e:
                raise RunFolderError(f"cannot create run folder {self.path} ({e.strerror}); choose a writable "
                                     "--out") from None
            self._lock()
            try:
                self._clean_temporaries()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Release the lock. ``.lock`` stays (emptied): removing it would let a process that opened
        it just before take a lock on a file no one else can see any more."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _lock(self):
        path = self.file(LOCK)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise RunFolderNotWritable(f"run folder {self.path} is not writable ({e.strerror}); choose "
                                           "another folder or fix its permissions") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_lock(fd) or {}
            os.close(fd)
            raise RunFolderError(
                f"{self.path} is being written by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
                f"(since {holder.get('started', '?')}); wait for it to finish, or train into another "
                "--out") from None
        previous = _read_lock(fd)
        if previous and previous.get("pid") != os.getpid():
            self._notice(f"taking over the lock of process {previous.get('pid')} (started "
                         f"{previous.get('started')}), which no longer runs")
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._lock_fd = fd

    def _clean_temporaries(self):
        for tmp in glob.glob(os.path.join(glob.escape(self.path), f"*{TMP_MARK}*")):
            pid = tmp.rsplit(TMP_MARK, 1)[1]
            if pid.isdigit() and int(pid) != os.getpid():
                os.remove(tmp)
                self._notice(f"removed {os.path.basename(tmp)}, left by an interrupted write")

    def _notice(self, message):
        self.notices.append(message)
        print(f"pyro-lvm: {message}", file=sys.stderr, flush=True)

    # ---- contents ---------------------------------------------------------------------
    def write_config(self, settings, data=None, argv=None):
        """``config.json``: kind, settings, data set and size, seed, versions, command line."""
        config = {"run_kind": self.kind, "settings": settings, "seed": settings.get("seed"), "data": data,
                  "versions": versions(), "command": list(argv) if argv is not None else None,
                  "written": datetime.datetime.now().isoformat(timespec="seconds")}
        write_json(self.file(CONFIG), config)
        return config


def _read_lock(fd):
    """The record in an open ``.lock`` file, or ``None`` if it is empty or unreadable."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def read_config(path):
    """A run folder's ``config.json`` as a dict, or ``None`` where there is none."""
    file = os.path.join(path, CONFIG)
    if not os.path.isfile(file):
        return None
    try:
        with open(file) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{file} cannot be read ({e}); restore it or choose another folder") from None
    if not isinstance(config, dict):
        raise RunFolderError(f"{file} is not a pyro-lvm run description")
    return config


def data_description(dataset):
    """What ``config.json`` says of a data set: name, source, sizes and shape."""
    return {"name": dataset.name, "source": dataset.source, "train_size": int(dataset.train.shape[0]),
            "test_size": int(dataset.test.shape[0]), "input_shape": list(dataset.input_shape),
            "binarize": getattr(dataset, "binarize", None)}
