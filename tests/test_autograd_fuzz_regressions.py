"""Autograd programs with in-place ops, views, plain buffers and retained gradients that a random
program generator found to differ from PyTorch: each runs in both libraries (float64) and must give
the same gradients, or be refused by both (never a silently wrong gradient)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _host(t):
    return np.asarray(t.tolist(), dtype=np.float64)


def _outcome(program, lib):
    """The program's result as plain data, or the class of error it raised."""
    try:
        out = program(lib)
    except RuntimeError as exc:  # downslope's StateError is a RuntimeError, as torch's
        return ("error", "modified by an inplace" in str(exc), "single memory location" in str(exc))
    return tuple(None if t is None else np.round(_host(t), 10).tolist() for t in out)


def _same(program) -> None:
    theirs = _outcome(program, torch)
    ours = _outcome(program, ds)
    assert ours == theirs


def _leaf(lib, values):
    return lib.tensor(values, dtype=lib.float64, requires_grad=True)


# ---------------------------------------------------------------- a write under no_grad, then a recorded one
def _exp_then_no_grad_add(lib):
    a, c = _leaf(lib, [0.5, -1.0]), _leaf(lib, [1.5, 2.0])
    y = a.exp()
    with lib.no_grad():
        y.add_(1.0)  # invisible to autograd: exp's saved output changed
    y.mul_(c)  # recorded, and reads the old y (for c's gradient)
    y.sum().backward()
    return a.grad, c.grad


def _exp_then_no_grad_item_write(lib):
    a, c = _leaf(lib, [0.5, -1.0]), _leaf(lib, [1.5, 2.0])
    y = a.exp()
    with lib.no_grad():
        y[0] += 1
    y.mul_(c)
    y.sum().backward()
    return a.grad, c.grad


def _hypot_then_no_grad_add(lib):
    a, c = _leaf(lib, [0.5, -1.0]), _leaf(lib, [1.5, 2.0])
    y = lib.hypot(a, c)
    with lib.no_grad():
        y.add_(1.0)
    y.mul_(c)
    y.sum().backward()
    return a.grad, c.grad


@pytest.mark.parametrize("program", [_exp_then_no_grad_add, _exp_then_no_grad_item_write, _hypot_then_no_grad_add])
def test_a_saved_value_written_under_no_grad_before_a_recorded_in_place_op_is_refused(program) -> None:
    assert _outcome(program, torch)[0] == "error"
    _same(program)


def test_a_dividend_written_after_the_division_is_refused_when_the_divisor_needs_its_gradient() -> None:
    def program(lib):
        a = lib.tensor([0.5, -1.0], dtype=lib.float64)
        b = _leaf(lib, [1.5, 2.0])
        y = a / b
        a.add_(1.0)  # the divisor's gradient reads the dividend
        y.sum().backward()
        return (b.grad,)

    assert _outcome(program, torch)[0] == "error"
    _same(program)


# ---------------------------------------------------------------- saved inputs whose gradient is not needed
def _hypot_constant_written(lib):
    a1 = _leaf(lib, [[-0.6]])
    b2 = lib.zeros((1, 2), dtype=lib.float64)
    v4 = lib.hypot(b2, a1 + 0.1)  # b2's values: only for b2's gradient, which is not needed
    b2.masked_fill_(lib.tensor([[True, False]]), 0.0)
    (v4 * lib.tensor([[-0.3, -0.1]], dtype=lib.float64)).sum().backward()
    return (a1.grad,)


def _hypot_constant_second_written(lib):
    a = _leaf(lib, [0.5, -2.0])
    b = lib.tensor([1.0, 3.0], dtype=lib.float64)
    y = lib.hypot(a, b)
    b.mul_(2.0)
    y.sum().backward()
    return (a.grad,)


def _cumsum_input_written(lib):
    a = _leaf(lib, [[0.5, -1.0, 2.0]])
    b = a * 1.0
    y = b.cumsum(-1)  # reads only the gradient
    with lib.no_grad():
        b.clamp_(-0.3, 0.4)
    (y * lib.tensor([[1.0, 2.0, 3.0]], dtype=lib.float64)).sum().backward()
    return (a.grad,)


def _copysign_sign_written(lib):
    a = _leaf(lib, [0.5, -1.0])
    b = lib.tensor([-1.0, 2.0], dtype=lib.float64)
    y = lib.copysign(a, b)  # b's gradient is zeros: its values are never read
    b.add_(1.0)
    y.sum().backward()
    return (a.grad,)


def _matmul_weight_needed_input_constant_written(lib):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)
    w = _leaf(lib, [[0.5], [-1.0]])
    y = x @ w  # w's gradient reads x: refused
    x.add_(1.0)
    y.sum().backward()
    return (w.grad,)


def _mul_constant_written(lib):
    a = _leaf(lib, [0.5, -1.0])
    b = lib.tensor([2.0, 3.0], dtype=lib.float64)
    y = a * b  # a's gradient reads b: refused
    b.add_(1.0)
    y.sum().backward()
    return (a.grad,)


@pytest.mark.parametrize(
    "program",
    [
        _hypot_constant_written,
        _hypot_constant_second_written,
        _cumsum_input_written,
        _copysign_sign_written,
        _matmul_weight_needed_input_constant_written,
        _mul_constant_written,
    ],
)
def test_writing_an_input_is_refused_only_when_the_needed_gradients_read_it(program) -> None:
    _same(program)


@pytest.mark.parametrize("name", ["atan2", "pow", "maximum", "minimum", "div", "xlogy"])
def test_rules_that_read_both_inputs_refuse_a_write_to_the_constant_one(name) -> None:
    def program(lib):
        a = _leaf(lib, [0.5, 1.5])
        b = lib.tensor([1.0, 2.0], dtype=lib.float64)
        y = getattr(lib, name)(a, b)
        b.add_(1.0)
        y.sum().backward()
        return (a.grad,)

    assert _outcome(program, torch)[0] == "error"
    _same(program)


def test_logaddexp_reads_each_input_for_its_own_gradient_only() -> None:
    # torch's rule reads both inputs (it refuses); downslope's reads a and the output: the gradient is right
    a = ds.tensor([0.5, -1.0], dtype=ds.float64, requires_grad=True)
    b = ds.tensor([1.0, 2.0], dtype=ds.float64)
    y = ds.logaddexp(a, b)
    expected = np.exp(np.array([0.5, -1.0]) - np.logaddexp([0.5, -1.0], [1.0, 2.0]))
    b.add_(1.0)
    y.sum().backward()
    np.testing.assert_allclose(a.grad.tolist(), expected, rtol=1e-12)


# ---------------------------------------------------------------- in-place on fresh outputs outside the graph
def _index_select_then_iadd(lib):
    a1 = _leaf(lib, [[0.5, -1.0, 2.0], [1.0, 2.0, 3.0]])
    b2 = lib.zeros_like(a1)
    v3 = lib.index_select(b2, 1, lib.tensor([2, 0, 1]))  # a fresh tensor (a NumPy view of a temporary)
    v3 += a1
    (v3 * lib.tensor([[1.0, 2, 3], [4, 5, 6]], dtype=lib.float64)).sum().backward()
    return a1.grad, v3


def _softplus_then_fill(lib):
    x = lib.tensor(1.5, dtype=lib.float64, requires_grad=True)
    y = lib.nn.functional.softplus(lib.zeros((2, 3), dtype=lib.float64).unsqueeze(-1)).fill_(x)
    (y * lib.arange(6, dtype=lib.float64).reshape(2, 3, 1)).sum().backward()
    return x.grad, y


@pytest.mark.parametrize("program", [_index_select_then_iadd, _softplus_then_fill])
def test_a_recorded_in_place_op_on_a_fresh_op_output_runs(program) -> None:
    assert _outcome(program, torch)[0] != "error"
    _same(program)


def test_a_view_of_a_buffer_outside_the_graph_still_takes_the_view_path() -> None:
    def program(lib):
        w = _leaf(lib, [1.0, 2.0])
        buf = lib.zeros(2, 2, dtype=lib.float64)
        buf[0].mul_(0.0).add_(w)  # written through a view: the buffer records it
        (buf * lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)).sum().backward()
        return w.grad, buf

    _same(program)


# ---------------------------------------------------------------- overlapping operands
def _full_alias_add(lib):
    b = lib.zeros(3, dtype=lib.float64)
    v = b.detach().requires_grad_()  # the same memory as b
    b.add_(v)
    (b * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
    return v.grad, b


def _row_plus_same_elements(lib):
    a = _leaf(lib, [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    v3 = a * 2
    v3[0] += v3.reshape(-1)[:4]  # exactly the row's elements: a full overlap
    (v3 * lib.arange(8, dtype=lib.float64).reshape(2, 4)).sum().backward()
    return a.grad, v3


def _partial_recorded(lib):
    a = _leaf(lib, [1.0] * 8)
    c = a * 1
    c[:4].add_(c[1:5])
    return (c,)


def _partial_plain(lib):
    c = lib.arange(8, dtype=lib.float64)
    c[:4].add_(c[1:5])
    return (c,)


def _same_range_other_strides(lib):
    c = lib.arange(4, dtype=lib.float64).view(2, 2)
    c.add_(c.t())
    return (c,)


def _strided_partial_is_not_checked(lib):
    c = lib.arange(24, dtype=lib.float64).reshape(2, 3, 4)
    c[:, :, 0].add_(c[:, :, 1])  # neither is dense: torch does not tell (and NumPy reads a copy)
    return (c,)


def _scatter_into_itself(lib):
    b = lib.zeros(1, 3, dtype=lib.float64).fill_(0.25)
    b.scatter_(0, lib.zeros(1, 3, dtype=lib.long), b)
    return (b,)


def _scatter_into_itself_recorded(lib):
    b = _leaf(lib, [[0.25, 0.5, 1.0]]) * 1
    b.scatter_(0, lib.zeros(1, 3, dtype=lib.long), b)
    return (b,)


def _index_add_of_own_slice(lib):
    c = lib.arange(8, dtype=lib.float64)
    c.index_add_(0, lib.tensor([0, 1]), c[:2])
    return (c,)


@pytest.mark.parametrize(
    "program",
    [
        _full_alias_add,
        _row_plus_same_elements,
        _partial_recorded,
        _partial_plain,
        _same_range_other_strides,
        _strided_partial_is_not_checked,
        _scatter_into_itself,
        _scatter_into_itself_recorded,
        _index_add_of_own_slice,
    ],
)
def test_operands_overlapping_the_written_tensor_follow_torchs_rule(program) -> None:
    _same(program)


def test_a_partial_overlap_is_refused_with_torchs_words() -> None:
    c = ds.arange(8, dtype=ds.float64)
    with pytest.raises(ds.errors.StateError, match="add_: unsupported operation: some elements of the input tensor"):
        c[:4].add_(c[1:5])
    assert c.tolist() == list(range(8))  # refused before writing


def test_an_operand_over_the_same_memory_gives_the_right_gradient() -> None:
    # torch refuses the backward (mul saved the operand, which the write changed); downslope's rule reads
    # a copy of the operand taken before the write: y = (2a) * (2a) = 4a^2
    a = ds.tensor([1.0, 2.0, 3.0], dtype=ds.float64, requires_grad=True)
    y = a * 2
    y.mul_(y.view(3))
    y.sum().backward()
    np.testing.assert_allclose(a.grad.tolist(), [8.0, 16.0, 24.0])


# ---------------------------------------------------------------- reductions with values and indices
@pytest.mark.parametrize(
    ("name", "args"),
    [("max", (1,)), ("min", (1,)), ("median", (1,)), ("nanmedian", (1,)), ("mode", (1,)), ("kthvalue", (2, 1))],
)
def test_a_reductions_values_are_no_views(name, args) -> None:
    def program(lib):
        a = _leaf(lib, [[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
        kept = getattr(a, name)(*args).values
        assert kept._base is None
        values = getattr(a, name)(*args).values
        values.mul_(3.0)  # written as it is (no base to write through)
        (values * lib.tensor([1.0, 2.0], dtype=lib.float64)).sum().backward()
        detached = getattr(a, name)(*args).values
        detached.detach_()
        return a.grad, detached

    _same(program)


def test_a_squeezed_keepdim_result_the_caller_holds_is_still_a_view() -> None:
    for lib in (torch, ds):
        a = _leaf(lib, [[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
        m = a.max(1, keepdim=True).values
        with pytest.raises(RuntimeError, match="Can't detach views in-place"):
            m.squeeze(1).detach_()


# ---------------------------------------------------------------- retained gradients in autograd.grad
def _grad_fills_retained(lib):
    a = _leaf(lib, [1.0, 2.0])
    v = a * a
    v.retain_grad()
    loss = (v * 0.3).tanh().sum()
    (g,) = lib.autograd.grad(loss, [a], create_graph=True)
    first = v.grad.detach().clone()
    has_history = v.grad.grad_fn is not None
    (g * g).sum().backward()  # adds to the retained gradient
    return first, v.grad, a.grad, lib.tensor(float(has_history))


def _grad_fills_only_on_the_way(lib):
    a = _leaf(lib, [1.0, 2.0])
    w = a * 1
    w.retain_grad()
    v = w * 2
    v.retain_grad()
    z = v * 5
    z.retain_grad()
    other = a * 3
    other.retain_grad()
    lib.autograd.grad((z + other).sum(), [v])
    return w.grad, v.grad, z.grad, other.grad, a.grad


@pytest.mark.parametrize("program", [_grad_fills_retained, _grad_fills_only_on_the_way])
def test_autograd_grad_fills_retained_gradients_as_torch(program) -> None:
    _same(program)


# ---------------------------------------------------------------- torch's refusals
def _copy_leaf_into_itself(lib):
    a = _leaf(lib, [1.0, 2.0])
    a.copy_(a)
    return (a,)


def _copy_view_of_leaf_into_itself(lib):
    a = _leaf(lib, [1.0, 2.0])
    v = a[0:1]
    v.copy_(v)
    return (a,)


def _copy_leaf_into_itself_under_no_grad(lib):
    a = _leaf(lib, [1.0, 2.0])
    with lib.no_grad():
        a.copy_(a)
    return (a,)


def _detach_plain_view(lib):
    b = lib.ones(3, dtype=lib.float64)
    v = b[0:2]
    v.detach_()
    return (v,)


def _detach_view_taken_under_no_grad(lib):
    a = _leaf(lib, [1.0, 2.0, 3.0])
    with lib.no_grad():
        v = a[0:2]
    v.detach_()
    return (v,)


def _multi_view_output_written(lib):
    a = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    p, _ = (a * 2).split(1)
    p.mul_(2.0)
    return (p,)


@pytest.mark.parametrize(
    "program",
    [
        _copy_leaf_into_itself,
        _copy_view_of_leaf_into_itself,
        _copy_leaf_into_itself_under_no_grad,
        _detach_plain_view,
        _detach_view_taken_under_no_grad,
        _multi_view_output_written,
    ],
)
def test_torchs_refusals_are_kept(program) -> None:
    _same(program)


def test_strided_operands_sharing_elements_with_the_written_tensor_are_refused() -> None:
    # torch does not check strided (non-dense) operands, and its result then depends on the order its
    # kernel writes in; downslope refuses when elements are really shared (never a different result)
    c = ds.arange(24, dtype=ds.float64).reshape(2, 3, 4)
    with pytest.raises(ds.errors.StateError, match="single memory location"):
        c[:, :, :2].add_(c[:, :, 1:3])
    c[:, :, 0].add_(c[:, :, 1])  # no element in common: fine
    assert c[0, 0].tolist() == [1.0, 1.0, 2.0, 3.0]
