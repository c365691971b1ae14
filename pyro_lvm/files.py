"""File helpers shared by every layer (Pyro-free, so the VQ-VAE package can use them too)."""
import csv
import json
import os

#: what marks a temporary file of :func:`atomic_write` (followed by the writer's PID)
TMP_MARK = ".pyro-lvm-tmp-"


def atomic_write(path, write, mode="wb"):
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk, then rename it
    onto ``path``: readers see the old file or the new one, never half of one.

    The temporary file is ``path + ".pyro-lvm-tmp-PID"``; a killed process can leave one behind,
    which :class:`~pyro_lvm.runs.RunFolder` removes on the next start.

    :returns: the path written.
    :raises OSError: with ``filename`` set to ``path`` (a full disk does not name the file itself).
    """
    path = os.fspath(path)
    tmp = f"{path}{TMP_MARK}{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename in (None, tmp):
            raise OSError(e.errno, e.strerror or str(e), path) from e
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path, value):
    """Atomically write ``value`` as indented JSON."""
    return atomic_write(path, lambda f: json.dump(value, f, indent=2), mode="w")


def write_csv(path, rows):
    """Atomically write a list of dicts as CSV, one column per key (``epoch`` first)."""
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k != "epoch", k))

    def write(f):
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write(path, write, mode="w")
