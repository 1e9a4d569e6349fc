"""``Compare`` renders the same tables as ``torch.utils.benchmark.Compare`` for the same measurements
(labels, sub-labels, descriptions, envs, thread counts, missing cells, replicates merged), with and without
trimmed figures, colours and highlighted warnings; the fuzzer is refused with the way round it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from downslope._unsupported import UnsupportedModuleError, UnsupportedNameError
from downslope.utils import benchmark

torch = pytest.importorskip("torch")
import torch.utils.benchmark as tb  # noqa: E402


def _specs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    out = []
    for label in ("Batched dot", "mm"):
        for threads in (1, 4):
            for sub in ("[64, 8]", "[1024, 256]", None):
                for desc in ("mul/sum", "bmm", "einsum"):  # (torch cannot print a None description)
                    if rng.random() < 0.2:
                        continue  # a missing cell
                    scale = {"[64, 8]": 1e-6, "[1024, 256]": 3e-4, None: 2e-5}[sub] / threads
                    noisy = rng.random() < 0.3
                    times = list(scale * (1 + (0.4 if noisy else 0.01) * rng.standard_normal(6)).clip(0.2))
                    # (torch's table cannot mix measurements with and without an env within a label)
                    env = None if label == "Batched dot" else "cpu" if sub == "[64, 8]" else "host"
                    out.append(
                        dict(label=label, sub_label=sub, description=desc, num_threads=threads, env=env, times=times)
                    )
    return out


def _measurements(lib: Any, specs: list[dict[str, Any]], replicate: bool) -> list[Any]:
    out = []
    for s in specs:
        spec = lib.TaskSpec(
            stmt="x.mul(x).sum(-1)" if s["sub_label"] is None else "f(x)",
            setup="pass",
            label=s["label"],
            sub_label=s["sub_label"],
            description=s["description"],
            env=s["env"],
            num_threads=s["num_threads"],
        )
        times = [t * 10 for t in s["times"]]  # raw times of blocks of 10 runs
        if replicate:  # two replicates, merged by Compare
            out.append(lib.Measurement(10, times[:3], spec))
            out.append(lib.Measurement(10, times[3:], spec))
        else:
            out.append(lib.Measurement(10, times, spec))
    return out


@pytest.mark.parametrize("replicate", [False, True])
@pytest.mark.parametrize("style", ["plain", "trim", "colorize", "rowwise", "warnings", "all"])
def test_compare_renders_torchs_table(style: str, replicate: bool) -> None:
    specs = _specs()
    ours = benchmark.Compare(_measurements(benchmark, specs, replicate))
    theirs = tb.Compare(_measurements(tb, specs, replicate))
    for c in (ours, theirs):
        if style in ("trim", "all"):
            c.trim_significant_figures()
        if style in ("colorize", "all"):
            c.colorize()
        if style == "rowwise":
            c.colorize(rowwise=True)
        if style in ("warnings", "all"):
            c.highlight_warnings()
    expected = str(theirs).replace("Unspecified env", "")
    got = str(ours).replace("Unspecified env", "")
    assert got == expected


def test_compare_print_and_extend(capsys: pytest.CaptureFixture[str]) -> None:
    spec = benchmark.TaskSpec("f()", "pass", label="f", sub_label="s", description="d")
    c = benchmark.Compare([benchmark.Measurement(1, [1e-3, 1.1e-3], spec)])
    c.extend_results([benchmark.Measurement(1, [2e-3], benchmark.TaskSpec("f()", "pass", label="g"))])
    c.print()
    out = capsys.readouterr().out
    assert "[" in out and " f " in out and " g " in out and "Times are in milliseconds (ms)." in out
    with pytest.raises(TypeError, match="expected an instance of Measurement"):
        c.extend_results([1.0])


def test_compare_of_timer_measurements() -> None:
    import downslope as ds

    x = ds.randn(8, 4)
    results = [
        benchmark.Timer("x.mul(x).sum(-1)", globals={"x": x}, label="dot", sub_label=s, description=d).timeit(50)
        for s in ("a", "b")
        for d in ("mul/sum", "other")
    ]
    text = str(benchmark.Compare(results))
    assert text.splitlines()[0].startswith("[") and "dot" in text.splitlines()[0]
    assert "mul/sum" in text and "1 threads:" in text


def test_fuzzer_is_refused_with_the_way_round() -> None:
    with pytest.raises(UnsupportedNameError, match="Compare"):
        benchmark.Fuzzer  # noqa: B018
    assert not hasattr(benchmark, "FuzzedTensor")
    with pytest.raises(UnsupportedModuleError, match="Timer"):
        exec("from downslope.utils.benchmark import Fuzzer", {})
