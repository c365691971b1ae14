"""File helpers shared by every layer (Pyro-free, so the VQ-VAE package can use them too)."""
import json
import os


def atomic_write(path, write, mode="wb"):
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk, then rename it
    onto ``path``: readers see the old file or the new one, never half of one.

    :returns: the path written.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path, value):
    """Atomically write ``value`` as indented JSON."""
    return atomic_write(path, lambda f: json.dump(value, f, indent=2), mode="w")
