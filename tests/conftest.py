"""Shared test helpers: one function compares a downslope op with its PyTorch counterpart.

``check_op`` (tinygrad style) feeds the same random inputs to both libraries and compares the
output's values, dtype and shape, then the gradients of ``(out * projection).sum()`` for a fixed
random ``projection``. With ``device="strict"`` our side runs on the strict stand-in for a GPU
(downslope/devices/strict.py: NumPy behind CuPy's wall), so the same comparison also proves that
the op and its gradient rule take their namespace from the data (tests/test_ops.py runs its core
parity tests on both devices). Tolerances: 1e-5 relative in float32, 1e-10 in float64, plus a tiny absolute
floor scaled by the largest reference magnitude (values that cancel to ~0 have no relative accuracy).

Tests run with --import-mode=importlib, so this module cannot be imported by name: the helpers
are handed out as session-scoped fixtures (``check_op``, ``assert_close``), which
hypothesis accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

import downslope as ds

TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-10, 1e-12)}


def assert_close(ours: np.ndarray, ref: np.ndarray, dtype: Any, what: str) -> None:
    """Values agree to the dtype's relative tolerance (absolute floor scaled by max |ref|)."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    ref = np.asarray(ref, dtype=np.float64)
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), ref, rtol=rtol, atol=atol * scale, err_msg=what)


def check_op(
    ds_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    *,
    grad: bool = True,
    grad_inputs: Sequence[int] | None = None,
    seed: int = 0,
    device: str | None = None,
) -> ds.Tensor:
    """Run ``ds_fn`` and ``torch_fn`` on the same arrays; compare values, dtype, shape and gradients.

    Floating arrays become inputs that require grad (all of them, or those in ``grad_inputs``);
    integer/bool arrays are passed as plain tensors. Our inputs live on ``device`` (the host by
    default); the output and the gradients must stay there. Returns our output.
    """
    torch = pytest.importorskip("torch")
    floating = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    wants = floating if grad_inputs is None else list(grad_inputs)
    ours = [ds.tensor(a, dtype=a.dtype, device=device, requires_grad=grad and i in wants) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=grad and i in wants) for i, a in enumerate(arrays)]
    out = ds_fn(*ours)
    ref = torch_fn(*theirs)
    assert out.shape == tuple(ref.shape), f"shape {out.shape} != torch {tuple(ref.shape)}"
    ref_dtype = np.dtype(str(ref.dtype).replace("torch.", ""))
    assert out.dtype == ref_dtype, f"dtype {out.dtype} != torch {ref_dtype}"
    if device is not None:
        assert str(out.device) == device, f"output on {out.device}, inputs on {device}"
    if out.dtype.kind != "f":
        np.testing.assert_array_equal(out.detach().cpu().numpy(), ref.detach().numpy())
        return out
    assert_close(out.detach().cpu().numpy(), ref.detach().numpy(), out.dtype, "forward values")
    if not grad or not wants:
        return out
    projection = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * ds.tensor(projection, dtype=out.dtype, device=device)).sum().backward()
    (ref * torch.tensor(projection)).sum().backward()
    for i in wants:
        ref_grad = theirs[i].grad
        ref_grad = np.zeros(arrays[i].shape) if ref_grad is None else ref_grad.numpy()
        assert ours[i].grad is not None, f"input {i} got no gradient"
        assert ours[i].grad.shape == arrays[i].shape, f"input {i}: grad shape {ours[i].grad.shape}"
        assert ours[i].grad.dtype == arrays[i].dtype, f"input {i}: grad dtype {ours[i].grad.dtype}"
        if device is not None:
            assert str(ours[i].grad.device) == device, f"input {i}: grad on {ours[i].grad.device}"
        try:
            assert_close(ours[i].grad.cpu().numpy(), ref_grad, arrays[i].dtype, f"gradient of input {i}")
        except AssertionError:
            if arrays[i].dtype != np.float32:
                raise
            # torch's float32 sums can be the inaccurate side (a bias gradient summing hundreds of terms
            # that cancel): the float64 answer decides which one is off.
            exact = _float64_grad(torch_fn, arrays, wants, projection, i)
            assert_close(ours[i].grad.cpu().numpy(), exact, arrays[i].dtype, f"gradient of input {i} (float64 torch)")
    return out


def _float64_grad(
    torch_fn: Callable[..., Any], arrays: Sequence[np.ndarray], wants: Sequence[int], projection: np.ndarray, i: int
) -> np.ndarray:
    """The gradient of input ``i`` computed by torch in float64 from the same float32 values."""
    torch = pytest.importorskip("torch")
    inputs = [
        torch.tensor(a.astype(np.float64) if a.dtype == np.float32 else a, requires_grad=j in wants)
        for j, a in enumerate(arrays)
    ]
    (torch_fn(*inputs) * torch.tensor(projection.astype(np.float64))).sum().backward()
    grad = inputs[i].grad
    return np.zeros(arrays[i].shape) if grad is None else grad.numpy()


@pytest.fixture(scope="session", name="check_op")
def _check_op_fixture() -> Callable[..., Any]:
    return check_op


@pytest.fixture(scope="session", name="assert_close")
def _assert_close_fixture() -> Callable[..., Any]:
    return assert_close


def _examples_failing_as_copied(*module_names: str) -> list[str]:
    """The public docstring examples of these modules that fail when run as a reader copies them from
    help(): in an empty namespace, with only what the example itself imports."""
    import doctest
    import importlib

    failed = []
    for name in module_names:
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module, name, globs={}):
            if not test.examples or test.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
            runner.run(test, out=lambda _: None)
            if runner.summarize(verbose=False).failed:
                failed.append(test.name)
    return failed


@pytest.fixture(scope="session", name="examples_failing_as_copied")
def _examples_failing_as_copied_fixture() -> Callable[..., list[str]]:
    return _examples_failing_as_copied


def _run_python_blocks(page: Any, name: str = "__main__") -> int:
    """Runs every ```python block of the Markdown file ``page`` in order, in one namespace (as a reader
    pasting them would); a failing block fails the test with the block shown. Returns the count."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    namespace: dict[str, Any] = {"__name__": name}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name} python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.name} python block {i + 1} failed: {exc!r}\n{block}") from exc
    return len(blocks)


@pytest.fixture(scope="session", name="run_python_blocks")
def _run_python_blocks_fixture() -> Callable[..., int]:
    return _run_python_blocks


@pytest.fixture(scope="module", params=["numpy", "onednn"])
def gemm_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Float32 matrix products on NumPy's matmul, then on oneDNN's GEMM (downslope.gemm, the onednn
    extra) with its size threshold lowered to 0, so that a parity test's small products take it too.
    The oneDNN run is skipped when the extra is not installed or is switched off."""
    from downslope import gemm

    if request.param == "numpy":
        with gemm.disabled():
            yield request.param
        return
    if not gemm.available():
        pytest.skip("oneDNN's GEMM is not installed (the onednn extra) or is switched off")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gemm, "MIN_MULTIPLY_ADDS", 0)
        yield request.param


@pytest.fixture(params=["jit", "numpy"])
def jit_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both formulations of a kernel: the compiled (numba) loops where they apply, then NumPy's with the
    compiled path switched off (downslope.jit_gate.disabled)."""
    from downslope import jit_gate

    if request.param == "numpy":
        with jit_gate.disabled():
            yield request.param
    else:
        yield request.param


@pytest.fixture
def kill_training(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``kill_training(epoch, *train_args)``: run ``downslope train`` until the checkpoint of ``epoch``
    (from 1; ``None``: the one written as training stops) is on disk, then end the process as kill -9
    would (SystemExit 137 before any result file is written)."""
    from downslope.cli import main
    from downslope.train import callbacks

    real = callbacks.ModelCheckpoint.on_epoch_end

    def kill(epoch: int | None, *args: str) -> None:
        def die(self: Any, e: int, logs: Any = None) -> None:
            real(self, e, logs)
            if (e + 1 == epoch) if epoch is not None else self.trainer.stop_training:
                raise SystemExit(137)

        monkeypatch.setattr(callbacks.ModelCheckpoint, "on_epoch_end", die)
        if "--resume" not in args and "--checkpoint-seconds" not in args:
            args = (*args, "--checkpoint-seconds", "0")  # a checkpoint after every epoch, to be killed after
        with pytest.raises(SystemExit):
            main(["train", *args])
        monkeypatch.setattr(callbacks.ModelCheckpoint, "on_epoch_end", real)

    return kill


@pytest.fixture(params=["fast", "python"])
def csv_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a CSV test once with each reader: pyarrow's (column by column), then the pure-Python one
    (pyarrow switched off). The fast run is skipped when pyarrow is not installed."""
    from downslope.data import csvfile, readers

    if request.param == "python":
        monkeypatch.setattr(csvfile.readers, "fast_csv_available", lambda: False)
    elif not readers.fast_csv_available():
        pytest.skip("pyarrow not installed")
    return request.param


def pytest_configure(config: pytest.Config) -> None:
    """One BLAS thread and one torch thread: on a 2-core machine their spinning thread pools make
    small GEMMs many times slower (and timings erratic) when anything else is running."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _same_examples_under_ci()


def _same_examples_under_ci() -> None:
    """Under CI (CI=true) hypothesis draws the same examples on every run (derandomize, seeded from each
    test's name): whether a change lands must not hinge on which random examples one run happened to
    draw. Everyday runs keep drawing new ones, which is how the fuzz tests find new failures (each found
    one is then pinned with @example). The profile in force (e.g. the strict device's) is kept otherwise."""
    import os

    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("ci_same_examples", settings.default, derandomize=True)
    settings.load_profile("ci_same_examples")


# The reference libraries every parity test compares against. On a developer's machine a missing
# one makes its tests skip (pytest.importorskip); under CI (CI=true) it fails the run at once,
# so parity tests can never silently turn into skips there.
REQUIRED_IN_CI = ("torch", "hypothesis", "mpi4py")


def pytest_sessionstart(session: pytest.Session) -> None:
    import importlib.util
    import os

    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    missing = [name for name in REQUIRED_IN_CI if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"CI run without the reference libraries {', '.join(missing)}: install the test extra "
            '(pip install -e ".[dev,mpi]") so that parity tests run instead of skipping'
        )


# Fixtures that launch processes under mpiexec (tests/distributed/conftest.py): every test that uses one,
# directly or through another fixture, starts an MPI job of several Python processes (seconds each).
MPI_LAUNCH_FIXTURES = ("mpiexec", "run_mpi")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every MPI launch test slow, so that the everyday run (-m "not slow") leaves them to CI."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in MPI_LAUNCH_FIXTURES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def float64_defaults() -> Iterator[None]:
    """downslope's and torch's default dtype float64 for the test (both restored after it)."""
    torch = pytest.importorskip("torch")
    import downslope as ds

    old_ds, old_torch = ds.get_default_dtype(), torch.get_default_dtype()
    ds.set_default_dtype(ds.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        ds.set_default_dtype(old_ds)
        torch.set_default_dtype(old_torch)
