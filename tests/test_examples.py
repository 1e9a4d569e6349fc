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
