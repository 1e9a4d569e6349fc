"""The README's main example runs and finds the least-squares line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_fit_line_example_matches_least_squares():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fit_line.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    gd = re.search(r"gradient descent: slope (\S+)\s+intercept (\S+)", out)
    ls = re.search(r"least squares\s*: slope (\S+)\s+intercept (\S+)", out)
    assert gd and ls, out
    assert abs(float(gd.group(1)) - float(ls.group(1))) < 1e-3
    assert abs(float(gd.group(2)) - float(ls.group(2))) < 1e-3
    assert abs(float(ls.group(1)) - 3.0) < 0.1  # the data's true slope


@pytest.mark.slow
def test_every_python_block_in_the_readme_runs():
    """The README is what a newcomer copies first: each ```python block must run as written."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    for i, code in enumerate(blocks):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, f"README python block {i} failed:\n{code}\n{done.stderr}"


def _readme_csv_commands() -> tuple[str, list[str]]:
    """The README's CSV example commands: the one that writes the example files, and then the lines of
    "Your own CSV" and the CSV lines of "The command line" (which the README says use those files)."""
    text = (ROOT / "README.md").read_text()
    own = text.split("## Your own CSV")[1].split("```bash\n")[1].split("```")[0]
    lines = [ln for ln in own.splitlines() if ln and not ln.startswith("#")]
    assert lines[0].startswith("python -c ")
    cli_block = text.split("## The command line")[1].split("\n\n")[1]
    cli = [ln.strip() for ln in cli_block.splitlines() if re.search(r"\.csv|runs/prices", ln)]
    assert len(cli) >= 4
    return lines[0], lines[1:] + cli


def test_the_readme_csv_commands_read_only_files_the_readme_makes(tmp_path):
    make, commands = _readme_csv_commands()
    subprocess.run(["bash", "-e", "-c", make], cwd=tmp_path, check=True, timeout=60)
    made = {p.name for p in tmp_path.iterdir()}
    assert {"houses.csv", "new_houses.csv"} <= made
    runs: set[str] = set()
    for line in commands:
        args = line.split("#")[0].split()
        for flag, value in zip(args, args[1:]):
            if flag in ("--data", "--config"):
                assert value in made or value.split("/config.toml")[0] in runs, f"{value!r} is never made: {line}"
        if "--out" in args and args[1] == "train":
            runs.add(args[args.index("--out") + 1])
        if args[1] in ("evaluate", "predict"):  # evaluate/predict RUN: a run an earlier line wrote
            assert args[2] in runs, f"{args[2]!r} is never trained: {line}"


@pytest.mark.slow
def test_the_readme_csv_commands_run_as_written(tmp_path):
    make, commands = _readme_csv_commands()
    script = "\n".join([make, *commands])
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README CSV commands failed:\n{script}\n{done.stderr[-3000:]}"
    assert (tmp_path / "predictions.csv").is_file() and (tmp_path / "preds.csv").is_file()
