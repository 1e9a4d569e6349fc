"""func.jacfwd computes a tall Jacobian a column at a time (one backward pass per input element, through
the graph of a vector-Jacobian product), and func.hessian is jacfwd(jacrev) as torch's: the values stay
torch.func's, and the number of backward passes follows the smaller side of the Jacobian."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import autograd

torch = pytest.importorskip("torch")

_RNG = np.random.RandomState(0)
_W = _RNG.randn(33, 31).astype(np.float32)
_B = _RNG.randn(33).astype(np.float32)
_X = _RNG.randn(4, 31).astype(np.float32)
_TALL = (_RNG.randn(300, 6) / 3).astype(np.float32)


def _np(t: Any) -> np.ndarray:
    return t.detach().numpy()


def _predict(lib: Any) -> Any:
    return lambda w, b, x: lib.nn.functional.linear(x, w, b).tanh()


def _args(lib: Any) -> tuple[Any, Any, Any]:
    return lib.tensor(_W), lib.tensor(_B), lib.tensor(_X)


def _passes(fn: Any) -> tuple[Any, int]:
    before = autograd._pass_number[0]
    value = fn()
    return value, autograd._pass_number[0] - before


# ---------------------------------------------------------------- the tutorial's functions
@pytest.mark.parametrize("transform", ["jacfwd", "jacrev", "hessian"])
def test_jacobians_hessians_tutorial_matches_torch(transform: str) -> None:
    def run(lib: Any) -> Any:
        w, b, x = _args(lib)
        return getattr(lib.func, transform)(_predict(lib), argnums=2)(w, b, x[0])

    np.testing.assert_allclose(_np(run(ds)), _np(run(torch)), rtol=1e-5, atol=1e-5)


def test_vmap_of_hessian_matches_torch() -> None:
    def run(lib: Any) -> Any:
        w, b, x = _args(lib)
        return lib.func.vmap(lib.func.hessian(_predict(lib), argnums=2), in_dims=(None, None, 0))(w, b, x)

    ours, theirs = run(ds), run(torch)
    assert tuple(ours.shape) == tuple(theirs.shape) == (4, 33, 31, 31)
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-5, atol=1e-5)


def test_hessian_runs_one_pass_per_output_and_per_input_not_their_product() -> None:
    w, b, x = _args(ds)
    _, passes = _passes(lambda: ds.func.hessian(_predict(ds), argnums=2)(w, b, x[0]))
    assert passes <= 33 + 31 + 2  # the old jacrev(jacrev) ran 33 + 33 * 31


def test_tall_jacfwd_runs_one_pass_per_input_element() -> None:
    tall = ds.tensor(_TALL)
    x = ds.tensor(_X[0, :6])
    jac, passes = _passes(lambda: ds.func.jacfwd(lambda v: (tall @ v).tanh())(x))
    expected = torch.func.jacfwd(lambda v: (torch.tensor(_TALL) @ v).tanh())(torch.tensor(_X[0, :6]))
    np.testing.assert_allclose(_np(jac), _np(expected), rtol=1e-5, atol=1e-6)
    assert passes <= 6 + 1


def test_wide_jacfwd_runs_reverse_passes() -> None:
    x = ds.tensor(_X[0])
    jac, passes = _passes(lambda: ds.func.jacfwd(lambda v: (v**2).sum(0, keepdim=True))(x))
    np.testing.assert_allclose(_np(jac), 2 * _X[0][None], rtol=1e-6)
    # reverse mode: its one row in one batched walk, which counts no backward pass; the columns would
    # take a create_graph pass first (and one pass per input element where they are not batched)
    assert passes == 0


# ---------------------------------------------------------------- structure: aux, argnums, pytrees
def test_tall_jacfwd_with_aux_argnums_tuple_and_pytrees() -> None:
    def f(lib: Any) -> Any:
        def fn(p: dict[str, Any], s: Any) -> Any:
            h = lib.tensor(_TALL) @ (p["a"] * s) + p["c"].sum()
            return (h.sin(), {"sq": h**2}), h.mean()

        return fn

    def run(lib: Any) -> Any:
        p = {"a": lib.tensor(_X[0, :6]), "c": lib.tensor(_X[1, :2])}
        s = lib.tensor(_X[2, :6])
        return lib.func.jacfwd(f(lib), argnums=(0, 1), has_aux=True)(p, s)

    (ours, our_aux), (theirs, their_aux) = run(ds), run(torch)
    np.testing.assert_allclose(_np(our_aux), _np(their_aux), rtol=1e-6)
    assert not our_aux.requires_grad
    ours_leaves, theirs_leaves = [], []
    for o_out, t_out in ((ours[0], theirs[0]), (ours[1]["sq"], theirs[1]["sq"])):
        ours_leaves += [o_out[0]["a"], o_out[0]["c"], o_out[1]]
        theirs_leaves += [t_out[0]["a"], t_out[0]["c"], t_out[1]]
    for o, t in zip(ours_leaves, theirs_leaves):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(_np(o), _np(t), rtol=1e-4, atol=1e-5)


def test_jacfwd_of_an_output_independent_of_an_argument_is_zeros() -> None:
    def run(lib: Any) -> Any:
        return lib.func.jacfwd(lambda a, c: lib.tensor(_TALL) @ a, argnums=(0, 1))(
            lib.tensor(_X[0, :6]), lib.tensor(_X[1, :3])
        )

    ours, theirs = run(ds), run(torch)
    for o, t in zip(ours, theirs):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(_np(o), _np(t), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- composition
def test_grad_through_a_tall_jacfwd_reaches_the_closed_over_weight() -> None:
    """create_graph chain: the Jacobian stays differentiable in a tensor the function closes over."""

    def run(lib: Any) -> tuple[Any, Any]:
        w = lib.tensor(_TALL, dtype=lib.float64, requires_grad=True)
        x = lib.tensor(_X[0, :6], dtype=lib.float64)
        jac = lib.func.jacfwd(lambda v: (w @ v).tanh())(x)
        (g,) = lib.autograd.grad((jac**2).sum(), w)
        return jac, g

    (j1, g1), (j2, g2) = run(ds), run(torch)
    np.testing.assert_allclose(_np(j1), _np(j2), rtol=1e-10)
    np.testing.assert_allclose(_np(g1), _np(g2), rtol=1e-10)


def test_nested_vmap_of_tall_jacfwd_and_jacrev_of_jacfwd() -> None:
    def run(lib: Any) -> tuple[Any, Any]:
        tall = lib.tensor(_TALL[:40], dtype=lib.float64)
        xs = lib.tensor(_X[:, :6].reshape(2, 2, 6), dtype=lib.float64)
        f = lambda v: (tall @ v).sin()  # noqa: E731
        nested = lib.func.vmap(lib.func.vmap(lib.func.jacfwd(f)))(xs)
        third = lib.func.jacrev(lib.func.jacfwd(lambda v: f(v)[:3]))(xs[0, 0])
        return nested, third

    for o, t in zip(run(ds), run(torch)):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(_np(o), _np(t), rtol=1e-10, atol=1e-12)


def test_hessian_of_a_vector_function_in_float64_matches_finite_differences() -> None:
    w, b = ds.tensor(_W[:5, :3], dtype=ds.float64), ds.tensor(_B[:5], dtype=ds.float64)
    x0 = _X[0, :3].astype(np.float64)
    h = _np(ds.func.hessian(lambda v: (w @ v + b).tanh() * v.sum())(ds.tensor(x0, dtype=ds.float64)))

    def jac(v: np.ndarray) -> np.ndarray:
        return _np(ds.func.jacrev(lambda s: (w @ s + b).tanh() * s.sum())(ds.tensor(v, dtype=ds.float64)))

    eps = 1e-6
    fd = np.stack([(jac(x0 + eps * e) - jac(x0 - eps * e)) / (2 * eps) for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-8)


def test_jacfwd_through_a_custom_function_matches_torch_jacrev() -> None:
    """A custom Function's backward may be array code: the Jacobian is then taken in reverse mode."""

    def run(lib: Any) -> Any:
        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(x: Any) -> Any:
                return x**3

            @staticmethod
            def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
                ctx.save_for_backward(inputs[0])

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                (x,) = ctx.saved_tensors
                return g * 3 * x**2

        tall = lib.tensor(_TALL[:20])
        transform = lib.func.jacfwd if lib is ds else lib.func.jacrev  # torch's jacfwd would need Cube.jvp
        return transform(lambda v: tall @ Cube.apply(v))(lib.tensor(_X[0, :6]))

    np.testing.assert_allclose(_np(run(ds)), _np(run(torch)), rtol=1e-5, atol=1e-6)
