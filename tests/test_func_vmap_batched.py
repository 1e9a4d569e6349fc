"""vmap's batched call (``_vmap.py``): the function runs once on BatchedTensors, with a batching rule per
op; every rule is compared with torch.func.vmap, the batched call is checked to have run (not the
per-element loop), and ops without a rule fall back to the loop with the loop's results."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.func as dsf

torch = pytest.importorskip("torch")


@pytest.fixture
def batched_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if vmap falls back to its per-element loop."""

    reasons: list[BaseException] = []
    batched_call = dsf._batched_call

    def recorded(*args: Any, **kwargs: Any) -> Any:
        try:
            return batched_call(*args, **kwargs)
        except Exception as error:
            reasons.append(error)
            raise

    def refuse(*args: Any, **kwargs: Any) -> Any:
        import traceback

        detail = "".join(traceback.format_exception(reasons[-1])[-6:])
        raise AssertionError(f"vmap looped: the batched call did not run ({reasons[-1]!r})\n{detail}")

    monkeypatch.setattr(dsf, "_batched_call", recorded)
    monkeypatch.setattr(dsf, "_looped", refuse)


@pytest.fixture
def batched_modules(request: pytest.FixtureRequest) -> None:
    """batched_only for calls through modules, except under the strict-device plugin, whose hook on a
    module's call reads every parameter's array (functional_call's BatchedTensors make vmap loop there;
    the values are compared all the same)."""
    if "strict_everywhere" not in sys.modules:
        request.getfixturevalue("batched_only")


def _lib_args(lib: Any, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray):
            out.append(lib.tensor(a))
        elif isinstance(a, (tuple, list, dict)):
            conv = {k: lib.tensor(v) for k, v in a.items()} if isinstance(a, dict) else type(a)(_lib_args(lib, a))
            out.append(conv)
        else:
            out.append(a)
    return tuple(out)


def _numpy(result: Any) -> Any:
    if isinstance(result, dict):
        return {k: _numpy(v) for k, v in result.items()}
    if isinstance(result, (tuple, list)):
        return [_numpy(r) for r in result]
    return result.detach().numpy()


def _assert_close(ours: Any, theirs: Any, tol: float) -> None:
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs)
        for k in theirs:
            _assert_close(ours[k], theirs[k], tol)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_close(a, b, tol)
    elif theirs is None:
        assert ours is None
    else:
        assert ours.shape == theirs.shape
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


def _both(
    make: Callable[[Any], Callable[..., Any]], arrays: tuple[Any, ...], tol: float = 1e-5, **vmap_kw: Any
) -> None:
    results = []
    for lib in (ds, torch):
        fn = make(lib)
        results.append(_numpy(lib.func.vmap(fn, **vmap_kw)(*_lib_args(lib, arrays))))
    _assert_close(results[0], results[1], tol)


rng = np.random.default_rng(0)
A = rng.standard_normal((4, 3, 5)).astype(np.float32)
V = rng.standard_normal((4, 5)).astype(np.float32)
W = rng.standard_normal((5, 2)).astype(np.float32)
M = rng.standard_normal((3, 5)).astype(np.float32)
S = rng.standard_normal((5,)).astype(np.float32)

POINTWISE: list[tuple[str, Callable[[Any], Callable[..., Any]], tuple[Any, ...], Any]] = [
    ("x + y broadcast", lambda lib: lambda x, y: x + y, (A, S), (0, None)),
    ("x * y both batched, ranks differ", lambda lib: lambda x, y: x * y, (A, V), 0),
    ("2 - x, 2 / x, x ** 2", lambda lib: lambda x: (2 - x) * (2 / (x.abs() + 1)) + x**2, (A,), 0),
    ("unbatched tensor on the left", lambda lib: lambda x, y: y * x - y / (x.exp() + 1), (A, M), (0, None)),
    ("unary methods", lambda lib: lambda x: x.tanh() + x.sigmoid() + x.relu() + x.sin().cos(), (A,), 0),
    ("functions", lambda lib: lambda x: lib.exp(x) + lib.tanh(x) * lib.sigmoid(x) - lib.relu(x), (A,), 0),
    ("comparisons and where", lambda lib: lambda x, y: lib.where(x > y, x, y * 2), (A, S), (0, None)),
    ("maximum", lambda lib: lambda x, y: lib.maximum(x, y), (A, V), 0),
    ("clamp", lambda lib: lambda x: x.clamp(-0.5, 0.5), (A,), 0),
    ("in_dims 1", lambda lib: lambda x: x * 3 + 1, (A,), 1),
    ("in_dims -1", lambda lib: lambda x, y: x - y, (A, A), (-1, 2)),
]


@pytest.mark.parametrize(("name", "make", "arrays", "in_dims"), POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_rules_match_torch(batched_only: None, name: str, make: Any, arrays: Any, in_dims: Any) -> None:
    _both(make, arrays, in_dims=in_dims)


SHAPES: list[tuple[str, Callable[[Any], Callable[..., Any]]]] = [
    ("reshape", lambda lib: lambda x: x.reshape(5, 3)),
    ("view -1", lambda lib: lambda x: x.view(-1)),
    ("flatten", lambda lib: lambda x: x.flatten()),
    ("ds.flatten start 1", lambda lib: lambda x: lib.flatten(x.unsqueeze(0), 1)),
    ("unsqueeze -1", lambda lib: lambda x: x.unsqueeze(-1)),
    ("squeeze", lambda lib: lambda x: x.unsqueeze(1).squeeze(1)),
    ("permute", lambda lib: lambda x: x.permute(1, 0)),
    ("transpose, T, mT", lambda lib: lambda x: x.transpose(0, 1) + x.T + x.mT),
    ("expand", lambda lib: lambda x: x[:1].expand(2, 3, 5)),
    ("getitem int/slice/None/Ellipsis", lambda lib: lambda x: x[1, 1:4] + x[..., 2:3, None][0, :, 0]),
    ("getitem tensor index", lambda lib: lambda x: x[lib.tensor([2, 0])]),
    ("unbind", lambda lib: lambda x: x.unbind(1)[2]),
    ("split/chunk", lambda lib: lambda x: x.split(2, 1)[1] * x.chunk(3, dim=1)[1]),
    ("cat with unbatched", lambda lib: lambda x: lib.cat([x, lib.ones(3, 1)], dim=1)),
    ("stack", lambda lib: lambda x: lib.stack([x, x * 2, lib.zeros(3, 5)], dim=-1)),
    ("narrow", lambda lib: lambda x: x.narrow(1, 1, 3)),
]


@pytest.mark.parametrize(("name", "make"), SHAPES, ids=[s[0] for s in SHAPES])
def test_shape_rules_match_torch(batched_only: None, name: str, make: Any) -> None:
    _both(make, (A,))


REDUCTIONS: list[tuple[str, Callable[[Any], Callable[..., Any]]]] = [
    ("sum", lambda lib: lambda x: x.sum()),
    ("sum dim", lambda lib: lambda x: x.sum(1)),
    ("sum dims keepdim", lambda lib: lambda x: x.sum((0, 1), keepdim=True)),
    ("mean -1", lambda lib: lambda x: x.mean(-1)),
    ("ds.sum / ds.mean", lambda lib: lambda x: lib.sum(x, 0) + lib.mean(x, dim=0)),
    ("amax, logsumexp", lambda lib: lambda x: x.amax(1) + x.logsumexp(1)),
    ("max dim", lambda lib: lambda x: x.max(1).values + x.max(0)[0].sum()),
    ("max", lambda lib: lambda x: x.max() + x.min()),
    ("softmax methods", lambda lib: lambda x: x.softmax(-1) + x.log_softmax(0)),
    ("F.softmax", lambda lib: lambda x: lib.nn.functional.softmax(x, dim=1) * lib.nn.functional.log_softmax(x, 1)),
    ("norm", lambda lib: lambda x: x.norm()),
]


@pytest.mark.parametrize(("name", "make"), REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_rules_match_torch(batched_only: None, name: str, make: Any) -> None:
    _both(make, (A,))


MATMULS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("batched matrix @ matrix", (A, W), (0, None)),
    ("batched vector @ matrix", (V, W), (0, None)),
    ("batched matrix @ vector", (A, S), (0, None)),
    ("batched vector @ vector", (V, S), (0, None)),
    ("matrix @ batched matrix", (M, A.transpose(0, 2, 1).copy()), (None, 0)),
    ("matrix @ batched vector", (M, V), (None, 0)),
    ("vector @ batched vector", (S, V), (None, 0)),
    ("both batched matrices", (A, A.transpose(0, 2, 1).copy()), 0),
    ("both batched vector @ matrix", (A[:, 0], A.transpose(0, 2, 1).copy()), 0),
    ("both batched matrix @ vector", (A, V), 0),
    ("both batched vectors", (V, V), 0),
]


@pytest.mark.parametrize(("name", "arrays", "in_dims"), MATMULS, ids=[m[0] for m in MATMULS])
def test_matmul_rules_match_torch(batched_only: None, name: str, arrays: Any, in_dims: Any) -> None:
    _both(lambda lib: lambda x, y: x @ y, arrays, in_dims=in_dims)
    _both(lambda lib: lambda x, y: lib.matmul(x, y), arrays, in_dims=in_dims)


def test_mm_dot_addmm_match_torch(batched_only: None) -> None:
    _both(lambda lib: lambda x, y: lib.mm(x, y), (A, W), in_dims=(0, None))
    _both(lambda lib: lambda x, y: lib.dot(x, y), (V, V))
    bias = rng.standard_normal((3, 2)).astype(np.float32)
    _both(lambda lib: lambda b, x, y: lib.addmm(b, x, y, beta=0.5, alpha=2.0), (bias, A, W), in_dims=(None, 0, None))


LIN_W = rng.standard_normal((4, 2, 5)).astype(np.float32)
LIN_B = rng.standard_normal((4, 2)).astype(np.float32)


@pytest.mark.parametrize(
    ("arrays", "in_dims"),
    [
        ((A, LIN_W[0], LIN_B[0]), (0, None, None)),
        ((V, LIN_W[0], LIN_B[0]), (0, None, None)),
        ((A, LIN_W[0], LIN_B), (0, None, 0)),
        ((A, LIN_W, LIN_B), 0),
        ((A[0], LIN_W, LIN_B), (None, 0, 0)),
        ((V, LIN_W, None), (0, 0, None)),
    ],
    ids=["weight unbatched", "vector input", "bias batched", "all batched", "input unbatched", "no bias"],
)
def test_linear_rule_matches_torch(batched_only: None, arrays: Any, in_dims: Any) -> None:
    _both(lambda lib: lambda x, w, b: lib.nn.functional.linear(x, w, b), arrays, in_dims=in_dims)


IMG = rng.standard_normal((3, 2, 4, 8, 8)).astype(np.float32)  # batch 3 of (N=2, C=4, 8, 8)
CW = rng.standard_normal((3, 6, 2, 3, 3)).astype(np.float32)  # batch 3 of (6, 4 / groups 2, 3, 3)
CB = rng.standard_normal((3, 6)).astype(np.float32)


@pytest.mark.parametrize(
    ("arrays", "in_dims"),
    [
        ((IMG, CW[0], CB[0]), (0, None, None)),
        ((IMG[:, 0], CW[0], CB[0]), (0, None, None)),
        ((IMG, CW, CB), 0),
        ((IMG[:, 0], CW, CB), 0),
        ((IMG[0], CW, CB), (None, 0, 0)),
        ((IMG, CW[0], CB), (0, None, 0)),
    ],
    ids=[
        "weight unbatched",
        "3-d images",
        "all batched",
        "3-d images, batched weight",
        "images unbatched",
        "bias batched",
    ],
)
def test_conv2d_rule_matches_torch(batched_only: None, arrays: Any, in_dims: Any) -> None:
    def make(lib: Any) -> Any:
        return lambda x, w, b: lib.nn.functional.conv2d(x, w, b, stride=2, padding=1, groups=2)

    _both(make, arrays, in_dims=in_dims, tol=1e-4)


def test_pooling_rules_match_torch(batched_only: None) -> None:
    def make(lib: Any) -> Any:
        F = lib.nn.functional
        return lambda x: F.max_pool2d(x, 2) + F.avg_pool2d(x, 2) + F.adaptive_avg_pool2d(x, 4)

    _both(make, (IMG,))
    _both(make, (IMG[:, 0],))


LOGITS = rng.standard_normal((4, 6, 5)).astype(np.float32)
TARGETS = rng.integers(0, 5, (4, 6))
TARGETS[1, 2] = -100
TARGETS[2, :] = 3
PROBS = np.abs(rng.standard_normal((4, 6, 5))).astype(np.float32)
CLASS_W = (rng.random(5) + 0.5).astype(np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_rules_match_torch(batched_only: None, reduction: str) -> None:
    def ce(lib: Any, **kw: Any) -> Any:
        return lambda x, t: lib.nn.functional.cross_entropy(x, t, reduction=reduction, **kw)

    _both(lambda lib: ce(lib), (LOGITS, TARGETS))
    _both(lambda lib: ce(lib, weight=lib.tensor(CLASS_W)), (LOGITS, TARGETS))
    _both(lambda lib: ce(lib, label_smoothing=0.1), (LOGITS, TARGETS))
    _both(lambda lib: ce(lib), (LOGITS, PROBS))
    _both(lambda lib: ce(lib), (LOGITS[:, 0], TARGETS[:, 0]))  # one row per element, a 0-d target
    _both(lambda lib: ce(lib), (LOGITS[0], TARGETS), in_dims=(None, 0))
    _both(lambda lib: lambda x, t: lib.nn.CrossEntropyLoss(reduction=reduction)(x, t), (LOGITS, TARGETS))

    def nll(lib: Any) -> Any:
        return lambda x, t: lib.nn.functional.nll_loss(x.log_softmax(-1), t, reduction=reduction)

    _both(nll, (LOGITS, TARGETS))

    def mse(lib: Any) -> Any:
        return lambda x, t: lib.nn.functional.mse_loss(x, t, reduction=reduction)

    _both(mse, (LOGITS, PROBS))


def _mlp(lib: Any) -> Any:
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(5, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3))


def _cnn(lib: Any) -> Any:
    lib.manual_seed(0)
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(36, 3),
    )  # fmt: skip


def _same_weights(theirs: Any, ours: Any) -> None:
    for (_, p), (_, q) in zip(theirs.named_parameters(), ours.named_parameters()):
        with ds.no_grad():
            q.copy_(ds.tensor(p.detach().numpy()))


@pytest.mark.parametrize(("build", "shape"), [(_mlp, (6, 5)), (_cnn, (6, 1, 8, 8))], ids=["mlp", "cnn"])
def test_per_sample_grads_match_torch(batched_modules: None, build: Any, shape: tuple[int, ...]) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 3, shape[0])
    results = []
    models = {torch: build(torch), ds: build(ds)}
    _same_weights(models[torch], models[ds])
    for lib in (ds, torch):
        model = models[lib]
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(p: Any, xi: Any, yi: Any, lib: Any = lib, model: Any = model) -> Any:
            out = lib.func.functional_call(model, p, (xi.unsqueeze(0),))
            return lib.nn.functional.cross_entropy(out, yi.unsqueeze(0))

        grads = lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params, lib.tensor(x), lib.tensor(y))
        results.append(_numpy(grads))
    _assert_close(results[0], results[1], 1e-5)


def test_grad_and_value_with_aux_inside_vmap_matches_torch(batched_only: None) -> None:
    w = rng.standard_normal((5,)).astype(np.float32)

    def make(lib: Any) -> Any:
        def f(w: Any, x: Any) -> Any:
            value = (w * x).tanh().sum()
            return value, x * 2

        return lambda w, x: lib.func.grad_and_value(f, has_aux=True)(w, x)

    _both(make, (w, V), in_dims=(None, 0))
    _both(
        lambda lib: lambda w, x: lib.func.grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(w, x),
        (w, V),
        in_dims=(None, 0),
    )


def test_ensemble_matches_torch(batched_modules: None) -> None:
    torch.manual_seed(0)
    theirs = [torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)) for _ in range(4)]
    ours = [ds.nn.Sequential(ds.nn.Linear(5, 8), ds.nn.ReLU(), ds.nn.Linear(8, 3)) for _ in range(4)]
    for t, d in zip(theirs, ours):
        _same_weights(t, d)
    results = []
    for lib, models in ((ds, ours), (torch, theirs)):
        params, buffers = lib.func.stack_module_state(models)
        base = models[0]

        def fmodel(p: Any, b: Any, x: Any, base: Any = base, lib: Any = lib) -> Any:
            return lib.func.functional_call(base, (p, b), (x,))

        results.append(_numpy(lib.func.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, lib.tensor(A[0]))))
        # each model its own minibatch
        results.append(_numpy(lib.func.vmap(fmodel)(params, buffers, lib.tensor(A))))
    _assert_close(results[:2], results[2:], 1e-5)


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd", "hessian"])
@pytest.mark.parametrize("with_module", [False, True], ids=["function", "module with parameters"])
def test_jacobians_inside_vmap_match_torch(batched_modules: None, transform: str, with_module: bool) -> None:
    results = []
    models = {torch: _mlp(torch), ds: _mlp(ds)}
    _same_weights(models[torch], models[ds])
    wmat = rng.standard_normal((3, 5)).astype(np.float32)
    for lib in (ds, torch):
        model = models[lib]
        w = lib.tensor(wmat)

        def f(x: Any, model: Any = model, w: Any = w) -> Any:
            out = model(x) if with_module else (w @ x).tanh() * x[:3]
            return out.sum() if transform == "hessian" else out

        fn = getattr(lib.func, transform)(f)
        results.append(_numpy(lib.func.vmap(fn)(lib.tensor(V))))
    _assert_close(results[0], results[1], 1e-4)


def test_jacrev_inside_vmap_stays_differentiable_in_the_parameters(batched_modules: None) -> None:
    grads = []
    models = {torch: _mlp(torch), ds: _mlp(ds)}
    _same_weights(models[torch], models[ds])
    for lib in (ds, torch):
        model = models[lib]
        jac = lib.func.vmap(lib.func.jacrev(model))(lib.tensor(V))
        (jac**2).sum().backward()
        grads.append([None if p.grad is None else p.grad.numpy() for p in model.parameters()])
    _assert_close(grads[0], grads[1], 1e-4)


def test_vmap_of_vmap_and_grad_of_vmap_match_torch() -> None:
    # the inner vmap sees BatchedTensors: both batches are flattened into one batched call
    _both(lambda lib: lib.func.vmap(lambda r: r.sum() * r), (A,))
    results = []
    for lib in (ds, torch):
        x = lib.tensor(A, requires_grad=True)
        lib.func.vmap(lambda e: (e.tanh() ** 2).sum())(x).sum().backward()
        results.append(x.grad.numpy())
    _assert_close(results[0], results[1], 1e-5)


def test_nested_in_dims_and_out_dims_match_torch(batched_only: None) -> None:
    def make(lib: Any) -> Any:
        return lambda pair, d: {"a": pair[0] * d["s"], "b": (pair[1].sum(), pair[0] + 1)}

    args = ((A, V), {"s": S})
    _both(make, args, in_dims=((0, 0), {"s": None}), out_dims={"a": 1, "b": (0, -1)})
    _both(lambda lib: lambda x: (x, x.sum()), (A,), out_dims=(2, 0))


def test_unbatched_outputs_are_repeated_as_torch(batched_only: None) -> None:
    _both(lambda lib: lambda x, y: (x * 2, y + 1), (A, S), in_dims=(0, None))
    _both(lambda lib: lambda x, y: y, (A, S), in_dims=(0, None), out_dims=None)


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 10])
def test_chunk_size_gives_the_same_results(batched_only: None, chunk_size: int) -> None:
    _both(lambda lib: lambda x, y: (x @ y, y.sum()), (A, W), in_dims=(0, None), chunk_size=chunk_size)


def test_randomness_as_torch(batched_only: None) -> None:
    x = ds.tensor(V)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        ds.vmap(lambda u: u + ds.randn(5))(x)
    same = ds.vmap(lambda u: u * 0 + ds.randn(5), randomness="same")(x).numpy()
    assert np.all(same == same[0])


def test_randomness_different_loops_with_its_own_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    x = ds.tensor(V)
    ds.manual_seed(3)
    different = ds.vmap(lambda u: u * 0 + ds.randn(5), randomness="different")(x).numpy()
    assert not np.all(different == different[0])
    monkeypatch.setattr(dsf, "BATCHING", False)
    ds.manual_seed(3)
    looped = ds.vmap(lambda u: u * 0 + ds.randn(5), randomness="different")(x).numpy()
    np.testing.assert_array_equal(different, looped)  # the batched try drew nothing that counts


def test_errors_as_torch() -> None:
    for lib in (ds, torch):
        with pytest.raises(ValueError, match="same size in the mapped dimension"):
            lib.vmap(lambda a, b: a + b)(lib.ones(3, 2), lib.ones(4, 2))
        with pytest.raises(ValueError, match="out_dims is not compatible"):
            lib.vmap(lambda a: (a, a), out_dims=(0, 0, 0))(lib.ones(3, 2))
        with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
            lib.vmap(lambda a: a * 2, out_dims=None)(lib.tensor([1.0, 2.0]))
        with pytest.raises(RuntimeError, match="randomness error mode"):
            lib.vmap(lambda a, lib=lib: a + lib.rand(2))(lib.ones(3, 2))


def _with_and_without_batching(fn: Callable[..., Any], *args: Any, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    batched = fn(*args, **kw)
    monkeypatch.setattr(dsf, "BATCHING", False)
    looped = fn(*args, **kw)
    monkeypatch.setattr(dsf, "BATCHING", True)
    return batched, looped


def test_forced_fallback_gives_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(ds)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: Any, xi: Any) -> Any:
        return ds.func.functional_call(model, p, (xi,)).logsumexp(0)

    f = ds.func.vmap(ds.func.grad(loss), in_dims=(None, 0))
    batched, looped = _with_and_without_batching(f, params, ds.tensor(V), monkeypatch=monkeypatch)
    for k in batched:
        np.testing.assert_allclose(batched[k].numpy(), looped[k].numpy(), rtol=1e-6, atol=1e-6)


def test_an_op_without_a_rule_falls_back_to_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    looped = []
    original = dsf._looped

    def counted(*args: Any, **kwargs: Any) -> Any:
        looped.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(dsf, "_looped", counted)

    def f(x: Any) -> Any:  # sort has no batching rule; .item() reads one element's value
        return x.sort().values * float(x.sum().item() > 0) + ds.cumprod(x, 0)

    out = ds.vmap(f)(ds.tensor(V))
    assert looped == [1]
    expected = torch.vmap(lambda x: x.sort().values * (x.sum() > 0).float() + torch.cumprod(x, 0))(torch.tensor(V))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5)
    # once fallen back, the same vmapped function loops at once
    ds.vmap(f)(ds.tensor(V))
    assert looped == [1, 1]


def test_jacobian_and_hessian_vectorize_match_torch() -> None:
    x = rng.standard_normal(6)
    w_array = rng.standard_normal((4, 6))
    results = []
    for lib in (ds, torch):
        w = lib.tensor(w_array, dtype=lib.float64)

        def f(v: Any, w: Any = w) -> Any:
            return (w @ v).tanh()

        def g(v: Any, w: Any = w) -> Any:
            return (w @ v).tanh().pow(2).sum()

        functional = lib.autograd.functional
        results.append(
            [
                functional.jacobian(f, lib.tensor(x, dtype=lib.float64), vectorize=True).numpy(),
                functional.hessian(g, lib.tensor(x, dtype=lib.float64), vectorize=True).numpy(),
                functional.jacobian(
                    lambda a, b: (a * b, a.sum()),
                    (lib.tensor(x, dtype=lib.float64), lib.tensor(x, dtype=lib.float64)),
                    vectorize=True,
                )[0][1].numpy(),
            ]
        )
    _assert_close(results[0], results[1], 1e-10)


def test_layer_norm_embedding_and_batch_norm_eval_rules_match_torch(batched_only: None) -> None:
    ln_w = rng.standard_normal((2, 5)).astype(np.float32)

    def layer_norm(lib: Any) -> Any:
        return lambda x, w: (
            lib.nn.functional.layer_norm(x, (5,), w[0], w[1]) + lib.nn.functional.layer_norm(x, [5], w[1], w[0])
        )

    _both(layer_norm, (A, ln_w), in_dims=(0, None))
    _both(layer_norm, (A, np.stack([ln_w] * 4)), in_dims=(0, 0))
    table = rng.standard_normal((7, 3)).astype(np.float32)
    idx = rng.integers(0, 7, (4, 6))
    _both(lambda lib: lambda i, t: lib.nn.functional.embedding(i, t, padding_idx=0), (idx, table), in_dims=(0, None))
    stats = [rng.standard_normal(4).astype(np.float32), (rng.random(4) + 0.5).astype(np.float32)]
    results = []
    for lib in (ds, torch):
        bn = lib.nn.BatchNorm2d(4).eval()
        with lib.no_grad():
            bn.running_mean.copy_(lib.tensor(stats[0]))
            bn.running_var.copy_(lib.tensor(stats[1]))
            bn.weight.copy_(lib.tensor(stats[1]))
        results.append(_numpy(lib.func.vmap(bn)(lib.tensor(IMG))))
    _assert_close(results[0], results[1], 1e-5)


def test_batch_norm_in_training_is_refused_as_torch_before_any_update() -> None:
    # torch refuses the in-place update of unbatched running statistics from a batch of elements
    bn = ds.nn.BatchNorm1d(5)
    with pytest.raises(RuntimeError, match="Batch norm got a batched tensor as input while the running_mean") as ours:
        ds.func.vmap(bn)(ds.tensor(A))
    with pytest.raises(RuntimeError) as theirs:
        torch.func.vmap(torch.nn.BatchNorm1d(5))(torch.tensor(A))
    assert str(ours.value) == str(theirs.value)
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(5, np.float32))


def test_per_sample_gradient_of_an_input_gradient_penalty_matches_torch(batched_modules: None) -> None:
    # the inner grad records its backward pass through the per-sample linear of the outer grad's weights
    models = {torch: _mlp(torch), ds: _mlp(ds)}
    _same_weights(models[torch], models[ds])
    results = []
    for lib in (ds, torch):
        model = models[lib]
        params = {k: v.detach() for k, v in model.named_parameters()}

        def penalty(p: Any, xi: Any, lib: Any = lib, model: Any = model) -> Any:
            def out(x: Any) -> Any:
                return lib.func.functional_call(model, p, (x,)).sum()

            return (lib.func.grad(out)(xi) ** 2).sum()

        results.append(_numpy(lib.func.vmap(lib.func.grad(penalty), in_dims=(None, 0))(params, lib.tensor(V))))
    _assert_close(results[0], results[1], 1e-4)


def test_an_inner_vmap_under_a_batched_one_still_batches_plain_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    looped = []
    original = dsf._looped

    def counted(*args: Any, **kwargs: Any) -> Any:
        looped.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(dsf, "_looped", counted)

    def outer(lib: Any) -> Any:
        # the inner function closes over the outer element x: its batch is the outer one alone, so the
        # flattened batched call of both cannot run, and the inner call loops over its own dim
        return lambda x: lib.vmap(lambda r: r * x.sum())(x)

    nested = ds.vmap(outer(ds))(ds.tensor(A))
    expected = torch.vmap(outer(torch))(torch.tensor(A))
    np.testing.assert_allclose(nested.numpy(), expected.numpy(), rtol=1e-5)
    assert looped == [1]
    inner = ds.vmap(lambda r: (r * r).sum())
    np.testing.assert_allclose(inner(ds.tensor(V)).numpy(), (V * V).sum(-1), rtol=1e-5)
    assert looped == [1]  # a plain call of the inner function is batched
