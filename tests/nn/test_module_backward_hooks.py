"""Module full backward hooks against PyTorch: what grad_input and grad_output hold (zeros for a tensor
input that needs no gradient or that the loss does not reach, None for non-tensors and unreached
outputs), when the hook fires, and the in-place op on a hooked module's output that PyTorch refuses;
and the global backward and registration hooks of torch.nn.modules.module."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def _describe(g: Any) -> Any:
    if g is None:
        return None
    return (
        tuple(g.shape),
        str(g.dtype).split(".")[-1],
        np.asarray(g.detach().numpy(), dtype=np.float64).round(5).tolist(),
    )


def _hooked(lib: Any, module: Any) -> list[Any]:
    seen: list[Any] = []
    module.register_full_backward_hook(
        lambda m, gi, go: seen.append(([_describe(g) for g in gi], [_describe(g) for g in go]))
    )
    return seen


def _both(run: Any) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(ds), run(torch)


def test_grad_input_is_zeros_for_a_tensor_input_that_needs_no_gradient() -> None:
    def run(lib: Any) -> Any:
        class Mul(lib.nn.Module):
            def forward(self, a: Any, b: Any) -> Any:
                return a * b

        m = Mul()
        seen = _hooked(lib, m)
        m(lib.tensor(X).requires_grad_(), lib.tensor(X * 2)).sum().backward()
        return seen

    ours, theirs = _both(run)
    assert ours == theirs and ours[0][0][1] is not None


def test_grad_input_of_an_unused_input_non_tensor_args_and_integer_tensors_match_torch() -> None:
    def run(lib: Any) -> Any:
        class Unused(lib.nn.Module):
            def forward(self, a: Any, b: Any, c: Any = None, k: int = 3) -> Any:
                return a * 2

        class Three(lib.nn.Module):
            def forward(self, a: Any, idx: Any) -> Any:
                return a * 2, a * 3, idx + 1

        a, b = lib.tensor(X).requires_grad_(), lib.tensor(X).requires_grad_()
        unused, three = Unused(), Three()
        seen = _hooked(lib, unused), _hooked(lib, three)
        unused(a, b, 5, 7).sum().backward()  # b requires grad but the loss does not reach it: zeros, not skipped
        three(a, lib.tensor([1, 2]))[0].sum().backward()  # second output unused, third an integer tensor
        return seen

    ours, theirs = _both(run)
    assert ours == theirs
    assert ours[0][0][0][1][2] == [[0.0] * 3] * 2  # the unused input's zeros
    assert ours[1][0][1] == [ours[1][0][1][0], None, None]


def test_hooks_replace_gradients_and_fire_once_per_backward_like_torch() -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3)).astype(np.float32)

    def run(lib: Any) -> Any:
        class Two(lib.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a, self.b = lib.nn.Linear(3, 3), lib.nn.Linear(3, 3)

            def forward(self, x: Any, y: Any) -> Any:
                return self.a(x) * self.b(y), self.a(y)

        two = Two()
        with lib.no_grad():
            for layer in (two.a, two.b):
                layer.weight.copy_(lib.tensor(w))
                layer.bias.zero_()
        calls: list[Any] = []
        two.register_full_backward_pre_hook(lambda m, go: (go[0] * 2, go[1]))
        two.register_full_backward_hook(lambda m, gi, go: calls.append(len(gi)) or (gi[0] * 3, None))
        x, y = lib.tensor(X).requires_grad_(), lib.tensor(X[::-1].copy()).requires_grad_()
        out = two(x, y)
        (out[0] ** 2 + out[1]).sum().backward()
        return calls, x.grad.numpy().copy(), y.grad, two.b.weight.grad.numpy().copy()

    ours, theirs = _both(run)
    assert ours[0] == theirs[0] == [2]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5)
    assert ours[2] is None and theirs[2] is None  # the hook returned None for y: its gradient is dropped
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-5)


@pytest.mark.parametrize("how", ["method", "setitem"])
def test_in_place_op_on_a_hooked_modules_output_raises_as_torch(how: str) -> None:
    for lib in (ds, torch):
        conv = lib.nn.Conv2d(2, 3, 3, padding=1)
        conv.register_full_backward_hook(lambda m, gi, go: None)
        y = conv(lib.tensor(np.ones((1, 2, 4, 4), np.float32), requires_grad=True))
        # (torch names the view a setitem writes through "Output 0 of Select"; the refusal is the same)
        words = (
            "Output 0 of BackwardHookFunction is a view"
            if how == "method"
            else "is a view and is being modified inplace"
        )
        with pytest.raises(RuntimeError, match=words):
            if how == "method":
                y.relu_()
            else:
                y[0, 0] = 0.0
        z = conv(lib.tensor(np.ones((1, 2, 4, 4), np.float32), requires_grad=True)).clone()
        z.relu_()  # a clone is the caller's own: allowed


def test_in_place_op_on_a_hooked_modules_input_inside_forward_raises_as_torch() -> None:
    for lib in (ds, torch):

        class AddInPlace(lib.nn.Module):
            def forward(self, x: Any) -> Any:
                x.add_(1)
                return x * 2

        m = AddInPlace()
        m.register_full_backward_hook(lambda m, gi, go: None)
        with pytest.raises(RuntimeError, match="Output 0 of BackwardHookFunction is a view"):
            m(lib.ones(2, requires_grad=True) * 1)


@pytest.mark.parametrize("lib", [ds, torch], ids=["downslope", "torch"])
def test_no_input_requiring_grad_calls_hooks_from_the_output_side_with_a_warning(lib: Any) -> None:
    lin = lib.nn.Linear(3, 2)
    seen: list[Any] = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, tuple(go[0].shape))))
    with pytest.warns(UserWarning, match="Full backward hook is firing"):
        lin(lib.tensor(X)).sum().backward()
    assert seen == [((None,), (2, 2))]
    lin.register_full_backward_hook(lambda m, gi, go: (lib.ones(2, 3),))
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match="should always return None"):
        warnings.simplefilter("ignore")
        lin(lib.tensor(X)).sum().backward()


def test_wrong_number_of_replacements_raises_as_torch() -> None:
    for lib in (ds, torch):
        lin = lib.nn.Linear(3, 2)
        lin.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
        with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
            lin(lib.tensor(X, requires_grad=True)).sum().backward()
        lin = lib.nn.Linear(3, 2)
        lin.register_full_backward_pre_hook(lambda m, go: (go[0], go[0]))
        with pytest.raises(RuntimeError, match="invalid number of grad_output, got 2, but expected 1"):
            lin(lib.tensor(X, requires_grad=True)).sum().backward()


def _global_order(lib: Any) -> list[str]:
    mm = lib.nn.modules.module
    seen: list[str] = []
    model = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.Tanh())
    model[0].register_full_backward_hook(lambda m, gi, go: seen.append("local " + type(m).__name__))
    handles = [
        mm.register_module_full_backward_hook(lambda m, gi, go: seen.append("global " + type(m).__name__)),
        mm.register_module_full_backward_pre_hook(lambda m, go: seen.append("pre " + type(m).__name__)),
    ]
    try:
        model(lib.tensor(X, requires_grad=True)).sum().backward()
        with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full backward hooks"):
            mm.register_module_backward_hook(lambda m, gi, go: None)
    finally:
        for h in handles:
            h.remove()
    model(lib.tensor(X, requires_grad=True)).sum().backward()  # removed: only the local hook
    return seen


def test_global_backward_hooks_run_for_every_module_before_its_own_like_torch() -> None:
    assert _global_order(ds) == _global_order(torch)


def test_global_backward_pre_hook_replaces_grad_output_like_torch() -> None:
    def run(lib: Any) -> Any:
        lib.manual_seed(0)
        lin = lib.nn.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(X[:, :3].reshape(2, 3)))
        with lib.nn.modules.module.register_module_full_backward_pre_hook(lambda m, go: (go[0] * 5,)):
            x = lib.tensor(X, requires_grad=True)
            lin(x).sum().backward()
        return x.grad.numpy().copy()

    ours, theirs = _both(run)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def _registrations(lib: Any) -> Any:
    mm = lib.nn.modules.module
    seen: list[Any] = []
    marker = lib.nn.Parameter(lib.zeros(7))

    def on_param(m: Any, name: str, p: Any) -> Any:
        seen.append(("param", type(m).__name__, name, tuple(p.shape)))
        return marker if name == "bias" else None

    def on_buffer(m: Any, name: str, b: Any) -> Any:
        seen.append(("buffer", type(m).__name__, name, None if b is None else tuple(b.shape)))
        return None if b is None else b + 1

    def on_module(m: Any, name: str, sub: Any) -> Any:
        seen.append(("module", type(m).__name__, name, type(sub).__name__))
        return lib.nn.Identity() if isinstance(sub, lib.nn.ReLU) else None

    handles = [
        mm.register_module_parameter_registration_hook(on_param),
        mm.register_module_buffer_registration_hook(on_buffer),
        mm.register_module_module_registration_hook(on_module),
    ]
    try:
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ReLU())
        model.add_module("extra", lib.nn.Tanh())
        model.head = None
        holder = lib.nn.Module()
        holder.register_buffer("count", lib.zeros(2))
        holder.register_buffer("empty", None)
        holder.register_parameter("none", None)
        holder.sub = lib.nn.ReLU()
    finally:
        for h in handles:
            h.remove()
    after = lib.nn.Linear(1, 1)  # removed: no more calls
    return (
        seen,
        model[0].bias is marker,
        type(model[1]).__name__,
        holder.count.tolist(),
        type(holder.sub).__name__,
        tuple(after.bias.shape),
    )


def test_global_registration_hooks_see_and_replace_what_is_registered_like_torch() -> None:
    assert _registrations(ds) == _registrations(torch)


def test_removable_handle_is_torch_utils_hooks_class() -> None:
    from downslope.utils.hooks import RemovableHandle

    handle = ds.nn.Linear(2, 1).register_full_backward_hook(lambda m, gi, go: None)
    assert isinstance(handle, RemovableHandle) and RemovableHandle is ds.nn.module.RemovableHandle
    assert isinstance(ds.nn.modules.module.register_module_buffer_registration_hook(print), RemovableHandle)
    ds.nn.module.hooks._registration_hooks["buffer"].clear()
