"""vmap's batching rules for indexing, sorting, scans, masks, einsum/bmm, attention, group norm and
conv1d (``_vmap.py``): each is compared with torch.func.vmap (in_dims and out_dims variants), checked to
run batched (not vmap's per-element loop) and to give the loop's results; ops met without a rule of
their own run per element alone, so the function still runs once."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope._vmap as _vmap
import downslope.func as dsf

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("vmap looped: the batched call did not run")


@pytest.fixture
def batched_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if vmap falls back to its per-element loop of the whole function (``_looped`` below still
    runs the loop on purpose)."""
    monkeypatch.setattr(dsf, "_looped", _refuse)


@pytest.fixture
def batched_modules(request: pytest.FixtureRequest) -> None:
    """batched_only for calls through modules, except under the strict-device plugin, whose hook on a
    module's call reads every parameter's array (functional_call's BatchedTensors make vmap loop there;
    the values are compared all the same)."""
    if "strict_everywhere" not in sys.modules:
        request.getfixturevalue("batched_only")


def _no_op_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if an op falls back to running per element alone (its rule should take these arguments)."""

    def refuse(orig: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{orig.__name__} ran per element: its batching rule did not take its arguments")

    monkeypatch.setattr(_vmap, "_loop_rule", refuse)


def _convert(lib: Any, a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return lib.tensor(a)
    if isinstance(a, (tuple, list)):
        return type(a)(_convert(lib, b) for b in a)
    return a


def _numpy(result: Any) -> Any:
    if isinstance(result, (tuple, list)):
        return [_numpy(r) for r in result]
    return result.detach().numpy()


def _assert_close(ours: Any, theirs: Any, tol: float) -> None:
    if isinstance(theirs, list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_close(a, b, tol)
        return
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


def _run(lib: Any, make: Callable[[Any], Callable[..., Any]], arrays: tuple[Any, ...], **vmap_kw: Any) -> Any:
    return _numpy(lib.func.vmap(make(lib), **vmap_kw)(*_convert(lib, arrays)))


_LOOP = dsf._looped


def _looped(make: Callable[[Any], Callable[..., Any]], arrays: tuple[Any, ...], **vmap_kw: Any) -> Any:
    """vmap's results from its per-element loop of the whole function."""
    saved = dsf.BATCHING, dsf._looped
    dsf.BATCHING, dsf._looped = False, _LOOP
    try:
        return _run(ds, make, arrays, **vmap_kw)
    finally:
        dsf.BATCHING, dsf._looped = saved


rng = np.random.default_rng(0)
B = 4
X = rng.standard_normal((B, 3, 5)).astype(np.float32)
X2 = rng.standard_normal((3, 5)).astype(np.float32)
X3 = rng.standard_normal((B, 3, 4, 5)).astype(np.float32)
IDX = rng.integers(0, 3, (B, 3, 5))
IDX2 = rng.integers(0, 3, (3, 5))
J = rng.integers(0, 5, (B, 2))
J2 = np.array([4, 0, 2])
TABLE = rng.standard_normal((7, 5)).astype(np.float32)
TABLES = rng.standard_normal((B, 7, 5)).astype(np.float32)
IDS = rng.integers(0, 7, (B, 6))
MASK = rng.random((B, 3, 5)) > 0.5
ROW_MASK = rng.random((B, 5)) > 0.5
Q = rng.standard_normal((B, 2, 4, 8)).astype(np.float32)
K = rng.standard_normal((B, 2, 6, 8)).astype(np.float32)
V = rng.standard_normal((B, 2, 6, 8)).astype(np.float32)
ATT_MASK = rng.random((B, 4, 6)) > 0.3
ATT_MASK[..., 0] = True
IMG = rng.standard_normal((B, 2, 4, 9)).astype(np.float32)
W1 = rng.standard_normal((B, 6, 4, 3)).astype(np.float32)
BIAS1 = rng.standard_normal((B, 6)).astype(np.float32)
GN_W = rng.standard_normal((B, 4)).astype(np.float32)
VEC = rng.standard_normal((B, 5)).astype(np.float32)
STACK = rng.standard_normal((2, 5, 3)).astype(np.float32)
STACK_T = rng.standard_normal((2, 3, 5)).astype(np.float32)

Make = Callable[[Any], Callable[..., Any]]
# (name, make, arrays, in_dims, out_dims)
CASES: list[tuple[str, Make, tuple[Any, ...], Any, Any]] = [
    # indexing with batched indices
    ("gather both", lambda lib: lambda x, i: x.gather(1, i), (X, IDX), 0, 0),
    ("gather batched index", lambda lib: lambda x, i: lib.gather(x, 0, i), (X2, IDX), (None, 0), 0),
    ("gather batched input", lambda lib: lambda x, i: lib.gather(x, -1, i), (X, IDX2), (0, None), 1),
    ("take_along_dim", lambda lib: lambda x, i: lib.take_along_dim(x, i, 1), (X, IDX), 0, 0),
    ("take_along_dim flat", lambda lib: lambda x, i: lib.take_along_dim(x, i), (X, J), 0, 0),
    ("index_select batched index", lambda lib: lambda x, j: x.index_select(1, j), (X, J), 0, 0),
    ("index_select unbatched index", lambda lib: lambda x, j: lib.index_select(x, -1, j), (X, J2), (0, None), 0),
    ("index_select batched index only", lambda lib: lambda x, j: lib.index_select(x, 1, j), (X2, J), (None, 0), 1),
    ("x[idx] batched idx", lambda lib: lambda x, j: x[:, j], (X, J), 0, 0),
    ("x[idx] first dim", lambda lib: lambda t, j: t[j], (TABLES, IDS), 0, 0),
    ("x[idx] unbatched x", lambda lib: lambda t, j: t[j] * 2, (TABLE, IDS), (None, 0), 0),
    ("x[None, int, idx]", lambda lib: lambda x, j: x[None, 1, j], (X, J), 0, 0),
    ("x[:, idx] of 3-d", lambda lib: lambda x, j: x[:, j % 4], (X3, J), 0, 1),
    ("x[idx, :, idx] separated", lambda lib: lambda x, j: x[j % 3, :, j], (X3, J), 0, 0),
    ("x[int, :, idx]", lambda lib: lambda x, j: x[2, :, j], (X3, J), 0, 0),
    ("x[idx, idx] unbatched and batched", lambda lib: lambda x, j: x[:, lib.tensor([1, 0]), j % 4], (X3, J), 0, 0),
    ("x[..., idx, None]", lambda lib: lambda x, j: x[..., j, None], (X, J), 0, -1),
    ("scatter", lambda lib: lambda x, i: lib.zeros(3, 5).scatter(0, i, x), (X, IDX), 0, 0),
    ("scatter_add", lambda lib: lambda x, i, s: x.scatter_add(1, i, s), (X, IDX, X2), (0, 0, None), 0),
    (
        "embedding batched ids",
        lambda lib: lambda ids, w: lib.nn.functional.embedding(ids, w),
        (IDS, TABLE),
        (0, None),
        0,
    ),
    ("embedding batched table", lambda lib: lambda ids, w: lib.nn.functional.embedding(ids, w), (IDS, TABLES), 0, 0),
    (
        "embedding batched table only",
        lambda lib: lambda w, ids: lib.nn.functional.embedding(ids, w),
        (TABLES, IDS[0]),
        (0, None),
        1,
    ),
    ("one_hot", lambda lib: lambda ids: lib.nn.functional.one_hot(ids, 9), (IDS,), 0, 0),
    # sorting, scans, masks
    ("sort", lambda lib: lambda x: x.sort(1, descending=True), (X,), 0, 0),
    ("ds.sort / argsort", lambda lib: lambda x: lib.sort(x)[0] + lib.argsort(x, 0), (X,), 0, 0),
    ("topk", lambda lib: lambda x: x.topk(2, 1), (X,), 0, 1),
    ("ds.topk smallest", lambda lib: lambda x: lib.topk(x, 3, largest=False).values, (X,), 1, 0),
    ("max/min with dim", lambda lib: lambda x: (lib.max(x, 1), lib.min(x, -1, keepdim=True).indices), (X,), 0, 0),
    ("max of two", lambda lib: lambda x, y: lib.max(x, y) - lib.min(x, y), (X, X2), (0, None), 0),
    (
        "cumsum/cumprod/logcumsumexp",
        lambda lib: lambda x: lib.cumsum(x, 1) + lib.cumprod(x, 0) + lib.logcumsumexp(x, -1),
        (X,),
        0,
        0,
    ),
    ("cumprod/logcumsumexp methods", lambda lib: lambda x: x.cumprod(1) * x.logcumsumexp(0), (X,), 0, 0),
    ("cummax", lambda lib: lambda x: lib.cummax(x, 1).values + x.cummin(0)[0], (X,), 0, 0),
    ("where batched mask", lambda lib: lambda x, m: lib.where(m, x, 0.0), (X, MASK), 0, 0),
    ("masked_fill batched mask", lambda lib: lambda x, m: x.masked_fill(m, -1.0), (X, ROW_MASK), 0, 0),
    ("masked_fill unbatched input", lambda lib: lambda x, m: x.masked_fill(m, 2.0), (X2, MASK), (None, 0), 0),
    ("masked_fill tensor value", lambda lib: lambda x, v: lib.masked_fill(x, x > 0, v), (X, VEC[:, 0]), 0, 0),
    # einsum, bmm, matmul corners
    ("einsum both", lambda lib: lambda x, y: lib.einsum("ij,kj->ik", x, y), (X, X), 0, 0),
    ("einsum one batched", lambda lib: lambda x, y: lib.einsum("ij, j", x, y), (X, X2[0]), (0, None), 0),
    ("einsum implicit", lambda lib: lambda x, y: lib.einsum("ij,kj", x, y), (X2, X), (None, 0), 1),
    ("bmm", lambda lib: lambda x, y: lib.bmm(x, y), (STACK_T[None].repeat(B, 0), STACK), (0, None), 0),
    ("vector @ stack", lambda lib: lambda v, s: v @ s, (VEC, STACK), (0, None), 0),
    ("stack @ vector", lambda lib: lambda v, s: s @ v, (VEC, STACK_T), (0, None), 0),
    # attention, group norm, conv1d
    ("sdpa", lambda lib: lambda q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v), (Q, K, V), 0, 0),
    (
        "sdpa batched bool mask",
        lambda lib: lambda q, k, v, m: lib.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
        (Q, K, V, ATT_MASK),
        0,
        0,
    ),
    (
        "sdpa unbatched kv, causal",
        lambda lib: lambda q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
        (Q, K[0], V[0]),
        (0, None, None),
        0,
    ),
    ("group_norm", lambda lib: lambda x: lib.nn.functional.group_norm(x, 2), (IMG,), 0, 0),
    ("group_norm batched affine", lambda lib: lambda x, w: lib.nn.functional.group_norm(x, 2, w, w), (IMG, GN_W), 0, 0),
    ("conv1d", lambda lib: lambda x, w: lib.nn.functional.conv1d(x, w, padding=1), (IMG, W1[0]), (0, None), 0),
    (
        "conv1d batched weights",
        lambda lib: lambda x, w, b: lib.nn.functional.conv1d(x, w, b, stride=2, dilation=2),
        (IMG, W1, BIAS1),
        0,
        0,
    ),
    (
        "conv1d batched weights only",
        lambda lib: lambda w, x: lib.nn.functional.conv1d(x, w),
        (W1, IMG[0]),
        (0, None),
        0,
    ),
    # more reductions, pointwise ops, shapes and losses
    ("var/std", lambda lib: lambda x: x.var(1) + lib.std(x, 0, keepdim=True).sum() + x.std(), (X,), 0, 0),
    ("var_mean", lambda lib: lambda x: lib.var_mean(x, dim=(0, 1), correction=0), (X,), 0, 0),
    ("any/all/argmin", lambda lib: lambda x: ((x > 0).any(1), (x > -2).all(), x.argmin(0), lib.argmin(x)), (X,), 0, 0),
    (
        "median/mode/kthvalue",
        lambda lib: lambda x: (x.median(1).values, x.kthvalue(2, 0).values, lib.mode(x.round(), 1).values),
        (X,),
        0,
        0,
    ),
    (
        "atan2/pow/remainder",
        lambda lib: lambda x, y: lib.atan2(x, y) + lib.pow(x.abs(), y) + lib.remainder(x, 0.7),
        (X, X2),
        (0, None),
        0,
    ),
    ("clamp with tensor bounds", lambda lib: lambda x, y: x.clamp(min=y, max=y + 1), (X, VEC), 0, 0),
    (
        "tril/triu/flip/roll",
        lambda lib: lambda x: x.tril() + lib.triu(x, 1).flip(0) + x.roll(1, 1) + x.roll(2),
        (X,),
        0,
        0,
    ),
    (
        "pad/zeros_like/new_zeros",
        lambda lib: lambda x: lib.nn.functional.pad(x, (1, 2), value=0.5) + lib.zeros_like(x).sum() + x.new_zeros(8),
        (X,),
        0,
        0,
    ),
    (
        "l1/smooth_l1/bce losses",
        lambda lib: (
            lambda x, y: (
                lib.nn.functional.l1_loss(x, y),
                lib.nn.functional.smooth_l1_loss(x, y, reduction="sum", beta=0.5),
                lib.nn.functional.binary_cross_entropy_with_logits(x, y.sigmoid()),
            )
        ),
        (X, X2),
        (0, None),
        0,
    ),
    (
        "per element alone: normalize/cosine/diff/outer/lerp",
        lambda lib: (
            lambda x: (
                lib.nn.functional.normalize(x, dim=1)
                + lib.nn.functional.cosine_similarity(x, x.flip(0), dim=0)
                + lib.diff(x, dim=1).sum()
                + lib.outer(x[0], x[1])[:3]
                + lib.lerp(x, x * 2, 0.3)
            )
        ),
        (X,),
        0,
        0,
    ),
    (
        "per element alone: linalg.norm/interpolate",
        lambda lib: (
            lambda x: (lib.linalg.norm(x, dim=-1), lib.nn.functional.interpolate(x.unsqueeze(0), scale_factor=2))
        ),
        (X,),
        0,
        0,
    ),
]


@pytest.mark.parametrize(("name", "make", "arrays", "in_dims", "out_dims"), CASES, ids=[c[0] for c in CASES])
def test_rule_matches_torch_and_the_loop(
    batched_only: None,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    make: Make,
    arrays: tuple[Any, ...],
    in_dims: Any,
    out_dims: Any,
) -> None:
    if not name.startswith("per element alone"):
        _no_op_loops(monkeypatch)
    ours = _run(ds, make, arrays, in_dims=in_dims, out_dims=out_dims)
    theirs = _run(torch, make, arrays, in_dims=in_dims, out_dims=out_dims)
    _assert_close(ours, theirs, 1e-5)
    _assert_close(ours, _looped(make, arrays, in_dims=in_dims, out_dims=out_dims), 1e-6)


def _text_cnn(lib: Any, seed: int = 0) -> Any:
    """Embedding -> Conv1d -> ReLU -> causal self-attention -> mean -> Linear (the same weights in both
    libraries for one seed)."""
    nn = lib.nn
    F = nn.functional

    class TextCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(11, 8)
            self.conv = nn.Conv1d(8, 6, 3, padding=1)
            self.qkv = nn.Linear(6, 18)
            self.out = nn.Linear(6, 3)

        def forward(self, ids: Any) -> Any:
            h = F.relu(self.conv(self.emb(ids).transpose(0, 1))).transpose(0, 1)  # (L, 6)
            q, k, v = self.qkv(h).chunk(3, dim=-1)
            a = F.scaled_dot_product_attention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), is_causal=True)
            return self.out(a[0].mean(0))

    model = TextCNN()
    g = np.random.default_rng(seed)
    with lib.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(lib.tensor(g.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    return model


TOKENS = rng.integers(0, 11, (B, 7))
LABELS = rng.integers(0, 3, (B,))


def _per_sample_grads(lib: Any) -> dict[str, Any]:
    model = _text_cnn(lib)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: Any, ids: Any, t: Any) -> Any:
        logits = lib.func.functional_call(model, p, (ids,))
        return lib.nn.functional.cross_entropy(logits.unsqueeze(0), t.unsqueeze(0))

    grads = lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params, lib.tensor(TOKENS), lib.tensor(LABELS))
    return {k: v.detach().numpy() for k, v in grads.items()}


def test_per_sample_grads_of_embedding_conv1d_attention_match_torch(
    batched_modules: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_op_loops(monkeypatch)
    ours = _per_sample_grads(ds)
    theirs = _per_sample_grads(torch)
    assert set(ours) == set(theirs)
    for k in theirs:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-4, atol=1e-5, err_msg=k)


def _cnn(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 5)
    )  # fmt: skip


def test_ensemble_of_cnns_matches_torch(batched_modules: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_op_loops(monkeypatch)
    images = rng.standard_normal((5, 1, 10, 10)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        models = [_cnn(lib) for _ in range(3)]
        g = np.random.default_rng(1)
        with lib.no_grad():
            for m in models:
                for _, p in sorted(m.named_parameters()):
                    p.copy_(lib.tensor(g.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
        params, buffers = lib.func.stack_module_state(models)

        def run(p: Any, b: Any, x: Any, base: Any = models[0], lib: Any = lib) -> Any:
            return lib.func.functional_call(base, (p, b), (x,))

        results.append(lib.func.vmap(run, in_dims=(0, 0, None))(params, buffers, lib.tensor(images)).detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)


def test_an_op_without_a_rule_runs_per_element_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ruled op whose rule cannot take these arguments (einsum with an ellipsis, an embedding table with
    padding_idx) runs per element; the function itself runs once (its side effects happen once)."""
    monkeypatch.setattr(dsf, "_looped", _refuse)
    calls = []
    results = []
    for lib in (ds, torch):

        def f(x: Any, w: Any, ids: Any, lib: Any = lib) -> Any:
            calls.append(lib)
            e = lib.nn.functional.embedding(ids, w, padding_idx=0)
            return lib.einsum("...j,...j->...", e, x[: e.shape[0]]) + x.sum()

        args = (lib.tensor(X[:, :, :5]), lib.tensor(TABLES), lib.tensor(IDS[:, :3]))
        results.append(lib.func.vmap(f)(*args).detach().numpy())
    assert calls == [ds, torch]
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_per_element_op_that_draws_makes_the_function_loop() -> None:
    """Per element, a draw would come in another order than the loop's (randomness='same' and 'different'
    are then the loop's draws): such an op sends the whole function to the loop."""

    def f(x: Any) -> Any:
        return ds.nn.functional.dropout(x, 0.5) * 2

    ds.manual_seed(0)
    batched = ds.vmap(f, randomness="same")(ds.ones(3, 4))
    ds.manual_seed(0)
    saved = dsf.BATCHING
    dsf.BATCHING = False
    try:
        looped = ds.vmap(f, randomness="same")(ds.ones(3, 4))
    finally:
        dsf.BATCHING = saved
    np.testing.assert_array_equal(batched.numpy(), looped.numpy())
    assert (batched.numpy() == batched.numpy()[0]).all()


@pytest.mark.parametrize("how", ["track_running_stats=False", "replace_all_batch_norm_modules_", "batched affine"])
def test_batch_norm_with_batch_statistics_matches_torch(batched_modules: None, how: str) -> None:
    """Without running statistics to update, each element is normalized over its own N (and positions)."""
    results = []
    for lib in (ds, torch):
        if how == "track_running_stats=False":
            bn = lib.nn.BatchNorm2d(2, track_running_stats=False)
            with lib.no_grad():
                bn.weight.copy_(lib.tensor([1.5, -0.5]))
                bn.bias.copy_(lib.tensor([0.1, 0.2]))
            results.append(_numpy(lib.func.vmap(bn)(lib.tensor(IMG.reshape(B, 2, 2, 2, 9)))))
        elif how == "replace_all_batch_norm_modules_":
            model = lib.func.replace_all_batch_norm_modules_(
                lib.nn.Sequential(lib.nn.Linear(5, 3), lib.nn.BatchNorm1d(3))
            )
            with lib.no_grad():
                model[0].weight.copy_(lib.tensor(X2))
            results.append(_numpy(lib.func.vmap(model)(lib.tensor(X))))
        else:
            bn = lib.nn.BatchNorm1d(5, track_running_stats=False)
            params = {"weight": lib.tensor(VEC), "bias": lib.tensor(VEC[::-1].copy())}

            def run(p: Any, x: Any, bn: Any = bn, lib: Any = lib) -> Any:
                return lib.func.functional_call(bn, p, (x,))

            results.append(_numpy(lib.func.vmap(run)(params, lib.tensor(X))))
    _assert_close(results[0], results[1], 1e-5)


NESTED: list[tuple[str, Make, tuple[Any, ...], Any, Any, Any]] = [
    ("inner sum", lambda lib: lambda r: (r * r).sum() * r, (X,), 0, 0, 0),
    ("inner in_dims 1, out_dims 1", lambda lib: lambda r: r.softmax(0) * r.amax(), (X,), 1, 1, 0),
    ("outer in_dims -1", lambda lib: lambda r: r.cumsum(0), (X,), 0, 0, -1),
    ("inner unbatched operand", lambda lib: lambda r, w: w @ r, (X, X2.T.copy()), (1, None), -1, 0),
]


@pytest.mark.parametrize(
    ("name", "make", "arrays", "inner_in", "inner_out", "outer_in"), NESTED, ids=[n[0] for n in NESTED]
)
def test_vmap_of_vmap_runs_once_and_matches_torch(
    batched_only: None, name: str, make: Make, arrays: tuple[Any, ...], inner_in: Any, inner_out: Any, outer_in: Any
) -> None:
    """Two levels of vmap: both batches flattened into one batched call (no per-element loop)."""
    results = []
    for lib in (ds, torch):
        inner = lib.func.vmap(make(lib), in_dims=inner_in, out_dims=inner_out)
        in_dims = outer_in if len(arrays) == 1 else (outer_in, None)
        results.append(_numpy(lib.func.vmap(inner, in_dims=in_dims)(*_convert(lib, arrays))))
    _assert_close(results[0], results[1], 1e-5)


def test_grad_inside_vmap_of_vmap_matches_torch(batched_only: None) -> None:
    """Per-element, per-row gradients (two levels of batching) of a layer's weights."""
    results = []
    for lib in (ds, torch):
        w = lib.tensor(X2)

        def loss(w: Any, row: Any, lib: Any = lib) -> Any:
            return lib.tanh(w @ row).sum()

        per_row = lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0))
        results.append(_numpy(lib.func.vmap(per_row, in_dims=(None, 0))(w, lib.tensor(X3[:, :, 0]))))
    _assert_close(results[0], results[1], 1e-5)


@pytest.mark.parametrize("in_dims", [0, (0, None), (None, 0)])
def test_jvp_inside_vmap_is_batched_and_matches_torch(batched_only: None, in_dims: Any) -> None:
    results = []
    for lib in (ds, torch):
        w = lib.tensor(X2)

        def f(x: Any, w: Any = w, lib: Any = lib) -> Any:
            return lib.tanh(x @ w.T) * x.sum()

        primal, tangent = lib.tensor(VEC[:, :5] if in_dims != (None, 0) else VEC[0]), lib.tensor(VEC[::-1].copy())
        if in_dims == (0, None):
            tangent = tangent[0]

        def run(x: Any, t: Any, f: Any = f, lib: Any = lib) -> Any:
            return lib.func.jvp(f, (x,), (t,))

        results.append(_numpy(lib.func.vmap(run, in_dims=in_dims)(primal, tangent)))
    _assert_close(results[0], results[1], 1e-5)
