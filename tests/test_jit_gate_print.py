"""The lazy numba import survives a replaced builtins.print, falls back to NumPy (with one warning) when a
kernels module cannot be loaded, and leaves no colour codes on a terminal's stdout."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from downslope import jit_gate

pytest.importorskip("numba")

# util/misc.py's setup_for_distributed (MAE, DeiT, DINO, ConvNeXt), then a conv2d forward and backward large enough for the compiled kernels (above their size gate)
_SCRIPT = textwrap.dedent(
    """
    import builtins, sys, warnings
    import numpy as np
    def setup_for_distributed(is_master):
        builtin_print = builtins.print
        def print(*args, **kwargs):
            force = kwargs.pop("force", False)
            if is_master or force:
                builtin_print(*args, **kwargs)
        builtins.print = print
    if sys.argv[1] == "before":
        setup_for_distributed(True)
    import downslope as ds
    if sys.argv[1] == "after":
        setup_for_distributed(True)
    warnings.simplefilter("error")  # the compiled path must load, not fall back
    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    conv = ds.nn.Conv2d(3, 8, 3, padding=1)
    xt = ds.tensor(x, requires_grad=True)
    y = conv(xt)
    (y * y).sum().backward()
    from downslope import jit_gate
    assert jit_gate._loaded.get("downslope.nn._jit_kernels") is not None, jit_gate._loaded
    assert builtins.print.__name__ == "print" and builtins.print.__module__ == "__main__"  # the user's, restored
    np.savez(sys.argv[2], w=conv.weight.detach().numpy(), b=conv.bias.detach().numpy(), y=y.detach().numpy(),
             gx=xt.grad.numpy(), gw=conv.weight.grad.numpy(), gb=conv.bias.grad.numpy())
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_conv2d_runs_after_print_is_replaced_as_setup_for_distributed_does(tmp_path, when):
    torch = pytest.importorskip("torch")
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "out.npz"
    env = {k: v for k, v in os.environ.items() if k != "DOWNSLOPE_JIT"}
    done = subprocess.run(
        [sys.executable, str(script), when, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(got["w"]))
        conv.bias.copy_(torch.tensor(got["b"]))
    x = torch.tensor(np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32), requires_grad=True)
    y = conv(x)
    (y * y).sum().backward()
    np.testing.assert_allclose(got["y"], y.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["gx"], x.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["gw"], conv.weight.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got["gb"], conv.bias.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_a_kernels_module_that_fails_to_load_warns_once_and_gives_the_numpy_path(tmp_path, monkeypatch):
    package = tmp_path / "broken_kernels_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "kernels.py").write_text("raise AttributeError(\"module '__main__' has no attribute 'print'\")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)
    name = "broken_kernels_pkg.kernels"
    monkeypatch.delitem(jit_gate._loaded, name, raising=False)
    with pytest.warns(RuntimeWarning, match=r"broken_kernels_pkg\.kernels could not be loaded \(AttributeError"):
        assert jit_gate.kernels(name, np.zeros(2)) is None
    assert jit_gate.kernels(name, np.zeros(2)) is None  # remembered: no second import, no second warning
    jit_gate._loaded.pop(name, None)


def test_the_interpreter_print_is_found_through_a_replacement(monkeypatch):
    import builtins

    real = builtins.print

    def wrapper(*args, **kwargs):
        return real(*args, **kwargs)

    monkeypatch.setattr(builtins, "print", wrapper)
    monkeypatch.setattr(jit_gate, "_PRINT", wrapper)  # replaced before downslope was imported
    assert jit_gate._interpreter_print() is real


@pytest.mark.slow
def test_no_colour_codes_on_a_terminal_after_numba_compiles(tmp_path):
    # numba compiles with colorama initialised unless told not to; its exit hook then writes "\x1b[0m" to
    # a terminal. A fresh cache directory makes numba compile (a cached kernel would not show it).
    script = tmp_path / "script.py"
    script.write_text(
        "import numpy as np, downslope as ds\n"
        "x = ds.tensor(np.ones((4, 3, 8, 8), np.float32), requires_grad=True)\n"
        "m = ds.nn.Sequential(ds.nn.Conv2d(3, 8, 3, padding=1), ds.nn.BatchNorm2d(8), ds.nn.ReLU(), ds.nn.MaxPool2d(2))\n"
        "m(x).sum().backward()\n"
        "print('done')\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("DOWNSLOPE_JIT", "NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING")
    }
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba_cache")
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, str(script)], env=env, stdout=follower, stderr=subprocess.PIPE, timeout=600
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: everything is read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    out = b"".join(chunks)
    assert done.returncode == 0, done.stderr[-3000:]
    assert b"done" in out
    assert b"\x1b" not in out, out[-200:]
