"""A binary run's positive class (the class its average precision is about) is a class name, not a score:
the report and the ``downslope runs`` listing say it beside the average precision, never as a metric row
of its own whose value is 'fraud'. (metrics.json keeps ``test_positive_class``: a record for programs.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main
from downslope.cli.train import shown_metrics

FAST = ["--hidden", "8", "--epochs", "4", "--patience", "0", "--quiet", "--lr", "0.05"]


@pytest.fixture(scope="module")
def fraud_run(tmp_path_factory) -> Path:
    """A run on a transactions table whose rare class is 'fraud' (about 8% of 600 rows)."""
    folder = tmp_path_factory.mktemp("fraud")
    rng = np.random.default_rng(3)
    rare = rng.random(600) < 0.08
    amount = rng.gamma(2.0, 60.0, size=600) * (1 + 2 * rare)
    hour = rng.integers(0, 24, size=600)
    rows = [f"{a:.2f},{h},{'fraud' if r else 'ok'}" for a, h, r in zip(amount, hour, rare)]
    data = folder / "transactions.csv"
    data.write_text("amount,hour,label\n" + "\n".join(rows) + "\n")
    run = folder / "run"
    assert main(["train", "--data", str(data), "--target", "label", "--out", str(run), *FAST]) == 0
    return run


def _metric_rows(html: str) -> dict[str, str]:
    """The report's final-metrics table: metric cell -> value cell."""
    section = html.split('<section id="metrics">', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", section))


def test_the_report_says_the_positive_class_by_the_average_precision_row(fraud_run):
    metrics = json.loads((fraud_run / "metrics.json").read_text())
    assert metrics["test_positive_class"] == "fraud"  # the record keeps it
    rows = _metric_rows((fraud_run / "report.html").read_text())
    assert not [k for k in rows if "positive_class" in k], rows
    assert "fraud" not in rows.values()  # no row whose 'value' is a class name
    label = "test_average_precision (average precision of class &#x27;fraud&#x27;)"
    assert label in rows, list(rows)
    assert float(rows[label]) == pytest.approx(metrics["test_average_precision"], rel=1e-5)


def test_the_runs_listing_says_it_by_the_average_precision(fraud_run, capsys):
    assert main(["runs", str(fraud_run.parent)]) == 0
    line = capsys.readouterr().out.strip()
    ap = float(f"{json.loads((fraud_run / 'metrics.json').read_text())['test_average_precision']:.4g}")
    assert f"test_average_precision={ap} (average precision of class 'fraud')" in line
    assert "positive_class" not in line


def test_shown_metrics_keeps_other_text_and_a_lone_positive_class():
    # without an average precision to stand by, the class is still shown as it is (nothing is lost)
    assert shown_metrics({"test_positive_class": "fraud", "stop_reason": "x"}, "test_") == ["test_positive_class=fraud"]
    said = shown_metrics({"val_average_precision": 0.5, "val_positive_class": "1", "test_accuracy": 0.9})
    assert said == ["val_average_precision=0.5 (average precision of class '1')", "test_accuracy=0.9"]
