"""``report.html``: one self-contained page describing a training run.

The page holds the configuration, the stopping reason, the final metrics, the diagnostics, the
figures (embedded as base64 PNG ``data:`` URIs) and the per-epoch history, with inline CSS: no
external URL, no script, so it opens anywhere (e-mail attachment, offline, sandboxed viewer).
Every piece of text is HTML-escaped.

Example:
    >>> import tempfile, pathlib
    >>> from downslope.viz.report import write_report
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> _ = write_report(out, {"lr": 0.1}, {"loss": [1.0, 0.5]}, {"accuracy": 0.9}, "max epochs reached")
    >>> "max epochs reached" in out.read_text(encoding="utf-8")
    True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError
from .curves import TRAINING_LOSS_MEANING, history_to_dict, marked_best_index

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY_ROWS_OPEN = 30  # longer histories are folded in a <details> element
#: The history table shows this many epochs at each end (and the best one): a run of 10,000 epochs would
#: otherwise make a report of megabytes; every epoch is in history.csv.
HISTORY_ROWS_EACH_END = 50

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #1d2330;
       background: #f6f7f9; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 10px; border-bottom: 1px solid #d6dae1; padding-bottom: 4px; }
.subtitle { color: #5b6473; margin: 0 0 20px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid #d6dae1; border-radius: 8px; padding: 10px 16px; min-width: 140px; }
.card .label { font-size: 0.8em; color: #5b6473; text-transform: uppercase; letter-spacing: 0.04em; }
.card .value { font-size: 1.25em; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; background: #fff; font-size: 0.92em; }
th, td { border: 1px solid #d6dae1; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef0f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, Consolas, monospace; }
tr.best td { background: #fff6d6; }
tr.gap td { text-align: center; color: #666; font-style: italic; }
ul.diagnostics li { margin: 4px 0; }
.ok { color: #2f7d32; }
figure { background: #fff; border: 1px solid #d6dae1; border-radius: 8px; margin: 0 0 18px; padding: 10px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { text-align: center; color: #5b6473; font-size: 0.9em; margin-top: 6px; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.95em; }
footer { color: #8a92a0; font-size: 0.8em; margin-top: 40px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """Numbers to 6 significant digits; everything else as text (JSON for lists and dicts)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if hasattr(value, "item") and getattr(value, "size", 2) == 1:  # NumPy scalars
        return _fmt(value.item())
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _png_of(name: str, figure: Any) -> bytes:
    """PNG bytes of a matplotlib Figure, of PNG bytes, or of a .png file."""
    if hasattr(figure, "savefig"):
        from ._mpl import png_bytes

        data = png_bytes(figure)
    elif isinstance(figure, (bytes, bytearray)):
        data = bytes(figure)
    elif isinstance(figure, (str, os.PathLike)):
        path = Path(figure)
        if not path.is_file():
            raise FileNotFoundError(f"write_report: figure {name!r}: no file at {path}")
        data = path.read_bytes()
    else:
        raise ArgumentTypeError(
            f"write_report: figure {name!r} must be a matplotlib Figure, PNG bytes or a path to a .png file, "
            f"got {type(figure).__name__}"
        )
    if not data.startswith(PNG_SIGNATURE):
        raise ArgumentError(
            f"write_report: figure {name!r} is not a PNG image (it does not start with the PNG signature)"
        )
    return data


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any] | str], best_row: int | None = None) -> str:
    """An HTML table; a row given as a string is a note across all the columns (rows left out)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            body.append(f'<tr class="gap"><td colspan="{len(headers)}">{_e(row)}</td></tr>')
            continue
        cells = "".join(
            f'<td class="num">{_e(_fmt(v))}</td>' if _is_number(v) else f"<td>{_e(_fmt(v))}</td>" for v in row
        )
        cls = ' class="best"' if i == best_row else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(label: str, value: Any) -> str:
    return f'<div class="card"><div class="label">{_e(label)}</div><div class="value">{_e(_fmt(value))}</div></div>'


def _split_said(config: Mapping[str, Any]) -> str:
    """How a run's rows were split, in words (from its config), or "" when the config does not say.

    Example:
        >>> _split_said({"split": "random", "test_split": 0.2, "val_split": 0.15})
        'random (shuffled) split: 65% training, 15% validation, 20% test rows'
    """
    kind = config.get("split")
    if kind not in ("random", "ordered"):
        return ""
    said = "random (shuffled) split" if kind == "random" else "ordered split (the file's order; the last rows are test)"
    try:
        test, val = float(config.get("test_split", 0.2)), float(config.get("val_split", 0.15))
    except (TypeError, ValueError):
        return said
    return f"{said}: {1 - test - val:.0%} training, {val:.0%} validation, {test:.0%} test rows"


def _summary_section(
    hist: dict[str, list[Any]],
    stop_reason: str,
    n_epochs: int,
    monitor: str | None,
    best: int | None,
    epoch_numbers: list[Any],
    weights_epoch: int | None = None,
    full_batch: bool = False,
    split: str = "",
) -> str:
    cards = [_card("stopping reason", stop_reason), _card("epochs run", n_epochs)]
    if split:
        cards.append(_card("split", split))
    if best is not None and monitor is not None:
        best_epoch = _fmt(epoch_numbers[best]) if best < len(epoch_numbers) else best + 1
        cards.append(_card(f"best {monitor.replace('_', ' ')}", f"{_fmt(hist[monitor][best])} (epoch {best_epoch})"))
    if weights_epoch is not None:
        which = "best validation loss" if monitor == "val_loss" else "best training loss"
        if weights_epoch < n_epochs:
            said = f"restored to epoch {weights_epoch} ({which}), not the last epoch's ({n_epochs})"
        else:
            said = f"the last epoch's ({weights_epoch}; also the {which})"
        cards.append(_card("model weights", said))
    notes = []
    if "loss" in hist:
        notes.append(f"the training loss (loss) is the {TRAINING_LOSS_MEANING}")
        if "val_loss" in hist:
            notes.append("the validation loss (val_loss) is measured after the epoch's last update")
        if full_batch and "val_loss" in hist:
            notes.append(
                "with full batches the logged training loss is the loss before the epoch's one update while "
                "val_loss is after it, so val_loss can lie below loss in the first epochs without anything "
                "being wrong"
            )
    said = "; ".join(notes)
    text = f'<p class="subtitle">{_e(said[:1].upper() + said[1:])}.</p>' if notes else ""
    return (
        '<section id="summary"><h2>Summary</h2><div class="cards">\n' + "\n".join(cards) + f"\n</div>{text}</section>"
    )


def _metrics_section(metrics: Mapping[str, Any]) -> str:
    if metrics:
        # a binary run's positive class is a class name, not a score: said by its average precision's row
        said = {
            k.replace("positive_class", "average_precision"): v
            for k, v in metrics.items()
            if k.endswith("positive_class")
        }
        rows = [
            (f"{k} (average precision of class {str(said[k])!r})" if k in said else k, v)
            for k, v in metrics.items()
            if not (k.endswith("positive_class") and k.replace("positive_class", "average_precision") in metrics)
        ]
        body = _table(["metric", "value"], rows)
    else:
        body = "<p>No metrics recorded.</p>"
    return f'<section id="metrics"><h2>Final metrics</h2>\n{body}\n</section>'


def _diagnostics_section(diagnostics: Sequence[str] | None) -> str:
    if diagnostics:
        body = '<ul class="diagnostics">' + "".join(f"<li>{_e(d)}</li>" for d in diagnostics) + "</ul>"
    else:
        body = '<p class="ok">No problems detected.</p>'
    return f'<section id="diagnostics"><h2>Diagnostics</h2>\n{body}\n</section>'


def _figures_section(figures: Mapping[str, Any]) -> str:
    parts = ['<section id="figures"><h2>Figures</h2>']
    for name, figure in figures.items():
        encoded = base64.b64encode(_png_of(str(name), figure)).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(name)}">'
            f"<figcaption>{_e(name)}</figcaption></figure>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _history_section(hist: dict[str, list[Any]], n_epochs: int, best: int | None, epoch_numbers: list[Any]) -> str:
    keys = [k for k in hist if k != "epoch"]
    shown: Sequence[int] = range(n_epochs)
    note = ""
    if n_epochs > 2 * HISTORY_ROWS_EACH_END:
        ends = {*range(HISTORY_ROWS_EACH_END), *range(n_epochs - HISTORY_ROWS_EACH_END, n_epochs)}
        shown = sorted(ends | ({best} if best is not None and 0 <= best < n_epochs else set()))
        note = (
            f'<p class="note">The table shows the first and last {HISTORY_ROWS_EACH_END} of {n_epochs} epochs'
            f"{' and the best' if best is not None and best not in ends else ''}; the full table is in "
            "history.csv (<code>History.to_csv()</code> writes it).</p>"
        )
    rows: list[list[Any] | str] = []
    best_row, previous = None, -1
    for i in shown:
        if rows and not isinstance(rows[-1], str) and i - previous > 1:
            rows.append(f"... {i - previous - 1} epochs not shown ...")
        if i == best:
            best_row = len(rows)
        rows.append(
            [epoch_numbers[i] if i < len(epoch_numbers) else i + 1]
            + [hist[k][i] if i < len(hist[k]) else "" for k in keys]
        )
        previous = i
    table = _table(["epoch", *keys], rows, best_row=best_row)
    if n_epochs > HISTORY_ROWS_OPEN:
        table = f"<details><summary>{n_epochs} epochs (best row highlighted)</summary>{table}</details>"
    return f'<section id="history"><h2>History</h2>\n{note}{table}\n</section>'


def render_report(
    config: Mapping[str, Any],
    history: Any,
    metrics: Mapping[str, Any],
    stop_reason: str,
    figures: Mapping[str, Any] | None = None,
    diagnostics: Sequence[str] | None = None,
    *,
    title: str = "downslope run report",
    weights_epoch: int | None = None,
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    if not isinstance(config, Mapping):
        raise ArgumentTypeError(f"write_report: config must be a dict, got {type(config).__name__}")
    if not isinstance(metrics, Mapping):
        raise ArgumentTypeError(f"write_report: metrics must be a dict, got {type(metrics).__name__}")
    hist = history_to_dict(history) if history is not None else {}
    n_epochs = max((len(v) for v in hist.values()), default=0)
    monitor = "val_loss" if "val_loss" in hist else ("loss" if "loss" in hist else None)
    # the epoch plot_loss_curves marks (the run's callback's, else the first within BEST_EPOCH_RTOL of the
    # lowest): the report's "best" card and highlighted row name the same epoch as curves.png
    best = marked_best_index(history, hist, monitor)[0] if monitor else None
    epoch_numbers: list[Any] = hist.get("epoch") or list(range(1, n_epochs + 1))

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="subtitle">generated {_e(_dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))}</p>',
        _summary_section(
            hist,
            stop_reason,
            n_epochs,
            monitor,
            best,
            epoch_numbers,
            weights_epoch,
            str(config.get("batch_size", "")).lower() in ("full", "none"),
            _split_said(config),
        ),
        _metrics_section(metrics),
        _diagnostics_section(diagnostics),
    ]
    if figures:
        parts.append(_figures_section(figures))
    rows = _flatten(config)
    parts.append('<section id="config"><h2>Configuration</h2>')
    parts.append(_table(["setting", "value"], rows) if rows else "<p>No configuration recorded.</p>")
    parts.append("</section>")
    if hist and n_epochs:
        parts.append(_history_section(hist, n_epochs, best, epoch_numbers))

    from .. import __version__

    parts.append(f"<footer>downslope {_e(__version__)}</footer></main></body></html>")
    return "\n".join(parts)


def write_report(
    path: str | os.PathLike[str],
    config: Mapping[str, Any],
    history: Any,
    metrics: Mapping[str, Any],
    stop_reason: str,
    figures: Mapping[str, Any] | None = None,
    diagnostics: Sequence[str] | None = None,
    *,
    title: str = "downslope run report",
    weights_epoch: int | None = None,
) -> Path:
    """Write the self-contained HTML report of a run and return its path.

    Args:
        path: where to write (parent folders are created; the file is replaced atomically).
        config: the run's settings (nested dicts are shown as ``a.b`` rows).
        history: a History or ``{"loss": [...], ...}`` (None for no history table).
        metrics: final metrics, ``{"test_accuracy": 0.97, ...}``.
        stop_reason: why training stopped, in words.
        figures: ``{caption: matplotlib Figure, PNG bytes or path to a .png}``, embedded as base64.
        diagnostics: warnings and observations, one sentence each.
        weights_epoch: the (1-based) epoch whose weights the model holds when early stopping restored
            its best ones at the end (the summary says so); None when the model is the last epoch's.
    """
    text = render_report(
        config, history, metrics, stop_reason, figures, diagnostics, title=title, weights_epoch=weights_epoch
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
