"""Every code block of docs/tutorial.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


@pytest.mark.slow
def test_tutorial_snippets_run(tmp_path, monkeypatch, run_python_blocks):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    text = TUTORIAL.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    # every fenced block is Python, so none escapes this test
    assert len(re.findall(r"^```", text, flags=re.M)) == 2 * len(blocks)
    assert len(blocks) >= 8
    assert run_python_blocks(TUTORIAL, "tutorial") == len(blocks)
    assert (tmp_path / "line_fit.png").is_file() and (tmp_path / "quadratic_paths.png").is_file()


def _commands(text: str) -> list[str]:
    return re.findall(r"`(downslope (?:train|compare|lr-find|landscape)[^`]*)`", text)


def test_the_commands_the_tutorial_quotes_name_their_data():
    # the page trains on its own data; a command without --data would train on the digits instead
    quoted = _commands(TUTORIAL.read_text())  # with their flags: a bare `downslope lr-find` names the command
    commands = [c for c in quoted if " --" in c and not c.startswith("downslope landscape")]
    assert any(c.startswith("downslope compare") for c in commands)
    missing = [c for c in commands if "--data " not in c and "--config " not in c]
    assert missing == []


@pytest.mark.slow
def test_the_tutorials_compare_command_runs_on_line_data(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from downslope.cli import main

    monkeypatch.chdir(tmp_path)
    (command,) = [c for c in _commands(TUTORIAL.read_text()) if c.startswith("downslope compare")]
    assert main([*command.split()[1:], "--epochs", "2", "--quiet"]) == 0
    assert [p.name.split("-2")[0] for p in (tmp_path / "runs").iterdir()] == ["compare-line"]
