"""Every code block of docs/deploy.md runs as written, in order, in one namespace (the shell block's
``downslope`` commands through the CLI's main); a block that imports a package that is missing here
(onnxruntime, torch, safetensors) is skipped."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def _imports(block: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in re.finditer(r"^\s*(?:import (\w+)|from (\w+)\S* import)", block, re.M)}


def test_deploy_page_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    from downslope.cli import main

    monkeypatch.chdir(tmp_path)
    text = DEPLOY.read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)
    # every fenced block is Python or a shell block of downslope commands, so none escapes this test
    assert len(re.findall(r"^```", text, flags=re.M)) == 2 * len(blocks)
    assert {kind for kind, _ in blocks} == {"python", "bash"}
    namespace: dict = {"__name__": "deploy"}
    ran, skipped = 0, []
    for i, (kind, block) in enumerate(blocks):
        where = f"{DEPLOY.name} block {i + 1}"
        missing = sorted(m for m in _imports(block) if importlib.util.find_spec(m) is None)
        if missing:
            skipped.append((where, missing))
            continue
        if kind == "bash":
            for line in block.strip().splitlines():
                args = shlex.split(line)
                assert args[0] == "downslope", f"{where}: only downslope commands are run here: {line}"
                assert main(args[1:]) == 0, f"{where} failed: {line}"
        else:
            try:
                exec(compile(block, where, "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the message is the point
                raise AssertionError(f"{where} failed: {exc!r}\n{block}") from exc
        ran += 1
    assert ran + len(skipped) == len(blocks) >= 5
    if "onnxruntime" not in {m for _, ms in skipped for m in ms}:
        assert namespace["scores"].shape == (5, 3)
        assert set(namespace["label"].ravel()) <= {"yes", "no"} and namespace["probabilities"].shape == (2, 2)
