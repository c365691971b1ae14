"""The table :func:`~pyro_lvm.evaluate.compare_estimators` returns: rows, text, CSV and JSON."""
import csv
import io
import math
from dataclasses import dataclass, field

from pyro_lvm.files import atomic_write, write_json

#: what ``memory_mb`` measures (see :mod:`pyro_lvm.evaluate.gradients`)
MEMORY_MEASURE = ("MiB of tensors autograd saves for the backward pass of one draw (distinct storages, "
                  "parameters and data excluded); on CUDA, the peak allocated memory of the draw")


@dataclass
class EstimatorTable:
    """One row dict per estimator, with the groups its gradient columns are named after.

    Each row holds ``label``, ``estimator`` (its family), ``K``, ``repeats``, ``value`` (the bound
    per datum, mean over the repeats) and ``value_se``, ``exact`` and ``gap`` (``exact - value``)
    where the model has an exact :math:`\\log p(x)`, ``khat_max`` and ``unreliable`` for
    importance-weighted bounds, ``{group}_variance``, ``{group}_mean_sq`` and ``{group}_snr`` per
    parameter group, ``ms_per_draw``, ``memory_mb`` and a ``note`` (why a row was skipped).
    """

    rows: list
    groups: list = field(default_factory=list)
    exact: float = None
    num_data: int = None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __str__(self):
        return self.format()

    def format(self):
        """The table as aligned text, skipped rows' notes underneath."""
        columns = [("estimator", "label", "{}"), ("K", "K", "{}"), ("bound", "value", "{:.3f}"),
                   ("se", "value_se", "{:.3f}"), ("gap", "gap", "{:.3f}"), ("k-hat", "khat_max", "{:.2f}")]
        columns += [(f"SNR {g}", f"{g}_snr", "{:.3g}") for g in self.groups]
        columns += [(f"var {g}", f"{g}_variance", "{:.3g}") for g in self.groups]
        columns += [("ms/draw", "ms_per_draw", "{:.1f}"), ("MiB", "memory_mb", "{:.2f}")]
        columns = [c for c in columns if any(_shown(r.get(c[1])) for r in self.rows)]
        cells = [[c[0] for c in columns]] + [[_cell(r.get(key), fmt) for _, key, fmt in columns] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in cells]
        head = [] if self.exact is None else [f"exact log p(x) = {self.exact:.3f} nats per datum; gap = exact - bound"]
        notes = [f"{r['label']}: {r['note']}" for r in self.rows if r.get("note")]
        return "\n".join(head + lines + notes)

    def write_csv(self, path):
        """One line per row, every key a column."""
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        return atomic_write(path, lambda f: f.write(buffer.getvalue()), mode="w")

    def write_json(self, path):
        """The rows with the exact value, the groups and what the memory column measures."""
        return write_json(path, {"exact_log_likelihood": self.exact, "num_data": self.num_data,
                                 "groups": self.groups, "memory_mb": MEMORY_MEASURE, "rows": self.rows})


def _shown(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _cell(value, fmt):
    return fmt.format(value) if _shown(value) else "-"
