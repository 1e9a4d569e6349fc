"""In-place ops (``+=``, ``add_``, ``zero_``, ``t[i] = v`` ...): they write into the tensor's own array,
bump its version counter, follow PyTorch's rules on gradients, and are compared with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _pair(shape=(3, 4), requires_grad=False, dtype=np.float64, positive=False):
    a = RNG.standard_normal(shape).astype(dtype)
    if positive:
        a = np.abs(a) + 0.5
    return ds.tensor(a, dtype=a.dtype, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


# ---------------------------------------------------------------------- values, identity, versions
B = RNG.standard_normal((3, 4))
M = RNG.standard_normal((3, 4)) > 0


def _T(lib, a):  # noqa: N802  (an operand in float64 for both libraries)
    return lib.tensor(a, dtype=lib.float64)


CASES = {
    "add_": (lambda t, m: t.add_(_T(m, B)), False),
    "add_alpha": (lambda t, m: t.add_(_T(m, B), alpha=-0.5), False),
    "sub_": (lambda t, m: t.sub_(_T(m, B), alpha=2), False),
    "mul_": (lambda t, m: t.mul_(_T(m, B)), False),
    "mul_scalar": (lambda t, m: t.mul_(3.0), False),
    "div_": (lambda t, m: t.div_(_T(m, B)), False),
    "pow_": (lambda t, m: t.pow_(2), True),
    "neg_": (lambda t, m: t.neg_(), False),
    "abs_": (lambda t, m: t.abs_(), False),
    "exp_": (lambda t, m: t.exp_(), False),
    "log_": (lambda t, m: t.log_(), True),
    "sqrt_": (lambda t, m: t.sqrt_(), True),
    "sin_": (lambda t, m: t.sin_(), False),
    "cos_": (lambda t, m: t.cos_(), False),
    "tanh_": (lambda t, m: t.tanh_(), False),
    "sigmoid_": (lambda t, m: t.sigmoid_(), False),
    "relu_": (lambda t, m: t.relu_(), False),
    "clamp_": (lambda t, m: t.clamp_(-0.3, 0.4), False),
    "clamp_min": (lambda t, m: t.clamp_(min=0.1), False),
    "clip_": (lambda t, m: t.clip_(max=0.2), False),
    "zero_": (lambda t, m: t.zero_(), False),
    "fill_": (lambda t, m: t.fill_(2.5), False),
    "copy_": (lambda t, m: t.copy_(_T(m, B[0])), False),
    "masked_fill_": (lambda t, m: t.masked_fill_(m.tensor(M), -1.0), False),
    "addcmul_": (lambda t, m: t.addcmul_(_T(m, B), _T(m, B), value=0.5), False),
    "addcdiv_": (lambda t, m: t.addcdiv_(_T(m, B), _T(m, B) + 3, value=2), False),
    "lerp_": (lambda t, m: t.lerp_(_T(m, B), 0.25), False),
    "iadd": (lambda t, m: t.__iadd__(_T(m, B)), False),
    "isub": (lambda t, m: t.__isub__(1.5), False),
    "imul": (lambda t, m: t.__imul__(_T(m, B)), False),
    "itruediv": (lambda t, m: t.__itruediv__(4.0), False),
    "ipow": (lambda t, m: t.__ipow__(3), False),
    "setitem": (lambda t, m: t.__setitem__((slice(None), 1), 7.0) or t, False),
    "floor_": (lambda t, m: t.floor_(), False),
    "ceil_": (lambda t, m: t.ceil_(), False),
    "round_": (lambda t, m: t.round_(), False),
    "trunc_": (lambda t, m: t.trunc_(), False),
    "sign_": (lambda t, m: t.sign_(), False),
    "reciprocal_": (lambda t, m: t.reciprocal_(), True),
    "square_": (lambda t, m: t.square_(), False),
    "scatter_": (lambda t, m: t.scatter_(1, m.tensor([[2], [0], [3]]), 5.0), False),
    "scatter_src": (lambda t, m: t.scatter_(0, m.tensor([[2, 0, 1, 1]]), _T(m, B)), False),
    "scatter_add_": (lambda t, m: t.scatter_add_(1, m.tensor([[1, 1], [0, 3], [2, 2]]), _T(m, B)), False),
    "index_fill_": (lambda t, m: t.index_fill_(1, m.tensor([0, 2]), -3.0), False),
    "tan_": (lambda t, m: t.tan_(), False),
    "atan2_": (lambda t, m: t.atan2_(_T(m, B)), False),
    "clamp_min_": (lambda t, m: t.clamp_min_(0.2), False),
    "eq_": (lambda t, m: t.ge_(0.0), False),
    "logical_not_": (lambda t, m: t.logical_not_(), False),
    "index_add_": (lambda t, m: t.index_add_(0, m.tensor([2, 0, 2]), _T(m, B)), False),
    "subtract_": (lambda t, m: t.subtract_(_T(m, B)), False),
    "nan_to_num_": (lambda t, m: t.nan_to_num_(posinf=3.0), False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_in_place_op_writes_into_the_same_array_and_matches_torch(name):
    fn, positive = CASES[name]
    ours, theirs = _pair(positive=positive)
    array_before = ours.array
    out = fn(ours, ds)
    ref = fn(theirs, torch)
    assert out is ours or name == "setitem"
    assert ours.array is array_before  # written in place, not rebound
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)
    if ref is not None and name != "setitem":
        assert ref is theirs
    assert ours._version == theirs._version == 1


def test_augmented_assignment_keeps_the_object_and_the_optimizer_buffer():
    # Manual SGD as in PyTorch's tutorials: the parameter must change in place (it used to be rebound).
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)  # parameters become views into its flat buffer
    w = model.weight
    flat = opt._buckets[0][0].flat if hasattr(opt, "_buckets") else None
    before = w.detach().numpy().copy()
    model(ds.ones(4, 3)).sum().backward()
    with ds.no_grad():
        w -= 0.1 * w.grad
    assert model.weight is w
    np.testing.assert_allclose(w.detach().numpy(), before - 0.1 * w.grad.numpy(), rtol=1e-6)
    if flat is not None:
        assert np.shares_memory(w.array, flat)
    w.data.mul_(0.0)  # p.data.<op>_ writes through too
    assert not w.detach().numpy().any()


def test_manual_sgd_loop_matches_torch():
    # PyTorch's "polynomial fit with tensors and autograd" tutorial, shortened.
    xs = np.linspace(-np.pi, np.pi, 200)
    ys = np.sin(xs)
    init = np.array([0.1, -0.2, 0.3, -0.05])
    results = []
    for lib in (ds, torch):
        x, y = lib.tensor(xs), lib.tensor(ys)
        if lib is ds:
            x, y = ds.tensor(xs, dtype="float64"), ds.tensor(ys, dtype="float64")
        a, b, c, d = (lib.tensor(v, requires_grad=True, dtype=lib.float64) for v in init)
        for _ in range(50):
            loss = (a + b * x + c * x**2 + d * x**3 - y).pow(2).sum()
            loss.backward()
            with lib.no_grad():
                for p in (a, b, c, d):
                    p -= 1e-6 * p.grad
                    p.grad = None
        results.append([p.item() for p in (a, b, c, d)] + [loss.item()])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10)


# ---------------------------------------------------------------------- refusals
def test_leaf_that_requires_grad_is_refused_outside_no_grad_as_in_torch():
    ours, theirs = _pair(requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        theirs.add_(1)
    for op in (lambda t: t.add_(1), lambda t: t.zero_(), lambda t: t.__isub__(1.0), lambda t: t.normal_()):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            op(ours)
    assert ours._version == 0
    with ds.no_grad():
        ours.add_(1)  # allowed under no_grad
    assert ours._version == 1


def test_dtype_that_cannot_hold_the_result_is_refused_as_in_torch():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        torch.tensor([1, 2]).mul_(0.5)
    t = ds.tensor([1, 2])
    with pytest.raises(TypeError, match="result type float32 can't be cast to the desired output type int64"):
        t.mul_(0.5)  # torch's result type (Float), not NumPy's float64
    with pytest.raises(TypeError, match="can't be cast"):
        t.sqrt_()
    t += 3  # integers stay integers
    assert t.tolist() == [4, 5] and t.dtype == np.int64


def test_shape_change_and_broadcast_views_are_refused():
    with pytest.raises(ds.ShapeError, match="cannot change the shape"):
        ds.zeros(3).add_(ds.ones(2, 3))
    e = ds.zeros(1).expand(3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e.add_(1)
    with pytest.raises(RuntimeError, match="more than one element"):
        torch.zeros(1).expand(3).add_(1)


def test_view_of_a_leaf_that_requires_grad_is_refused():
    x = ds.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place"):
        x[0:2].add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        torch.zeros(3, requires_grad=True)[0:2].add_(1)


# ---------------------------------------------------------------------- gradients through in-place ops
def _grads(lib, fn, arrays):
    ts = [lib.tensor(a, requires_grad=True) for a in arrays]
    if lib is ds:
        ts = [ds.tensor(a, dtype=a.dtype, requires_grad=True) for a in arrays]
    out = fn(lib, *ts)
    out.backward()
    return [out.item()] + [t.grad.numpy() if t.grad is not None else None for t in ts]


GRAPH_CASES = {
    "add_mul_chain": lambda lib, x, w: ((y := x * 2).add_(w).mul_(3) * y).sum(),
    "mul_by_tensor": lambda lib, x, w: (x.clone().mul_(w) ** 2).sum() if lib is torch else ((x * 1).mul_(w) ** 2).sum(),
    "relu_after_linear": lambda lib, x, w: ((x * w).relu_() * x).sum(),
    "add_sigmoid_": lambda lib, x, w: (x * w).add_(1).sigmoid_().sum(),
    "exp_after_mul_": lambda lib, x, w: (x * 1).mul_(w).exp_().sum(),
    "clamp_": lambda lib, x, w: ((x + w).clamp_(-0.5, 0.5) * w).sum(),
    "masked_fill_": lambda lib, x, w: (x * w).masked_fill_(x > 0, 0.0).sum(),
    "div_pow": lambda lib, x, w: ((x * 1).div_(w.abs() + 1).pow_(2)).sum(),
    "setitem_value_requires_grad": lambda lib, x, w: _rnn_like(lib, x, w),
    "residual_iadd": lambda lib, x, w: _residual(lib, x, w),
    "fill_graph_tensor": lambda lib, x, w: ((y := x * w).fill_(2.0) * w + y).sum(),
    "copy_from_graph": lambda lib, x, w: (lib.zeros(3, 4, dtype=lib.float64).copy_(x * w) * x).sum(),
    "generic_in_place_forms": lambda lib, x, w: ((x * 1).atan2_(w).add_(1) * x).sum() + (x * w).hypot_(x).sum(),
    "augmented_index_assignment": lambda lib, x, w: _augmented_index(lib, x, w),
    "view_mul_by_tensor": lambda lib, x, w: _view_in_place(lib, x, w),
    "operand_is_self": lambda lib, x, w: ((y := x * w).add_(y).mul_(2) * x).sum(),
    "lerp_weight_tensor": lambda lib, x, w: ((x * 1).lerp_(w, x.sigmoid())).sum(),
    "scatter_into_buffer": lambda lib, x, w: (
        lib.zeros(3, 4, dtype=lib.float64).scatter_(1, lib.tensor([[1, 0], [3, 3], [2, 0]]), (x * w)[:, :2]) ** 2
    ).sum(),
    "scatter_add_graph": lambda lib, x, w: ((x * 1).scatter_add_(0, lib.tensor([[2, 0, 1, 1]]), w[:1]) * x).sum(),
    "index_fill_graph": lambda lib, x, w: ((x * w).index_fill_(1, lib.tensor([1, 3]), 0.5) * w).sum(),
}


def _augmented_index(lib, x, w):
    h = x * w
    h[0] += w[1]  # Python: t = h[0]; t += w[1]; h[0] = t
    h[:, 1:3] *= 2
    h[2] -= h[1] * 0.5
    return (h * h).sum()


def _view_in_place(lib, x, w):
    h = x * 1
    col = h[:, 2]
    col.mul_(w[0, 2])  # writes through to h
    h.t()[1].mul_(3)
    h.reshape(12)[3:5].add_(1)
    return (h * x).sum() + col.sum()


def _rnn_like(lib, x, w):
    # Outputs written into a preallocated buffer, one step at a time (tutorial RNN loops do this).
    out = lib.zeros(3, 4, dtype=lib.float64)
    h = x[0]
    for t in range(3):
        h = (h * w[t] + x[t]).tanh()
        out[t] = h
    return (out * out).sum()


def _residual(lib, x, w):
    out = x * w
    out += x  # ResNet's `out += identity`
    out = lib.relu(out) if lib is torch else out.relu_()
    return out.sum()


@pytest.mark.parametrize("name", list(GRAPH_CASES))
def test_gradients_through_in_place_ops_match_torch(name):
    arrays = [RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))]
    ours = _grads(ds, GRAPH_CASES[name], arrays)
    ref = _grads(torch, GRAPH_CASES[name], arrays)
    for a, b in zip(ours, ref):
        if b is None:
            assert a is None or not np.any(a)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_in_place_rebase_passes_gradcheck():
    def f(x, w):
        y = x * w
        y.add_(x).mul_(w)
        y[0] = y[1] * 2
        return y.relu_().sum()

    ds.gradcheck(f, (RNG.standard_normal((3, 4)) + 0.1, RNG.standard_normal((3, 4))))


# ---------------------------------------------------------------------- the version counter
def _version_error(lib, fn):
    x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        fn(lib, x).sum().backward()
    return str(info.value)


def _sigmoid_then_mul(lib, x):
    y = x.sigmoid()
    y.mul_(2)
    return y


def _exp_then_add(lib, x):
    y = x.exp()
    y += 1
    return y


def _saved_weight_changed_under_no_grad(lib, x):
    w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * w
    with lib.no_grad():
        w.add_(1)
    return y


def _saved_input_changed_through_detach(lib, x):
    y = x.sin()
    x.detach().zero_()  # detach shares the version counter (torch)
    return y


@pytest.mark.parametrize(
    "case", [_sigmoid_then_mul, _exp_then_add, _saved_weight_changed_under_no_grad, _saved_input_changed_through_detach]
)
def test_modified_saved_tensor_is_reported_at_backward_as_in_torch(case):
    ref = _version_error(torch, case)
    ours = _version_error(ds, case)
    pattern = "one of the variables needed for gradient computation has been modified by an inplace operation"
    assert pattern in ref and pattern in ours
    assert "is at version 1; expected version 0 instead" in ref
    assert "is at version 1; expected version 0 instead" in ours


def test_ops_that_do_not_need_the_old_values_allow_the_write_as_in_torch():
    for lib in (ds, torch):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 3  # mul by a constant keeps the constant, not x
        y.add_(1)
        z = y.exp_()  # exp's rule reads its output, which is current
        z.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(3 * np.array([0.5, -1.0, 2.0]) + 1), rtol=1e-6)


def test_consumer_recorded_before_a_write_keeps_the_history_it_used():
    # z used y before y.mul_(3): its gradient must flow through y's old history (x * 2), not through mul_.
    for lib in (ds, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        z = y + 1
        v = y[0] * 1  # a view taken before, then
        y.mul_(3)
        y[1] = 0.0  # two writes on top
        (z.sum() + v + y.sum()).backward()
        np.testing.assert_allclose(x.grad.numpy(), [2 + 2 + 6, 2])


def test_version_is_shared_by_views_and_detach_but_not_data():
    for lib in (ds, torch):
        x = lib.zeros(2, 3)
        v, d = x[0], x.detach()
        v.add_(1)
        assert (x._version, v._version, d._version) == (1, 1, 1)
        x.data.add_(1)
        assert x._version == 1
        d.mul_(2)
        assert x._version == 2
        assert x.numpy().tolist() == [[4.0] * 3, [2.0] * 3]
    with pytest.raises(AttributeError):
        ds.zeros(1)._version = 3  # read-only, as in torch


def test_seeded_initializers_fill_in_place():
    w = ds.zeros(4, 5)
    arr = w.array
    ds.manual_seed(3)
    w.data.normal_(0, 0.02)
    ds.manual_seed(3)
    ref = ds.randn(4, 5) * 0.02
    assert w.array is arr
    np.testing.assert_allclose(w.numpy(), ref.numpy(), rtol=1e-6)
    ds.manual_seed(4)
    w.uniform_(-2, 3)
    ds.manual_seed(4)
    np.testing.assert_allclose(w.numpy(), (ds.rand(4, 5) * 5 - 2).numpy(), rtol=1e-6)
    assert w.numpy().min() >= -2 and w.numpy().max() < 3


def test_operand_that_is_the_tensor_itself_uses_its_old_value():
    # torch refuses y.mul_(y) here (y is saved and modified); downslope keeps the old y and gets d(y^2)
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.mul_(y)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_in_place_op_without_gradient_on_a_graph_tensor_cuts_it_from_the_graph():
    x = ds.tensor([1.0, -2.0], requires_grad=True)
    y = x * 3
    z = y * x  # used before: keeps y's old history
    y.ge_(0)  # y now holds 1/0 and has no gradient (a step function)
    assert not y.requires_grad and y.tolist() == [1.0, 0.0]
    (z.sum() + (y * x).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.0, -2.0]) + [1.0, 0.0])


# ---------------------------------------------------------------------- never silently wrong
_OUT_OF_PLACE = ["mul", "add", "sigmoid", "tanh", "exp", "view", "scale", "buffer"]
_IN_PLACE = ["add_", "mul_", "mul_const", "sigmoid_", "tanh_", "exp_", "relu_", "clamp_", "zero_", "setitem", "copy_"]
_IN_PLACE += ["view_mul_", "index_iadd", "view_sigmoid_"]


def _random_program(seed, steps=8):
    rng = np.random.default_rng(seed)
    program = []
    pool_size = 2  # x and w
    for _ in range(steps):
        kind = rng.choice(_OUT_OF_PLACE + _IN_PLACE)
        i, j = (int(k) for k in rng.integers(0, pool_size, 2))
        program.append((str(kind), i, j))
        if kind in _OUT_OF_PLACE:
            pool_size += 1
    weights = rng.standard_normal(pool_size)
    return program, weights


def _run_program(lib, program, weights, x, w):
    pool = [x, w]
    for kind, i, j in program:
        a, b = pool[i], pool[j]
        if kind == "mul":
            pool.append(a * b)
        elif kind == "add":
            pool.append(a + b)
        elif kind == "sigmoid":
            pool.append(a.sigmoid())
        elif kind == "tanh":
            pool.append(a.tanh())
        elif kind == "exp":
            pool.append((a * 0.3).exp())
        elif kind == "view":
            pool.append(a.reshape(3, 1).reshape(3))
        elif kind == "scale":
            pool.append(a * 1.5)
        elif kind == "buffer":  # a plain tensor outside the graph, written into later
            pool.append(lib.ones(3, dtype=lib.float64) * 0.5 if lib is torch else ds.full((3,), 0.5, dtype="float64"))
        elif i < 2:
            continue  # in-place writes only on intermediate tensors (leaves would be refused, as in torch)
        elif kind == "add_":
            a.add_(b)
        elif kind == "mul_":
            a.mul_(b)
        elif kind == "mul_const":
            a.mul_(0.7)
        elif kind in ("sigmoid_", "tanh_", "relu_", "zero_"):
            getattr(a, kind)()
        elif kind == "exp_":
            a.mul_(0.3).exp_()
        elif kind == "clamp_":
            a.clamp_(-0.8, 0.9)
        elif kind == "setitem":
            a[1] = b[0] * 2
        elif kind == "copy_":
            a.copy_(b * 0.5)
        elif kind == "view_mul_":
            a[0:2].mul_(b[1:3])
        elif kind == "index_iadd":
            a[1] += b[0]
        elif kind == "view_sigmoid_":
            a.reshape(3, 1)[1:].sigmoid_()
    return sum(float(c) * p.sum() for c, p in zip(weights, pool))


def _torch_gradients(program, weights, x0, w0):
    x, w = (torch.tensor(a, requires_grad=True) for a in (x0, w0))
    try:
        _run_program(torch, program, weights, x, w).backward()
    except RuntimeError:
        return None
    return [np.zeros(3) if t.grad is None else t.grad.numpy() for t in (x, w)]


@pytest.mark.parametrize("block", range(4))
def test_random_programs_with_in_place_ops_are_right_or_refused(block):
    # Any program of in-place and ordinary ops either raises a clear error (at backward or at the
    # in-place op) or gives the gradient that finite differences give: never a silently wrong one.
    # Where PyTorch runs it too, the gradients agree; downslope rarely refuses what PyTorch runs.
    rng = np.random.default_rng(100 + block)
    ran = stricter = 0
    for seed in range(block * 60, block * 60 + 60):
        program, weights = _random_program(seed)
        x0, w0 = rng.uniform(0.2, 1.0, 3), rng.uniform(-1.0, -0.2, 3)
        x = ds.tensor(x0, dtype="float64", requires_grad=True)
        w = ds.tensor(w0, dtype="float64", requires_grad=True)
        reference = _torch_gradients(program, weights, x0, w0)
        try:
            _run_program(ds, program, weights, x, w).backward()
        except RuntimeError as exc:
            assert "inplace" in str(exc) or "in-place" in str(exc), str(exc)
            stricter += reference is not None
            continue
        ran += 1
        ours = [np.zeros(3) if t.grad is None else t.grad.numpy() for t in (x, w)]
        if reference is not None:
            for a, b in zip(ours, reference):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"program {seed}: {program}")

        def value(xa, wa, program=program, weights=weights):
            with ds.no_grad():
                xs, ws = ds.tensor(xa, dtype="float64"), ds.tensor(wa, dtype="float64")
                return float(_run_program(ds, program, weights, xs, ws))

        eps = 1e-6
        for k in range(3):
            step = np.eye(3)[k] * eps
            dx = (value(x0 + step, w0) - value(x0 - step, w0)) / (2 * eps)
            dw = (value(x0, w0 + step) - value(x0, w0 - step)) / (2 * eps)
            np.testing.assert_allclose([ours[0][k], ours[1][k]], [dx, dw], rtol=1e-5, atol=1e-6, err_msg=str(program))
    assert ran >= 15  # a good share runs (the test would pass vacuously if everything were refused)
    assert stricter <= 3


def test_view_used_after_a_write_to_its_base_sees_the_new_history_as_in_torch():
    for lib in (ds, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        v = y[0:2].reshape(2, 1)  # a view of a view, taken before the write
        s = v.sum()  # used before the write: the old values (2x)
        y.mul_(x)  # v now shows 2x * x
        (s + (v * 1).sum() + y.sum()).backward()
        np.testing.assert_allclose(x.grad.numpy(), [2 + 4 * 1 + 4 * 1, 2 + 4 * 2 + 4 * 2, 4 * 3])


def test_zero_d_results_of_numpy_arithmetic_can_be_written_in_place():
    # 0-d results hold NumPy scalars (read-only); the seq2seq tutorial's `loss = 0; loss += criterion(...)`
    for lib in (ds, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        loss = 0
        for k in range(3):
            loss += (x * (k + 1)).sum()
        loss.backward()
        np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    total = ds.tensor([1.0, 2.0]).sum()
    total += 1
    total.mul_(2)
    total[()] = total * 2
    assert total.item() == 16.0


def test_recorded_write_through_a_view_of_a_plain_buffer():
    # `buf[i] += w` on a buffer outside the graph works as in torch: Python writes the view back (buf[i] = view)
    for lib in (ds, torch):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        buf = lib.zeros(2, 3)
        buf[0] += w
        buf[1] += w * 2
        (buf * buf).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), 10 * np.array([1.0, 2.0, 3.0]))
    # values written through a view bring the buffer into the graph, as torch's CopySlices
    for lib in (ds, torch):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        buf = lib.zeros(2, 3)
        row = buf[0]
        row.add_(w)
        assert buf.requires_grad
        (buf * w).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0, 6.0])


@pytest.mark.host_only  # from_numpy shares a host array's memory; a device tensor is a copy
def test_recorded_write_into_storage_shared_with_a_numpy_array_is_refused():
    w = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    arr = np.zeros(3)
    t = ds.from_numpy(arr)  # storage shared with a NumPy array downslope does not track
    with pytest.raises(RuntimeError, match="shares its storage"):
        t.add_(w)


# ---------------------------------------------------------------------- integer dtypes
@pytest.mark.parametrize("bound", [1.5, "tensor"])
def test_clamp_in_place_of_an_integer_tensor_with_a_float_bound_is_refused_like_torch(bound):
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.tensor([5, 2, 0]).clamp_(min=torch.tensor(1.5) if bound == "tensor" else bound)
    x = ds.tensor([5, 2, 0])
    with pytest.raises(ds.errors.ArgumentTypeError, match="can't be cast"):
        x.clamp_(min=ds.tensor(1.5) if bound == "tensor" else bound)
    np.testing.assert_array_equal(x.numpy(), [5, 2, 0])
    np.testing.assert_array_equal(x.clamp_(1, 3).numpy(), torch.tensor([5, 2, 0]).clamp_(1, 3).numpy())


_INTEGER_INPLACE = [
    lambda m: m.tensor([1, 2], dtype=m.uint8).add_(m.tensor([1, -1], dtype=m.int8)),
    lambda m: m.tensor([1, 2], dtype=m.uint8).add_(m.tensor(1)),
    lambda m: m.tensor([1, 2], dtype=m.uint8).__iadd__(m.tensor(1)),
    lambda m: m.tensor([1, 2], dtype=m.uint8).mul_(m.tensor([300, 2], dtype=m.int16)),
    lambda m: m.tensor([1, 2], dtype=m.int8).sub_(m.tensor([1, 1], dtype=m.uint8)),
    lambda m: m.tensor([3], dtype=m.uint8).__ior__(m.tensor([2], dtype=m.int8)),
    lambda m: m.tensor([5, 2], dtype=m.uint8).div_(m.tensor([2], dtype=m.int8), rounding_mode="floor"),
]


@pytest.mark.parametrize("case", range(len(_INTEGER_INPLACE)))
def test_in_place_integer_ops_cast_within_the_integer_category_like_torch(case):
    ours, theirs = _INTEGER_INPLACE[case](ds), _INTEGER_INPLACE[case](torch)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "op",
    [
        lambda m: m.tensor([1, 2], dtype=m.uint8).add_(1.5),
        lambda m: m.tensor([1, 2]).div_(2),
        lambda m: m.tensor([True]).add_(m.tensor([1])),
    ],
)
def test_in_place_ops_refuse_a_higher_category_like_torch(op):
    with pytest.raises(RuntimeError):
        op(torch)
    with pytest.raises(ds.errors.ArgumentTypeError, match="can't be cast"):
        op(ds)


@pytest.mark.parametrize(
    "name",
    ["div by a number", "div by a tensor", "pow", "rdiv", "sinh", "cosh", "normalize", "div by a grad tensor"],
)
def test_writing_in_place_to_outputs_torch_does_not_save_is_allowed(name):
    torch = pytest.importorskip("torch")

    def make(L):  # type: ignore[no-untyped-def]
        F = ds.nn.functional if L is ds else torch.nn.functional
        return {
            "div by a number": lambda z: z / 3.0,
            "div by a tensor": lambda z: z / (L.ones(3) * 2),
            "pow": lambda z: z**2,
            "rdiv": lambda z: 3.0 / z,
            "sinh": lambda z: z.sinh(),
            "cosh": lambda z: z.cosh(),
            "normalize": lambda z: F.normalize(z, dim=0),
            "div by a grad tensor": lambda z: L.ones(3) / z,
        }[name]

    grads = []
    for L in (torch, ds):
        z = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = make(L)(z)
        y.mul_(2)  # SimCLR's fill_diagonal_ and attention's masked_fill_ after a division do this
        (y * L.tensor([1.0, -2.0, 0.5])).sum().backward()
        grads.append(z.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


@pytest.mark.parametrize("op", ["add_", "mul_", "sub_"])
@pytest.mark.parametrize("window", [slice(0, 0), slice(2, 1)])
def test_inplace_through_an_empty_selection_gives_the_operand_a_zero_gradient_like_torch(
    op: str, window: slice
) -> None:
    grads = []
    for lib in (ds, torch):
        x = lib.zeros(3, dtype=lib.float64, requires_grad=True)
        v = lib.ones(1, dtype=lib.float64, requires_grad=True)
        y = x * 1
        getattr(y[window], op)(v)
        y.sum().backward()
        assert v.grad is not None, lib.__name__
        grads.append((v.grad.tolist(), x.grad.tolist()))
    assert grads[0] == grads[1]
