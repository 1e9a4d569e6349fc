"""The report's history table shows the first and last epochs (and the best) of a long run, not all of them."""

from __future__ import annotations

import re

from downslope.viz.report import HISTORY_ROWS_EACH_END, render_report


def _rows(html: str) -> list[str]:
    section = html[html.index('<section id="history">') :]
    return re.findall(r"<tr(?: class=\"(?:best|gap)\")?>.*?</tr>", section[: section.index("</section>")])[1:]


def test_a_long_history_is_cut_to_both_ends_and_the_best_and_says_where_the_rest_is() -> None:
    n = 10_000
    loss = [1.0 / (i + 1) for i in range(n)]
    loss[5000] = 1e-9  # the best epoch, in the middle
    html = render_report({"lr": 0.1}, {"loss": loss}, {}, "done")
    rows = _rows(html)
    epochs = [int(m) for r in rows for m in re.findall(r'^<tr(?: class="best")?><td class="num">(\d+)</td>', r)]
    ends = list(range(1, HISTORY_ROWS_EACH_END + 1)) + list(range(n - HISTORY_ROWS_EACH_END + 1, n + 1))
    assert epochs == sorted([*ends, 5001])
    assert [r for r in rows if 'class="best"' in r] == [
        '<tr class="best"><td class="num">5001</td><td class="num">1e-09</td></tr>'
    ]
    assert sum('class="gap"' in r for r in rows) == 2  # "... 4950 epochs not shown ..." and "... 4949 ..."
    assert "first and last 50 of 10000 epochs and the best; the full table is in history.csv" in html
    assert len(html) < 40_000  # (10,000 rows made a report of megabytes)


def test_a_short_history_is_shown_whole() -> None:
    html = render_report({}, {"loss": [1.0 / (i + 1) for i in range(2 * HISTORY_ROWS_EACH_END)]}, {}, "done")
    assert len(_rows(html)) == 2 * HISTORY_ROWS_EACH_END and "history.csv" not in html
