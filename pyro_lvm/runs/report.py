"""``pyro-lvm report RUN_DIR``: one self-contained page, ``RUN_DIR/report.html``, about a run.

The page holds the run's configuration (``config.json``), its metrics table (``metrics.json``,
one row per epoch), every evaluation file (``evaluation_*.json``: log-likelihood with its Monte
Carlo and data standard errors and the PSIS :math:`\\hat k` summary), the collapse diagnostics
(``diagnostics.json``, where ``pyro-lvm diagnose`` wrote one) and every PNG of the folder
(curves, grids, latent plots, diagnostics), embedded as ``data:`` URIs so that the file can be
mailed or archived alone. For a ``vae`` or ``sbn`` run it first draws the figures of
:mod:`pyro_lvm.runs.plot` the folder lacks, and ArviZ's ``plot_khat`` of the per-image
:math:`\\hat k` of the guide's importance weights (:func:`~pyro_lvm.evaluate.arviz_export.to_inference_data`)
as ``arviz_khat.png``.
"""
import base64
import glob
import html
import json
import math
import os
import warnings

from pyro_lvm.errors import UsageError
from pyro_lvm.runs.base import positive_int

HELP = "write RUN_DIR/report.html: configuration, metrics, evaluations with standard errors and k-hat, all figures"
REPORT = "report.html"
#: figures first in the page, in this order; other PNGs follow by name
ORDER = ("loss.png", "samples.png", "reconstructions.png", "manifold.png", "scatter.png", "interpolation.png",
         "kl_per_dim.png", "traversal.png", "arviz_khat.png")


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run folder")
    parser.add_argument("--images", type=positive_int, default=1000,
                        help="test images for the figures drawn (vae and sbn runs; default 1000)")
    parser.add_argument("--khat-images", type=positive_int, default=50,
                        help="test images of the ArviZ k-hat plot (default 50)")
    parser.add_argument("--khat-samples", type=positive_int, default=200,
                        help="importance samples per image for the k-hat plot (default 200)")
    parser.add_argument("--no-draw", action="store_true", help="only the files already in the folder")
    parser.add_argument("--data", default=None, help="a run's data set, where its config does not say")
    parser.add_argument("--data-root", default=None)


def plot_khat_figure(model, test, path, num_samples, seed=0):
    """ArviZ's ``plot_khat`` of the guide's importance weights on ``test``; the path written."""
    import matplotlib.pyplot as plt

    from pyro_lvm.evaluate.arviz_export import _arviz, to_inference_data

    idata = to_inference_data(model.model, model.guide, test, num_samples=num_samples,
                              site=getattr(model, "latent_site", "z"), seed=seed)
    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=100)
    with warnings.catch_warnings():  # ArviZ would rather have an ELPDData than k-hat values of its own
        warnings.simplefilter("ignore")
        _arviz().plot_khat(idata.sample_stats["pareto_k"].values, ax=ax, show_bins=True)
    ax.set_title(f"PSIS k-hat of q(z|x) per test image ({num_samples} draws each)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_inference_data(run_dir, path, samples=1000, images=100, data=None, data_root=None, seed=0):
    """:func:`~pyro_lvm.evaluate.arviz_export.to_inference_data` of a vae or sbn run's first
    ``images`` test images, ``samples`` draws each, written to ``path`` as netCDF; the path."""
    from pyro_lvm.evaluate.arviz_export import to_inference_data
    from pyro_lvm.runs.diagnose import load_for_diagnosis

    model, test, _ = load_for_diagnosis(run_dir, data, data_root, images)
    if os.path.isdir(path):
        raise UsageError(f"--arviz {path} is a folder; give a file name such as posterior.nc")
    idata = to_inference_data(model.model, model.guide, test, num_samples=samples,
                              site=getattr(model, "latent_site", "z"), seed=seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    idata.to_netcdf(path)
    print(f"wrote {path}: q(z|x) draws of {len(test)} test images x {samples}, with log p(x|z), log-weights and "
          f"PSIS k-hat (arviz.from_netcdf reads it)")
    return path


def draw_missing(run_dir, args):
    """Draw the figures a vae or sbn run folder lacks; the files written."""
    from pyro_lvm.runs.diagnose import load_for_diagnosis
    from pyro_lvm.runs.plot import draw_figure, figures_for, file_name, read_history

    model, test, _, labels = load_for_diagnosis(run_dir, args.data, args.data_root, args.images, labels=True)
    history = read_history(run_dir)
    written = []
    for figure in figures_for(model, test[:1]):
        if not os.path.exists(os.path.join(run_dir, file_name(figure))) and (figure != "loss" or history):
            written.append(draw_figure(figure, run_dir, model, test, labels, history))
    khat = os.path.join(run_dir, "arviz_khat.png")
    if not os.path.exists(khat):
        written.append(plot_khat_figure(model, test[:args.khat_images], khat, args.khat_samples))
    return written


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _cell(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return html.escape(text if len(text) <= 80 else text[:77] + "...")
    return html.escape("" if value is None else str(value))


def _table(rows):
    """An HTML table of dicts (the union of their keys, in order of appearance)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _key_values(record):
    scalars = [{"quantity": k, "value": v} for k, v in record.items() if not isinstance(v, (list, dict))]
    return _table(scalars) if scalars else ""


def _metrics(history):
    if isinstance(history, dict):  # the VQ-VAE's stages
        return "".join(f"<h3>{html.escape(stage)}</h3>" + _metrics(rows) for stage, rows in history.items() if rows)
    rows = [{k: v for k, v in row.items() if not isinstance(v, (list, dict))} for row in history]
    return _table(rows) if rows else "<p>no epochs recorded</p>"


def _evaluation(record):
    headline = ""
    if "log_likelihood" in record:
        se = [f"{name} {record[name]:.3g}" for name in ("se_mc", "se_data") if isinstance(record.get(name), float)]
        khat = record.get("khat_max")
        headline = (f"<p class='headline'>log p(x) = {record['log_likelihood']:.3f} nats per image "
                    f"({', '.join(se)}); PSIS k-hat max {_cell(khat)}, "
                    f"{record.get('unreliable', '?')} image(s) above 0.7</p>")
    rows = record.get("rows")
    return headline + (_table(rows) if isinstance(rows, list) and rows and isinstance(rows[0], dict)
                       else "") + _key_values(record)


def _image(path):
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    name = html.escape(os.path.basename(path))
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{name}\">"
            f"<figcaption>{name}</figcaption></figure>")


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px;
margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}figure{display:inline-block;margin:0.5em;
vertical-align:top}img{max-width:100%}.headline{font-weight:bold}"""
#: records, after the page has loaded, each image's natural width and any script error (a browser test reads them)
CHECK_SCRIPT = """<script>
window.addEventListener("error", function (e) {
  document.getElementById("page-errors").textContent += (e.message || "error") + "\\n"; }, true);
window.addEventListener("load", function () {
  var widths = Array.prototype.map.call(document.images, function (img) { return img.naturalWidth; });
  document.getElementById("image-widths").textContent = widths.join(",");
});
</script>"""


def render(run_dir):
    """The report's HTML of the run folder ``run_dir`` (every file read now, images embedded)."""
    from pyro_lvm.runs import read_config

    config = read_config(run_dir) or {}
    title = f"pyro-lvm run {os.path.basename(os.path.abspath(run_dir))}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style>{CHECK_SCRIPT}</head><body><h1>{html.escape(title)}</h1>",
             f"<p>run kind: <b>{html.escape(str(config.get('run_kind', 'unknown')))}</b>; folder "
             f"<code>{html.escape(os.path.abspath(run_dir))}</code></p>"]
    metrics = os.path.join(run_dir, "metrics.json")
    if os.path.isfile(metrics):
        parts.append("<h2>Metrics per epoch</h2>" + _metrics(_read_json(metrics)))
    evaluations = sorted(glob.glob(os.path.join(run_dir, "evaluation*.json")))
    if evaluations:
        parts.append("<h2>Evaluation</h2>")
        for path in evaluations:
            parts.append(f"<h3>{html.escape(os.path.basename(path))}</h3>" + _evaluation(_read_json(path)))
    diagnostics = os.path.join(run_dir, "diagnostics.json")
    if os.path.isfile(diagnostics):
        parts.append("<h2>Posterior-collapse diagnostics</h2>" + _key_values(_read_json(diagnostics)))
    images = sorted(glob.glob(os.path.join(run_dir, "*.png")),
                    key=lambda p: (ORDER.index(os.path.basename(p)) if os.path.basename(p) in ORDER else len(ORDER),
                                   os.path.basename(p)))
    parts.append("<h2>Figures</h2>" + "".join(_image(p) for p in images))
    parts.append("<h2>Configuration</h2><pre>" + html.escape(json.dumps(config, indent=2, default=str)) + "</pre>")
    parts.append("<pre id='image-widths' hidden></pre><pre id='page-errors' hidden></pre></body></html>")
    return "\n".join(parts)


def run(args):
    """Draw what is missing (vae and sbn runs), then write ``RUN_DIR/report.html``; ``{"file", "drawn"}``."""
    from pyro_lvm.runs import get_run_kind, read_config
    from pyro_lvm.runs.fitted import FitRunKind

    run_dir = args.run_dir
    if not os.path.isdir(run_dir):
        raise UsageError(f"no run folder at {run_dir}; give the --out folder of a pyro-lvm train run")
    config = read_config(run_dir)
    if config is None:
        raise UsageError(f"{run_dir} has no config.json; give the --out folder of a pyro-lvm train run")
    drawn = []
    kind = config.get("run_kind")
    if not args.no_draw and kind and isinstance(get_run_kind(kind), FitRunKind):
        drawn = draw_missing(run_dir, args)
    path = os.path.join(run_dir, REPORT)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(run_dir))
    print(f"wrote {path}" + (f" (drew {', '.join(os.path.basename(p) for p in drawn)})" if drawn else ""))
    return {"file": path, "drawn": drawn}
