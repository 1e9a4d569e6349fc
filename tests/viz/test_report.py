"""report.html: self-contained (every image a data: PNG, no URL, no script), escaped text, and
rendered by headless Chromium when it is installed."""

from __future__ import annotations

import base64
import html
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from downslope.viz.report import render_report, write_report

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
EVIL = '<script>alert("x")</script> & "quotes"'


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        self.text.append(data)


def _magenta_figure():
    from downslope.viz._mpl import new_figure

    fig = new_figure(width=3.0, height=1.5)
    fig.patch.set_facecolor("#ff00ff")  # a colour nothing else on the page has
    return fig


def _report(tmp_path: Path, **overrides) -> Path:
    from downslope.viz.curves import plot_loss_curves

    hist = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.7], "accuracy": [0.5, 0.8, 0.9]}
    png_file = tmp_path / "curves.png"
    plot_loss_curves(hist, save_path=png_file)
    kwargs = dict(
        config={"optimizer": "adam", "model": {"hidden": [128, 64], "activation": EVIL}, "lr": 0.001},
        history=hist,
        metrics={"test_accuracy": 0.9731, "test_loss": 0.0812345678},
        stop_reason="early stopping: val_loss did not improve for 10 epochs",
        figures={"Marker": _magenta_figure(), "Loss curves": png_file, "bytes figure": png_file.read_bytes()},
        diagnostics=["learning rate may be too high: loss rose in 3 of 5 epochs", EVIL],
    )
    kwargs.update(overrides)
    return write_report(tmp_path / "out" / "report.html", **kwargs)


def test_self_contained_and_escaped(tmp_path: Path) -> None:
    from PIL import Image

    path = _report(tmp_path)
    text = path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 3
    for attrs in images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        assert attrs["alt"]
    # Nothing to fetch and nothing to run.
    assert not [t for t, _ in parser.tags if t in ("script", "link", "iframe", "object", "embed")]
    for _, attrs in parser.tags:
        for name in ("src", "href"):
            assert attrs.get(name) is None or (attrs[name] or "").startswith("data:")
    assert "http://" not in text and "https://" not in text and "url(" not in text
    # The hostile config value and diagnostic come back as text, not as markup.
    assert "<script>" not in text
    assert text.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;") == 2
    assert sum(EVIL in chunk for chunk in parser.text) == 2
    visible = " ".join(parser.text)
    for needle in ("model.hidden", "[128, 64]", "0.9731", "0.0812346", "early stopping: val_loss did not improve"):
        assert needle in visible
    assert "0.6 (epoch 2)" in visible  # best validation loss
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text


def test_inputs_checked(tmp_path: Path) -> None:
    bad = tmp_path / "not.png"
    bad.write_bytes(b"GIF89a....")
    with pytest.raises(ValueError, match="figure 'x' is not a PNG"):
        write_report(tmp_path / "r.html", {}, None, {}, "done", figures={"x": bad})
    with pytest.raises(FileNotFoundError, match="figure 'y'"):
        write_report(tmp_path / "r.html", {}, None, {}, "done", figures={"y": tmp_path / "missing.png"})
    with pytest.raises(TypeError, match="figure 'z'"):
        write_report(tmp_path / "r.html", {}, None, {}, "done", figures={"z": 3})
    with pytest.raises(TypeError, match="config must be a dict"):
        write_report(tmp_path / "r.html", [], None, {}, "done")  # type: ignore[arg-type]
    assert not (tmp_path / "r.html").exists()
    out = write_report(tmp_path / "r.html", {}, None, {}, "max epochs")
    text = out.read_text(encoding="utf-8")
    assert "No problems detected." in text and "<img" not in text


def test_long_history_is_folded(tmp_path: Path) -> None:
    hist = {"loss": list(np.linspace(1, 0.1, 50))}
    text = write_report(tmp_path / "r.html", {"a": 1}, hist, {}, "done").read_text(encoding="utf-8")
    assert "<details><summary>50 epochs" in text
    assert text.count("<tr") == 1 + 50 + 2  # history header + rows, config header + row


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    path = _report(tmp_path)
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr", "--v=0", "--window-size=1200,1400", f"--screenshot={shot}",
            path.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shot.exists(), result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3).astype(int)
    # The magenta figure was decoded and drawn: a 3 x 1.5 inch image at 100 dpi is ~45,000 pixels.
    magenta = np.all(np.abs(pixels - [255, 0, 255]) < 8, axis=1).sum()
    assert magenta > 30_000, magenta
    assert len(np.unique(pixels, axis=0)) > 50  # text and the other plots rendered too


PROBE = (
    "<script>window.addEventListener('load', () => document.body.setAttribute('data-images', "
    "[...document.images].map(i => i.complete && i.naturalWidth > 0 ? i.naturalWidth + 'x' + i.naturalHeight "
    ": 'BROKEN').join(' ')));</script>"
)


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr", "--v=0", *extra, page.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_every_image_of_a_real_run_report_loads_in_chromium(tmp_path: Path) -> None:
    """A report written by `downslope train` (curves, learning rate, gradient norms, decision boundary):
    no console message, and every <img> decodes at the size of its embedded PNG."""
    from PIL import Image

    from downslope.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", "moons", "--hidden", "8", "--epochs", "4", "--schedule", "cosine", "--patience", "0"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    report = out / "report.html"
    result = _chromium(tmp_path, report, "--dump-dom")
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    # The report has no script; a copy with a load-time probe reports each image's decoded size.
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = _chromium(tmp_path, probe, "--dump-dom")
    assert 'data-images="' in result.stdout, result.stderr[-2000:]
    loaded = result.stdout.split('data-images="', 1)[1].split('"', 1)[0].split()
    parser = _Collector()
    parser.feed(text)
    expected = []
    for tag, attrs in parser.tags:
        if tag == "img":
            data = base64.b64decode((attrs["src"] or "").split(",", 1)[1])
            with Image.open(io.BytesIO(data)) as im:
                expected.append(f"{im.width}x{im.height}")
    assert len(expected) == 4  # loss/metric curves, learning rate, gradient norms, decision boundary
    assert loaded == expected


def test_real_history_table(tmp_path: Path) -> None:
    from downslope.train.history import History

    h = History()
    for i, (lo, va) in enumerate([(1.0, 1.2), (0.5, 0.7), (0.4, 0.9)]):
        h.append(i, {"loss": lo, "val_loss": va})
    text = write_report(tmp_path / "r.html", {}, h, {}, "done").read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    headers = [d for d in parser.text if d in ("epoch", "loss", "val_loss")]
    assert headers == ["epoch", "loss", "val_loss"]  # one epoch column, not two
    assert "0.7 (epoch 2)" in " ".join(parser.text)
    assert text.count('<tr class="best"><td class="num">2</td><td class="num">0.5</td><td class="num">0.7</td>') == 1


def test_the_summary_says_which_weights_the_model_holds_and_what_the_losses_are(tmp_path: Path) -> None:
    hist = {"loss": [1.0, 0.5, 0.6, 0.7], "val_loss": [0.9, 0.4, 0.5, 0.6]}
    text = html.unescape(render_report({"batch_size": "full"}, hist, {}, "early stopping", weights_epoch=2))
    assert "restored to epoch 2 (best validation loss), not the last epoch's (4)" in text
    assert "the mean over the epoch's rows (batch losses weighted by batch size), each before its update" in text
    assert "val_loss can lie below loss in the first epochs" in text  # full batch: said why
    text = html.unescape(render_report({"batch_size": 32}, hist, {}, "done"))
    assert "restored to epoch" not in text and "val_loss can lie below" not in text
