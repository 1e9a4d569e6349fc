"""Programs an autograd fuzzer found to differ from PyTorch around hooks, retain_grad, in-place layout
changes (t_, transpose_, squeeze_, unsqueeze_) and views whose base was written: each runs in both
libraries (float64) and must give the same values: the gradients, what hooks saw (and in which order),
or the same refusal."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _plain(value):
    """Tensors as nested lists, None kept, lists and tuples walked (hooks' records are tuples)."""
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return round(value, 10)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return np.round(np.asarray(value.tolist(), dtype=np.float64), 10).tolist()


def _outcome(program, lib):
    try:
        return _plain(program(lib))
    except RuntimeError as exc:  # downslope's StateError is a RuntimeError, as torch's
        return ("error", type(exc).__name__ == "RuntimeError" or "StateError" in type(exc).__name__)


def _same(program) -> None:
    assert _outcome(program, ds) == _outcome(program, torch)


def _leaf(lib, values):
    return lib.tensor(values, dtype=lib.float64, requires_grad=True)


def _weights(lib, *shape):
    n = int(np.prod(shape))
    return (lib.arange(n, dtype=lib.float64) + 1).reshape(*shape)


# ---------------------------------------------------------------- kept gradients and the next backward
def _retained_grad_kept(lib):
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.retain_grad()
    (h * 3).sum().backward(retain_graph=True)
    kept = h.grad
    (h * 5).sum().backward()
    return kept, h.grad


def _leaf_hook_kept(lib):
    x = _leaf(lib, [1.0, 2.0])
    kept = []
    x.register_hook(kept.append)
    (x * 3).sum().backward()
    (x * 5).sum().backward()
    return *kept, x.grad


def _retained_and_hooked_kept(lib):
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.retain_grad()
    kept = []
    h.register_hook(kept.append)
    (h * 3).sum().backward(retain_graph=True)
    (h * 5).sum().backward()
    return *kept, h.grad


def _leaf_grad_kept(lib):  # a leaf's .grad is accumulated in place, in torch too
    x = _leaf(lib, [1.0, 2.0])
    (x * 3).sum().backward()
    kept = x.grad
    (x * 5).sum().backward()
    return kept, x.grad


def _retained_grad_kept_over_autograd_grad(lib):
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.retain_grad()
    y = (h * h).sum()
    lib.autograd.grad(y, x, retain_graph=True)
    kept = h.grad
    lib.autograd.grad(y, x)
    return kept, h.grad


@pytest.mark.parametrize(
    "program",
    [
        _retained_grad_kept,
        _leaf_hook_kept,
        _retained_and_hooked_kept,
        _leaf_grad_kept,
        _retained_grad_kept_over_autograd_grad,
    ],
)
def test_a_kept_gradient_is_changed_by_the_next_backward_only_where_torchs_is(program) -> None:
    _same(program)


# ---------------------------------------------------------------- retain_grad and in-place layout changes
def _retain_then_t_(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    h.retain_grad()
    h.t_()
    (h * _weights(lib, 3, 2)).sum().backward()
    return h.grad, x.grad


def _retain_then_unsqueeze_(lib):
    x = _leaf(lib, [1.0, 2.0, 3.0])
    h = x * 1
    h.retain_grad()
    h.unsqueeze_(0)
    (h * _weights(lib, 1, 3)).sum().backward()
    return h.grad, x.grad


def _retain_mul_then_t_t_(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    h.retain_grad()
    h.mul_(2)
    h.t_()
    h.t_()
    h.retain_grad()  # already retained: no second hook
    (h * _weights(lib, 2, 3)).sum().backward(retain_graph=True)
    (h * _weights(lib, 2, 3)).sum().backward()
    return h.grad, x.grad, h.retains_grad


def _t_then_retain(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    h.t_()
    h.retain_grad()
    (h * _weights(lib, 3, 2)).sum().backward()
    return h.grad, x.grad


@pytest.mark.parametrize("program", [_retain_then_t_, _retain_then_unsqueeze_, _retain_mul_then_t_t_, _t_then_retain])
def test_retain_grad_before_a_layout_change_keeps_the_old_layouts_gradient(program) -> None:
    _same(program)


# ---------------------------------------------------------------- autograd.grad and the input's own hooks
def _grad_of_hooked_input_beyond_which_another_lies(lib):
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g * 10)
    return lib.autograd.grad((h * h).sum(), [h, x])


def _grad_of_hooked_input_alone(lib):
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g * 10)
    return lib.autograd.grad((h * h).sum(), [h])


def _grad_of_input_whose_hook_writes_in_place(lib):
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g.mul_(10))
    return lib.autograd.grad((h * h).sum(), [h, x])


def _backward_inputs_hooked(lib):  # backward(inputs=) fills .grad after the hooks, in torch too
    x = _leaf(lib, [1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g * 10)
    (h * h).sum().backward(inputs=[h, x])
    return h.grad, x.grad


@pytest.mark.parametrize(
    "program",
    [
        _grad_of_hooked_input_beyond_which_another_lies,
        _grad_of_hooked_input_alone,
        _grad_of_input_whose_hook_writes_in_place,
        _backward_inputs_hooked,
    ],
)
def test_autograd_grad_captures_an_input_before_or_after_its_hooks_as_torch(program) -> None:
    _same(program)


# ---------------------------------------------------------------- hooks around a layout change
def _hooks_around_transpose_(lib):
    x = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    seen = []
    h.register_hook(lambda g: seen.append(("before", g.tolist())) or g * 2)
    h.transpose_(0, 1)
    h.register_hook(lambda g: seen.append(("after", g.tolist())) or g * 3)
    (h * _weights(lib, 2, 2)).sum().backward()
    return seen, x.grad


def _hooks_around_unsqueeze_and_t_(lib):
    x = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    seen = []
    h.register_hook(lambda g: seen.append(("a", g.tolist())))
    h.unsqueeze_(0)
    h.register_hook(lambda g: seen.append(("b", g.tolist())))
    h.squeeze_(0)
    h.t_()
    h.register_hook(lambda g: seen.append(("c", g.tolist())))
    (h * _weights(lib, 2, 2)).sum().backward()
    return seen, x.grad


def _hook_only_after_transpose_(lib):
    x = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    seen = []
    h.transpose_(0, 1)
    h.register_hook(lambda g: seen.append(("b", g.tolist())))
    h.t_()
    h.register_hook(lambda g: seen.append(("c", g.tolist())))
    (h * _weights(lib, 2, 2)).sum().backward()
    return seen, x.grad


def _hooks_around_t_then_mul_(lib):
    x = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    seen = []
    h.register_hook(lambda g: seen.append(("a", g.tolist())))
    h.t_()
    h.mul_(2)  # an ordinary in-place op: later hooks go on the new history
    h.register_hook(lambda g: seen.append(("b", g.tolist())))
    (h * _weights(lib, 2, 2)).sum().backward()
    return seen, x.grad


@pytest.mark.parametrize(
    "program",
    [_hooks_around_transpose_, _hooks_around_unsqueeze_and_t_, _hook_only_after_transpose_, _hooks_around_t_then_mul_],
)
def test_hooks_registered_around_a_layout_change_run_in_torchs_order_and_layout(program) -> None:
    _same(program)


# ---------------------------------------------------------------- views of views after a write to their base
def _view_of_view_taken_after_the_write(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    v = h[0]
    h.mul_(2)
    vv = v[1:]
    return lib.autograd.grad((vv * 3).sum() + (v * 7).sum(), [v, vv, x], allow_unused=True)


def _view_of_view_taken_before_the_write(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    v = h[0]
    vv = v[1:]
    h.mul_(2)
    return lib.autograd.grad((vv * 3).sum(), [v, vv, x], allow_unused=True)


def _three_levels_and_two_writes(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0, 4.0], [4.0, 5.0, 6.0, 7.0]])
    h = x * 1
    v = h[0]
    vv = v[1:]
    h.mul_(2)
    vvv = vv[1:]
    h.add_(1)
    w = v[2:]
    y = (vvv * 3).sum() + (v * 5).sum() + (w * w).sum()
    return lib.autograd.grad(y, [v, vv, vvv, w, x], allow_unused=True)


def _view_of_view_as_the_output(lib):
    x = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    v = h[0]
    h.mul_(2)
    vv = v[1:]
    return lib.autograd.grad(vv, [v, vv, x], grad_outputs=lib.ones(1, dtype=lib.float64), allow_unused=True)


def _backward_inputs_a_view_of_a_written_base(lib):
    x = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    v = h[0]
    h.mul_(2)
    (v * 3).sum().backward(inputs=[v, x])
    return v.grad, x.grad


@pytest.mark.parametrize(
    "program",
    [
        _view_of_view_taken_after_the_write,
        _view_of_view_taken_before_the_write,
        _three_levels_and_two_writes,
        _view_of_view_as_the_output,
        _backward_inputs_a_view_of_a_written_base,
    ],
)
def test_autograd_grad_of_views_of_a_written_base_matches_torch(program) -> None:
    _same(program)


# ---------------------------------------------------------------- writes through views taken before a layout change
def _row_written_after_squeeze_(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0]])
    h = x * 1
    v = h[0]
    h.squeeze_(0)
    v.mul_(2)
    (h * _weights(lib, 3)).sum().backward()
    return x.grad, h


def _row_written_twice_after_t_(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    v = h[0]
    h.t_()
    v.mul_(2)
    v.add_(x[1])
    ((h * _weights(lib, 3, 2)).sum() + (v * v).sum()).backward()
    return x.grad, h, v


def _column_written_after_t_and_unsqueeze_(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    v = h[:, 1]
    h.t_()
    h.unsqueeze_(0)
    v.mul_(3)
    ((h * _weights(lib, 1, 3, 2)).sum() + v.sum()).backward()
    return x.grad, h


def _reshaped_and_transposed_views_written_after_t_(lib):
    x = _leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    r = h.view(3, 2)
    p = h.t()
    h.t_()
    r.mul_(2)
    p.add_(1)
    ((h * _weights(lib, 3, 2)).sum() + (r * _weights(lib, 3, 2)).sum() + (p * p).sum()).backward()
    return x.grad, h, r, p


@pytest.mark.parametrize(
    "program",
    [
        _row_written_after_squeeze_,
        _row_written_twice_after_t_,
        _column_written_after_t_and_unsqueeze_,
        _reshaped_and_transposed_views_written_after_t_,
    ],
)
def test_a_write_through_a_view_taken_before_its_bases_layout_change_matches_torch(program) -> None:
    assert _outcome(program, torch)[0] != "error"
    _same(program)
