"""The compatibility table docs/pytorch_compat.md: what it marks supported exists in downslope, and
it is what tests/compat/make_table.py generates now."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).parent
TABLE = HERE.parents[1] / "docs" / "pytorch_compat.md"
SECTION = re.compile(r"^## `([\w.]+)` \(in downslope: `([\w.]+)`\)$")
ROW = re.compile(r"^\| `([^`]+)` \| (supported|differs) \|")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_table", HERE / "make_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def marked_present() -> dict[str, list[str]]:
    """Namespace -> the names the committed table marks supported or differs."""
    present: dict[str, list[str]] = {}
    namespace = None
    for line in TABLE.read_text().splitlines():
        if (section := SECTION.match(line)) is not None:
            namespace = section.group(1)
            present[namespace] = []
        elif (row := ROW.match(line)) is not None:
            assert namespace is not None, f"table row before any section: {line}"
            present[namespace].append(row.group(1))
    return present


def test_every_name_marked_supported_exists_in_downslope() -> None:
    make_table = generator()
    present = marked_present()
    assert set(present) == set(make_table.NAMESPACES)
    assert sum(len(v) for v in present.values()) > 200
    absent = [f"{ns}.{name}" for ns, names in present.items() for name in names if not make_table.has_name(ns, name)]
    assert not absent, f"marked supported in {TABLE.name} but missing from downslope: {absent}"


def test_a_missing_name_would_be_caught() -> None:
    make_table = generator()
    assert make_table.has_name("torch.nn", "Linear")
    assert not make_table.has_name("torch.nn", "NoSuchLayer")


@pytest.mark.slow
def test_committed_table_is_up_to_date() -> None:
    pytest.importorskip("torch")
    # Rendered in a fresh interpreter: what other tests imported or patched into torch's and
    # downslope's namespaces must not change which names the table sees.
    import os
    import subprocess
    import sys

    import downslope

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('make_table', {str(HERE / 'make_table.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "sys.stdout.write(module.render())\n"
    )
    src = str(Path(downslope.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    fresh = done.stdout
    assert TABLE.read_text() == fresh, (
        "docs/pytorch_compat.md is stale: regenerate it with `PYTHONPATH=src python tests/compat/make_table.py`"
    )
