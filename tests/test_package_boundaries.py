"""The package's boundaries, read from the source: no private name crosses a top-level package, and
imports run one way along the layers of docs/architecture.md.

Both scans read every ``from ... import ...`` in src/downslope, including the ones inside functions
(a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "downslope"

# The core shares its internals freely: the tensor, the graph it records, the backward walk, the ops
# and their rule helpers are one machine split over several modules.
CORE_INTERNAL = {"tensor", "graph", "autograd", "autograd_graph", "ops", "backend", "functional"}

# Private names that still cross a package boundary, each with the reason it has not been made
# public yet. Keep this empty: a new entry needs a reason a reviewer accepts.
PRIVATE_CROSSINGS_LEFT: dict[tuple[str, str], str] = {}

# Layers, lowest first (docs/architecture.md): a module imports only from its own layer or lower ones.
LAYERS = [
    {
        "errors",
        "launchers",
        "startup_signals",
        "_unsupported",
        "profiler",
        "_inductor",
        "version",
        "backend",
        "workspace",
        "jit_gate",
        "jit_math",
        "gemm",
        "parallel",
        "device",
        "devices",
        "generator",
        "random",
        "graph",
        "tensor",
        "row_grads",
        "typed_tensors",
        "autograd",
        "autograd_graph",
        "ops",
        "functional",
        "func",
        "_vmap",
        "forward_ad",
        "inplace",
        "foreach",
        "special",
        "fft",
        "signal",
        "torch_alias_names",
        "amp",
        "linalg",
        "householder",
        "lowrank",
        "compiler",
        "_dynamo",
        "jit",
        "fx",
        "sparse",
        "quasirandom",
    },
    {"gradcheck", "serialization", "jacobians", "testing"},
    # ao / quantization: torch.ao.quantization's observers and FakeQuantize are nn Modules
    {"nn", "data", "distributions", "ao", "quantization"},
    {"optim"},
    {"train"},
    {"distributed", "viz", "export"},
    # torch's facade namespace (torch.utils.data re-exports data/, utils.data.distributed the sampler of
    # distributed/): above distributed, and nothing in the package imports it
    {"utils"},
    {"experiment"},
    {"runs"},
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
# Siblings in one layer that must not import each other (nn and optim never import data).
FORBIDDEN = {("nn", "data"), ("data", "nn"), ("optim", "data")}
# Imports against the layers, each with its reason. Keep this short.
ARROWS_LEFT: dict[tuple[str, str], str] = {
    ("serialization", "nn"): "load gives a saved nn.Parameter back as one, as torch.load (imported only then)",
    ("jit", "nn"): "torch.jit.ScriptModule is an nn.Module subclass (imported only when that name is asked for)",
    (
        "_dynamo",
        "nn",
    ): "torch.compile's OptimizedModule is an nn.Module subclass (imported only when compile makes one)",
}


@functools.cache
def _imports() -> list[tuple[Path, list[str], list[str], str]]:
    """(file, the file's module path, the imported module's path, the imported name) for every
    ``from ... import`` of the package in src/downslope (parsed once for both tests: ~8 s of parsing)."""
    return list(_parsed_imports())


def _parsed_imports() -> Iterator[tuple[Path, list[str], list[str], str]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "downslope":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # ``from .. import nn``: the name is the module
                yield path, parts, target or [alias.name], alias.name


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_crosses_a_top_level_package() -> None:
    found = {}
    for path, parts, target, name in _imports():
        if not parts or parts[0] == target[0]:
            continue
        if parts[0] in CORE_INTERNAL and target[0] in CORE_INTERNAL:
            continue
        private = [p for p in [*target[1:], name] if _private(p)]
        if private:
            key = (str(path.relative_to(SRC)), ".".join([*target, name]))
            found[key] = f"{key[0]} imports {key[1]}"
    unexpected = sorted(v for k, v in found.items() if k not in PRIVATE_CROSSINGS_LEFT)
    assert not unexpected, "private names used across packages (make them public API):\n" + "\n".join(unexpected)
    stale = sorted(set(PRIVATE_CROSSINGS_LEFT) - set(found))
    assert not stale, f"fixed, so remove from PRIVATE_CROSSINGS_LEFT: {stale}"


def test_imports_run_one_way_along_the_layers() -> None:
    found = {}
    for path, parts, target, name in _imports():
        if not parts:
            continue  # the package's __init__ is the public surface and may gather anything
        src, dst = parts[0], target[0]
        if src == dst or dst not in RANK:
            continue
        assert src in RANK, f"{path}: the top-level module {src!r} is in no layer of this test"
        if RANK[dst] > RANK[src] or (src, dst) in FORBIDDEN:
            found[(src, dst)] = f"{path.relative_to(SRC)} ({src}) imports {'.'.join([*target, name])} ({dst})"
    unexpected = sorted(v for k, v in found.items() if k not in ARROWS_LEFT)
    assert not unexpected, "imports against the layers of docs/architecture.md:\n" + "\n".join(unexpected)
    stale = sorted(set(ARROWS_LEFT) - set(found))
    assert not stale, f"fixed, so remove from ARROWS_LEFT: {stale}"
