"""Every code block of docs/tutorial.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


@pytest.mark.slow
def test_tutorial_snippets_run(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    text = TUTORIAL.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    # every fenced block is Python, so none escapes this test
    assert len(re.findall(r"^```", text, flags=re.M)) == 2 * len(blocks)
    assert len(blocks) >= 8
    namespace: dict = {"__name__": "tutorial"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{TUTORIAL.name} block {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"tutorial block {i + 1} failed: {exc!r}\n{block}") from exc
    assert (tmp_path / "line_fit.png").is_file() and (tmp_path / "quadratic_paths.png").is_file()
