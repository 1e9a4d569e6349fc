"""The hot path takes its array namespace from the data: a scan of the source for host-only calls.

On a GPU (CuPy) an array made with ``np.zeros(...)`` lives on the host and cannot meet the device
arrays of a step, and ``float(x)``, ``x.item()`` or ``np.asarray(x)`` of a device array copies it
to the host and waits for the GPU. Code on the hot path (ops, autograd, tensor, functional, the
layers and losses, the optimizer step) must create arrays with ``xp = namespace_of(x)`` or
``np.zeros_like(x)`` (which dispatch) and keep values on the device. This test counts the calls
that bypass that, per file, like the error-type scan in tests/test_errors.py counts bare raises.

A line may carry ``# host: <why>`` when the host is meant (a shape computed from Python ints, a
value the user asked for); such lines are not counted.

The core (tensor, graph, autograd, functional, the ops) and the optimizer step are at zero and must
stay there (``CLEAN``); the rest (the layers and losses) is held at or below ``BASELINE``, which is to
come down to zero as they move onto the data's namespace, and then the test asserts zero.
"""

from __future__ import annotations

import ast
from pathlib import Path

import downslope as ds

PACKAGE = Path(ds.__file__).parent

# NumPy calls that make a host array from scratch or convert to the host.
HOST_CREATION = {
    "zeros",
    "empty",
    "ones",
    "full",
    "arange",
    "eye",
    "identity",
    "linspace",
    "asarray",
    "array",
    "asanyarray",
    "ascontiguousarray",
    "frombuffer",
    "fromiter",
    "tri",
}
# Methods and built-ins that copy a device value to the host (and synchronise).
HOST_METHODS = {"item", "tolist"}
HOST_BUILTINS = {"float", "bool"}

# 418 when the scan was written; zero once the core, the optimizers and every nn layer, loss and
# kernel took their arrays from the data's namespace. It must stay zero: a new host-only call either
# goes through the data's namespace or says why it must be on the host with `# host: <reason>`.
BASELINE = 0
# Parts already at zero, which must stay there: the core and the optimizer step.
CLEAN = ("optim/", "ops/", "autograd.py", "tensor.py", "graph.py", "functional.py")


def hot_path_files() -> list[Path]:
    files = [PACKAGE / "autograd.py", PACKAGE / "tensor.py", PACKAGE / "graph.py", PACKAGE / "functional.py"]
    files += [PACKAGE / "ops.py"] if (PACKAGE / "ops.py").exists() else []
    files += sorted((PACKAGE / "ops").rglob("*.py")) if (PACKAGE / "ops").is_dir() else []
    files += [p for p in sorted((PACKAGE / "nn").rglob("*.py")) if p.name not in {"init.py", "__init__.py"}]
    optim = PACKAGE / "optim"
    files += sorted((optim / "transforms").glob("*.py"))
    files += [optim / n for n in ("buckets.py", "optimizer.py", "sgd.py", "adam.py", "adaptive.py")]
    return [f for f in files if f.exists()]


def _is_numpy(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"np", "numpy"}


def host_calls(source: str) -> list[tuple[int, str]]:
    """(line, call) of each host-only call in ``source``, skipping lines marked ``# host:``."""
    marked = {i + 1 for i, line in enumerate(source.splitlines()) if "# host:" in line}
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or node.lineno in marked:
            continue
        f = node.func
        name = None
        if isinstance(f, ast.Attribute):
            if _is_numpy(f.value) and f.attr in HOST_CREATION:
                name = f"np.{f.attr}("
            elif isinstance(f.value, ast.Attribute) and _is_numpy(f.value.value) and f.value.attr == "random":
                name = f"np.random.{f.attr}("
            elif f.attr in HOST_METHODS and not node.args:
                name = f".{f.attr}()"
        elif isinstance(f, ast.Name) and f.id in HOST_BUILTINS and node.args:
            if not isinstance(node.args[0], ast.Constant):
                name = f"{f.id}("
        if name is not None:
            found.append((node.lineno, name))
    return sorted(found)


def counts() -> dict[str, int]:
    return {str(p.relative_to(PACKAGE)): len(host_calls(p.read_text())) for p in hot_path_files()}


def test_scan_finds_host_calls_and_skips_marked_lines():
    source = (
        "import numpy as np\n"
        "def f(x, xp):\n"
        "    a = np.zeros(3)\n"
        "    b = xp.zeros(3) + np.zeros_like(x)\n"
        "    c = np.random.standard_normal(3)\n"
        "    d = float(x.sum()) + x.item() + float('nan')\n"
        "    e = np.asarray(x)  # host: the user asked for a NumPy array\n"
        "    return np.exp(a) + x.tolist()\n"
    )
    assert host_calls(source) == [
        (3, "np.zeros("),
        (5, "np.random.standard_normal("),
        (6, ".item()"),
        (6, "float("),
    ] + [(8, ".tolist()")]


def test_hot_path_host_calls_do_not_grow():
    per_file = counts()
    total = sum(per_file.values())
    table = "\n".join(f"{n:5d}  {name}" for name, n in sorted(per_file.items(), key=lambda kv: -kv[1]) if n)
    print(f"host-only calls on the hot path: {total}\n{table}")
    assert total <= BASELINE, (
        f"{total} host-only calls on the hot path, more than the {BASELINE} measured before: take the namespace "
        f"from the data (xp = downslope.backend.namespace_of(x)) instead. Per file:\n{table}"
    )


def test_parts_already_clean_stay_clean():
    dirty = {name: n for name, n in counts().items() if name.startswith(CLEAN) and n}
    assert not dirty, f"host-only calls crept into code that had none: {dirty}"
