"""ds.autograd.forward_ad (torch.autograd.forward_ad): dual tensors and their tangents against
PyTorch's forward-mode AD in float64, forward-over-reverse, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

fwAD = ds.autograd.forward_ad
torch = pytest.importorskip("torch")
tfwAD = torch.autograd.forward_ad


def test_importable_under_torchs_path():
    import importlib

    assert importlib.import_module("downslope.autograd.forward_ad") is fwAD
    assert set(fwAD.__all__) == set(tfwAD.__all__)


def _rand(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(lib, a):
    return torch.tensor(a) if lib is torch else ds.tensor(a, dtype="float64")


def _both(lib, fw, x, v, f):
    with fw.dual_level():
        return fw.unpack_dual(f(lib, fw.make_dual(_t(lib, x), _t(lib, v))))


def test_tangents_match_torch_forward_ad(assert_close):
    x, v, w = _rand(0, (4,)), _rand(1, (4,)), _rand(2, (3, 4))

    def mlp(lib, a):
        weight = _t(lib, w)
        return lib.tanh(weight @ a).exp() * a[:3].sum() + (a**2).sum() / a.cosh()[1:]

    ours, theirs = _both(ds, fwAD, x, v, mlp), _both(torch, tfwAD, x, v, mlp)
    assert isinstance(ours, fwAD.UnpackedDualTensor)
    assert_close(ours.primal.numpy(), theirs.primal.numpy(), np.float64, "primal")
    assert_close(ours.tangent.numpy(), theirs.tangent.numpy(), np.float64, "tangent")
    assert ours.primal is ours[0] and ours.tangent is ours[1]


def test_two_duals_and_a_dual_itself(assert_close):
    x, v, y, u = _rand(3, (3,)), _rand(4, (3,)), _rand(5, (3,)), _rand(6, (3,))
    results = []
    for lib, fw in ((ds, fwAD), (torch, tfwAD)):
        with fw.dual_level():
            a, b = fw.make_dual(_t(lib, x), _t(lib, v)), fw.make_dual(_t(lib, y), _t(lib, u))
            duals = (fw.unpack_dual(a).tangent.numpy(), fw.unpack_dual(b).tangent.numpy())
            results.append((fw.unpack_dual(a * b.sin()).tangent.numpy(), *duals))
    for got, want in zip(*results):
        assert_close(got, want, np.float64, "two duals")


def test_forward_over_reverse_gives_the_hessian_vector_product(assert_close):
    x, v = _rand(7, (5,)), _rand(8, (5,))
    with fwAD.dual_level():
        d = fwAD.make_dual(ds.tensor(x, dtype="float64"), ds.tensor(v, dtype="float64"))
        (g,) = ds.autograd.grad((d.sin() ** 2).sum() * d.sum(), d, create_graph=True)
        hv = fwAD.unpack_dual(g).tangent
    want = torch.autograd.functional.hvp(lambda a: (a.sin() ** 2).sum() * a.sum(), torch.tensor(x), torch.tensor(v))
    assert_close(hv.numpy(), want[1].numpy(), np.float64, "hvp")


def test_no_tangent_where_torch_has_none_and_outside_the_level():
    with fwAD.dual_level():
        assert fwAD.unpack_dual(ds.ones(2)).tangent is None
        d = fwAD.make_dual(ds.ones(2), ds.ones(2))
        y = d * 2
        assert fwAD.unpack_dual(ds.ones(2) * 3).tangent is None
    assert fwAD.unpack_dual(y).tangent is None
    np.testing.assert_array_equal(fwAD.unpack_dual(y).primal.detach().numpy(), [2.0, 2.0])


def test_dual_of_a_parameter_stays_differentiable_in_it():
    w = ds.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    with fwAD.dual_level():
        d = fwAD.make_dual(w, ds.tensor([1.0, 0.0], dtype="float64"))
        primal, tangent = fwAD.unpack_dual(d**3)
    (primal.sum() + tangent.sum()).backward()  # d/dw [w0^3 + w1^3 + 3 w0^2]
    np.testing.assert_allclose(w.grad.numpy(), [3.0 + 6.0, 12.0])


def test_errors_match_torch():
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(ds.ones(2), ds.ones(2))
    with fwAD.dual_level():
        with pytest.raises(ValueError, match="different size"):
            fwAD.make_dual(ds.ones(3), ds.ones(2))
        with pytest.raises(ValueError, match="floating point"):
            fwAD.make_dual(ds.tensor([1, 2]), ds.tensor([1, 2]))
        with pytest.raises(RuntimeError, match="Nested forward mode AD"):
            fwAD.enter_dual_level()
    level = fwAD.enter_dual_level()
    fwAD.exit_dual_level(level=level)

    @fwAD.dual_level()
    def decorated():
        return fwAD.unpack_dual(fwAD.make_dual(ds.ones(1), ds.ones(1)) * 5).tangent

    assert decorated().item() == 5.0


def _custom_functions(lib):
    """Custom Functions whose backward forward AD cannot differentiate (array code, once_differentiable):
    their tangents must come from their jvp, as in PyTorch."""

    class NpExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            r = lib.from_numpy(np.exp(x.detach().numpy()))
            ctx.r = r
            return r

        @staticmethod
        def jvp(ctx, tx):
            return tx * ctx.r

        @staticmethod
        def backward(ctx, g):
            return lib.from_numpy(g.detach().numpy() * ctx.r.detach().numpy())

    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.x = x
            return x * x

        @staticmethod
        def jvp(ctx, tx):
            return 2 * ctx.x * tx

        @staticmethod
        @lib.autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    class TwoOut(lib.autograd.Function):  # two outputs, a non-tensor argument, an input without tangent
        @staticmethod
        def forward(ctx, x, y, k):
            ctx.x, ctx.y, ctx.k = x, y, k
            return x * y * k, (x + y).sum()

        @staticmethod
        def jvp(ctx, tx, ty, tk):
            assert tk is None
            return (tx * ctx.y + ctx.x * ty) * ctx.k, (tx + ty).sum()

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * ctx.y * ctx.k + g2, g1 * ctx.x * ctx.k + g2, None

    return NpExp, Square, TwoOut


def test_custom_functions_use_their_jvp(assert_close):
    x, v, w = _rand(9, (3,)), _rand(10, (3,)), _rand(11, (3,))
    results = []
    for lib, fw in ((ds, fwAD), (torch, tfwAD)):
        NpExp, Square, TwoOut = _custom_functions(lib)
        with fw.dual_level():
            d = fw.make_dual(_t(lib, x), _t(lib, v))
            a = NpExp.apply(d.sin())
            b = Square.apply(a * 2).cos()
            c, s = TwoOut.apply(b, _t(lib, w), 1.5)
            results.append([fw.unpack_dual(t).tangent.numpy() for t in (a, b, c * s, c.tanh() + d)])
    for i, (got, want) in enumerate(zip(*results)):
        assert_close(got, want, np.float64, f"tangent {i}")


def test_custom_function_jvp_in_forward_over_reverse(assert_close):
    x, v = _rand(12, (4,)), _rand(13, (4,))
    results = []
    for lib, fw in ((ds, fwAD), (torch, tfwAD)):
        _, _, TwoOut = _custom_functions(lib)
        w = _t(lib, x).requires_grad_(True)
        with fw.dual_level():
            d = fw.make_dual(w, _t(lib, v))
            c, s = TwoOut.apply(d.exp(), d, 2.0)
            tangent = fw.unpack_dual((c * s).sin()).tangent
        (g,) = lib.autograd.grad(tangent.sum(), w)
        results.append((tangent.detach().numpy(), g.numpy()))
    for got, want in zip(*results):
        assert_close(got, want, np.float64, "forward over reverse through a custom Function")


def test_custom_function_without_jvp_raises_torchs_error():
    class NoJvp(ds.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with fwAD.dual_level():
        d = fwAD.make_dual(ds.ones(2), ds.ones(2))
        with pytest.raises(NotImplementedError, match="must implement the jvp function.*NoJvp"):
            NoJvp.apply(d)  # as PyTorch: at apply, where the jvp would run
        # off the path from the duals, a custom Function needs no jvp
        other = NoJvp.apply(ds.ones(2, requires_grad=True))
        assert fwAD.unpack_dual(other * d).tangent.tolist() == [2.0, 2.0]


# --- tangents as PyTorch's eager forward mode gives them (found by fuzzing against torch) -----------


def _fw(lib):
    return fwAD if lib is ds else tfwAD


def test_custom_function_jvp_runs_at_apply_and_reads_ctx_as_forward_left_it():
    # a later in-place write to the input (which ctx holds) must not reach the tangent
    results = []
    for lib in (ds, torch):

        class Sq(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.x = x
                return x * x

            @staticmethod
            def backward(ctx, g):
                return 2 * ctx.x * g

            @staticmethod
            def jvp(ctx, t):
                return 2 * ctx.x * t

        fw = _fw(lib)
        with fw.dual_level():
            h = fw.make_dual(_t(lib, [1.0, 2.0]), _t(lib, [1.0, 1.0])) * 1
            y = Sq.apply(h)
            h.mul_(10)
            results.append(fw.unpack_dual(y).tangent.numpy())
    np.testing.assert_allclose(results[0], results[1])


def test_save_for_forward_keeps_what_jvp_reads(assert_close):
    x, v = _rand(20, (3,)), _rand(21, (3,))
    results = []
    for lib in (ds, torch):

        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                ctx.save_for_forward(a)
                ctx.save_for_backward(a * 3)
                return a**3

            @staticmethod
            def backward(ctx, g):
                (a3,) = ctx.saved_tensors
                return g * a3

            @staticmethod
            def jvp(ctx, t):
                (a,) = ctx.saved_tensors  # in jvp: what save_for_forward kept
                return 3 * a * a * t

        fw = _fw(lib)
        with fw.dual_level():
            results.append(fw.unpack_dual(Cube.apply(fw.make_dual(_t(lib, x), _t(lib, v)))).tangent.numpy())
    assert_close(results[0], results[1], np.float64, "save_for_forward")


@pytest.mark.parametrize("name", ["softplus", "leaky_relu", "layer_norm"])
def test_ops_before_a_custom_function_keep_their_tangents(assert_close, name):
    x, v = _rand(22, (4,)), _rand(23, (4,))
    results = []
    for lib in (ds, torch):

        class Double(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a * 2

            @staticmethod
            def backward(ctx, g):
                return g * 2

            @staticmethod
            def jvp(ctx, t):
                return t * 2

        F = lib.nn.functional
        pre = {"softplus": F.softplus, "leaky_relu": F.leaky_relu, "layer_norm": F.layer_norm}[name]
        args = ((4,),) if name == "layer_norm" else ()
        fw = _fw(lib)
        with fw.dual_level():
            d = fw.make_dual(_t(lib, x), _t(lib, v))
            results.append(fw.unpack_dual(Double.apply(pre(d, *args)).exp().sum()).tangent.numpy())
    assert_close(results[0], results[1], np.float64, name)


def test_in_place_ops_on_a_dual_change_its_tangent(assert_close):
    x, v, w = _rand(24, (3,)), _rand(25, (3,)), _rand(26, (3,))
    results = []
    for lib in (ds, torch):
        fw = _fw(lib)
        with fw.dual_level():
            d = fw.make_dual(_t(lib, x), _t(lib, v))
            d.mul_(2)
            e = fw.make_dual(_t(lib, x), _t(lib, v))
            e[0] = fw.make_dual(_t(lib, w), _t(lib, x))[1]
            results.append([fw.unpack_dual(t).tangent.numpy() for t in (d, e, d * e)])
    for i, (got, want) in enumerate(zip(*results)):
        assert_close(got, want, np.float64, f"tangent {i}")


def test_a_view_after_its_base_is_written_has_the_new_tangent(assert_close):
    x, v = _rand(27, (2, 3)), _rand(28, (2, 3))
    results = []
    for lib in (ds, torch):
        fw = _fw(lib)
        with fw.dual_level():
            y = fw.make_dual(_t(lib, x), _t(lib, v)).clone()
            row, col = y[0], y[:, 1]
            y.mul_(y.detach() + 2)
            results.append([fw.unpack_dual(t).tangent.numpy() for t in (row, col)])
    for i, (got, want) in enumerate(zip(*results)):
        assert_close(got, want, np.float64, f"view {i}")


def test_make_dual_under_no_grad_is_refused_not_silently_tangent_free():
    # PyTorch keeps tangents under no_grad; here they follow the recorded graph, which no_grad stops
    with ds.no_grad(), fwAD.dual_level():
        with pytest.raises(RuntimeError, match="no_grad"):
            fwAD.make_dual(ds.ones(2), ds.ones(2))
