"""``pyro-lvm plot``, ``pyro-lvm report`` and ``pyro-lvm evaluate --arviz`` on one smoke VAE run."""
import base64
import html.parser
import os
import shutil
import subprocess

import pytest

from pyro_lvm.cli import run
from cli_helpers import fails
from png_helpers import png_file_size, png_size


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "vae"
    logging = ["--tensorboard", str(out.parent / "tb")] if _has_tensorboard() else []
    run(["train", "vae", "--smoke", "--no-progress", "--data", "embedded", "--epochs", "2", "--latent-dim", "3",
         "--hidden", "32", "--eval-samples", "25", "--eval-images", "10", "--out", str(out), *logging])
    return str(out)


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_tensorboard(), reason="the tensorboard extra is not installed")
def test_train_tensorboard_writes_event_files(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(os.path.dirname(run_dir), "tb")).Reload()
    assert [e.step for e in events.Scalars("epoch/train_loss")] == [1, 2]
    assert {"samples", "reconstructions"} <= set(events.Tags()["images"])


def test_training_draws_the_latent_plots(run_dir):
    for name in ("samples.png", "reconstructions.png", "loss.png", "manifold.png", "scatter.png",
                 "interpolation.png"):
        width, height = png_file_size(os.path.join(run_dir, name))
        assert width > 100 and height > 100
    # 15 x 15 MNIST digits of 28 pixels with 2-pixel padding, 2 PNG pixels each, a title
    assert png_file_size(os.path.join(run_dir, "manifold.png")) == (2 * (15 * 30 + 2), 2 * (15 * 30 + 2) + 30)


def test_plot_draws_each_kind(run_dir, tmp_path, capsys):
    kinds = ["manifold", "scatter", "interpolation", "samples", "reconstructions", "loss", "kl", "traversal"]
    result = run(["plot", run_dir, "--images", "200", "--size", "4", "--dims", "2", "0", "--out", str(tmp_path),
                  *[a for k in kinds for a in ("--kind", k)]])
    assert len(result["files"]) == len(kinds)
    assert png_file_size(tmp_path / "manifold.png") == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2) + 30)
    assert png_file_size(tmp_path / "scatter.png") == (500, 450)
    assert png_file_size(tmp_path / "loss.png") == (500, 350)
    for name in ("kl_per_dim.png", "traversal.png", "samples.png", "reconstructions.png", "interpolation.png"):
        assert png_file_size(tmp_path / name)[0] > 100
    fails(["plot", run_dir, "--kind", "manifold", "--dims", "0", "7"], capsys, "two distinct latent dimensions")


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_report_embeds_every_figure_as_a_png_of_its_size(run_dir, capsys):
    result = run(["report", run_dir, "--images", "200", "--khat-images", "8", "--khat-samples", "30"])
    assert {os.path.basename(p) for p in result["drawn"]} == {"kl_per_dim.png", "traversal.png", "arviz_khat.png"}
    with open(result["file"], encoding="utf-8") as f:
        page = f.read()
    parser = _Images()
    parser.feed(page)
    pngs = sorted(n for n in os.listdir(run_dir) if n.endswith(".png"))
    assert len(parser.sources) == len(pngs) >= 9
    prefix = "data:image/png;base64,"
    sizes = sorted(png_size(base64.b64decode(src[len(prefix):])) for src in parser.sources
                   if src.startswith(prefix))
    assert sizes == sorted(png_file_size(os.path.join(run_dir, n)) for n in pngs)
    for text in ("Metrics per epoch", "Evaluation", "se_mc", "khat_max", "Configuration", "test_loss"):
        assert text in page


def _browser():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(_browser() is None, reason="no Chromium or Chrome installed")
def test_report_displays_every_image_in_a_headless_browser(run_dir, tmp_path):
    page = os.path.join(run_dir, "report.html")
    if not os.path.exists(page):
        run(["report", run_dir, "--no-draw"])
    dom = subprocess.run([_browser(), "--headless", "--disable-gpu", "--no-sandbox", "--allow-file-access-from-files",
                          f"--user-data-dir={tmp_path}", "--virtual-time-budget=5000", "--dump-dom",
                          "file://" + os.path.abspath(page)], capture_output=True, text=True, timeout=60).stdout
    parser = _Images()
    parser.feed(dom)
    widths = dom.split('id="image-widths"')[1].split(">", 1)[1].split("<", 1)[0]
    errors = dom.split('id="page-errors"')[1].split(">", 1)[1].split("<", 1)[0]
    assert errors.strip() == ""
    assert len(widths.split(",")) == len(parser.sources) > 0
    assert all(int(w) > 0 for w in widths.split(","))


def test_evaluate_writes_arviz_netcdf(run_dir, tmp_path, capsys):
    from pyro_lvm.evaluate.arviz_export import _arviz

    path = str(tmp_path / "posterior.nc")
    result = run(["evaluate", run_dir, "--samples", "25", "--images", "6", "--no-progress", "--arviz", path])
    assert result["arviz"] == path
    idata = _arviz().from_netcdf(path)
    assert idata.posterior["z"].shape == (1, 25, 6, 3)
    assert idata.sample_stats["pareto_k"].shape == (6,)
