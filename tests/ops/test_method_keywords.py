"""Tensor methods take torch's ``other=`` keyword for their operand, as the top-level functions do."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

FLOAT_OPS = [
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "fmax", "fmin", "maximum", "minimum", "atan2",
    "arctan2", "hypot", "copysign", "logaddexp", "logaddexp2", "xlogy", "nextafter", "igamma", "igammac", "eq",
    "lt", "ge", "logical_xor", "vdot", "inner", "kron", "true_divide", "subtract", "multiply", "divide",
]  # fmt: skip
INT_OPS = ["gcd", "lcm", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"]


@pytest.mark.parametrize("name", FLOAT_OPS + INT_OPS)
@pytest.mark.parametrize("in_place", [False, True])
def test_a_methods_operand_can_be_named_other_as_in_torch(name: str, in_place: bool) -> None:
    x, y = ([1.5, 2.0, 3.0], [0.5, 2.5, 3.0]) if name in FLOAT_OPS else ([4, 6, 9], [6, 4, 1])
    method = name + "_" if in_place else name
    if not hasattr(torch.Tensor, method) or (in_place and name in ("vdot", "inner", "kron", "eq", "lt", "ge")):
        pytest.skip("torch has no such in-place method")
    ours = getattr(ds.tensor(x), method)(other=ds.tensor(y))
    theirs = getattr(torch.tensor(x), method)(other=torch.tensor(y))
    np.testing.assert_allclose(np.asarray(ours.tolist(), float), np.asarray(theirs.tolist(), float), rtol=1e-6)


def test_other_with_alpha_and_a_number_and_the_errors_of_two_spellings() -> None:
    x = ds.tensor([1.0, 2.0])
    assert x.sub(other=ds.tensor([1.0, 1.0]), alpha=2).tolist() == [-1.0, 0.0]
    assert x.mul(other=2).tolist() == [2.0, 4.0]
    assert x.atan2(other=1.0).shape == (2,)
    with pytest.raises(TypeError, match="multiple values"):
        x.atan2(x, other=x)


# Methods whose operands torch names otherwise than other= (its schemas' names): Bloom's attention calls
# alibi.baddbmm(batch1=q, batch2=k, beta=..., alpha=...). Each case: the method, the tensor it is called
# on, its positional arguments and its keywords (arrays become tensors of each library).
_R = np.random.default_rng(0)
_M = _R.standard_normal((3, 4))
_N = _R.standard_normal((4, 5))
_B1, _B2 = _R.standard_normal((2, 3, 4)), _R.standard_normal((2, 4, 5))
_V3, _V4, _V5 = _R.standard_normal(3), _R.standard_normal(4), _R.standard_normal(5)
_SPD = _M @ _M.T + 3 * np.eye(3)
_L = np.linalg.cholesky(_SPD)
_CUBE = np.arange(24.0).reshape(2, 3, 4)
_NANS = np.array([[1.0, np.nan, 2.5], [4.0, 5.0, np.nan]], np.float32)

OPERAND_CASES = [
    ("addmm", np.zeros((3, 5)), (), {"mat1": _M, "mat2": _N, "beta": 0.5, "alpha": 2.0}),
    ("addmm", np.ones((3, 5)), (_M,), {"mat2": _N}),
    ("addmm_", np.ones((3, 5)), (), {"mat1": _M, "mat2": _N, "alpha": -1.0}),
    ("addmv", np.ones(3), (), {"mat": _M, "vec": _V4, "beta": 2.0}),
    ("addmv_", np.ones(3), (), {"mat": _M, "vec": _V4}),
    ("addr", np.ones((3, 4)), (), {"vec1": _V3, "vec2": _V4, "alpha": 3.0}),
    ("addr_", np.ones((3, 4)), (), {"vec1": _V3, "vec2": _V4}),
    ("baddbmm", np.ones((2, 3, 5)), (), {"batch1": _B1, "batch2": _B2, "beta": 1.0, "alpha": 0.5}),
    ("baddbmm_", np.ones((2, 3, 5)), (), {"batch1": _B1, "batch2": _B2, "beta": 0.0}),
    ("addbmm", np.ones((3, 5)), (), {"batch1": _B1, "batch2": _B2}),
    ("addbmm_", np.ones((3, 5)), (), {"batch1": _B1, "batch2": _B2, "alpha": 2.0}),
    ("addbmm_", np.ones((3, 5)), (_B1,), {"batch2": _B2}),
    ("ger", _V3, (), {"vec2": _V4}),
    ("outer", _V3, (), {"vec2": _V4}),
    ("dot", _V4, (), {"tensor": _V4 * 2}),
    ("cholesky_solve", _M[:, :2], (), {"input2": _L, "upper": False}),
    ("cholesky_solve", _M[:, :2], (), {"input2": _L.T.copy(), "upper": True}),
    ("diag", _M, (), {"diagonal": 1}),
    ("float_power", np.abs(_V4), (), {"exponent": 2.5}),
    ("float_power_", np.abs(_V4), (), {"exponent": _V4}),
    ("hsplit", _CUBE, (), {"sections": 3}),
    ("hsplit", _CUBE, (), {"indices": [1]}),
    ("vsplit", _CUBE, (), {"indices": [1]}),
    ("vsplit", _CUBE, (), {"sections": 2}),
    ("dsplit", _CUBE, (), {"sections": 2}),
    ("dsplit", _CUBE, (), {"indices": [1, 2]}),
    ("tensor_split", _CUBE, (), {"sections": 2, "dim": 2}),
    ("tensor_split", _CUBE, (), {"indices": [1, 3], "dim": -1}),
    ("swapdims", _CUBE, (), {"dim0": 0, "dim1": 2}),
    ("swapdims_", _CUBE, (), {"dim0": 1, "dim1": 2}),
    ("swapaxes_", _CUBE, (), {"axis0": 0, "axis1": 1}),
    ("sum_to_size", _CUBE, (), {"size": (1, 3, 1)}),
    ("broadcast_to", _V4, (), {"size": (2, 3, 4)}),
    ("nansum", _NANS, (), {"dim": 1, "keepdim": True, "dtype": "float64"}),
    ("nanmean", _NANS, (), {"dtype": "float64"}),
    ("nanmean", _NANS, (), {"dim": 0, "keepdim": True, "dtype": "float64"}),
]


def _lib_value(lib: object, value: object) -> object:
    if isinstance(value, np.ndarray):
        return lib.from_numpy(value.copy())  # type: ignore[attr-defined]  (its dtype kept, as torch's)
    if isinstance(value, str):  # a dtype's name
        return getattr(lib, value)
    return value


def _as_arrays(result: object) -> list[np.ndarray]:
    parts = result if isinstance(result, (tuple, list)) else (result,)
    return [np.asarray(p.detach().numpy() if hasattr(p, "detach") else p) for p in parts]


@pytest.mark.parametrize(("name", "self_value", "args", "kwargs"), OPERAND_CASES, ids=[c[0] for c in OPERAND_CASES])
def test_methods_take_torchs_operand_keywords(name: str, self_value: np.ndarray, args: tuple, kwargs: dict) -> None:
    results = []
    for lib in (ds, torch):
        x = lib.from_numpy(self_value.copy())
        out = getattr(x, name)(
            *[_lib_value(lib, a) for a in args], **{k: _lib_value(lib, v) for k, v in kwargs.items()}
        )
        if name.endswith("_"):
            assert out is x  # in place: the tensor itself comes back, written
        results.append(_as_arrays(out))
    ours, theirs = results
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_cases_cover_every_operand_name_in_torchs_schemas() -> None:
    # torch's own record of each method's parameter names: a name the cases above miss, or one torch adds
    # to one of these methods, fails here
    schemas = getattr(torch._C, "_jit_get_schemas_for_operator", None)
    if schemas is None:
        pytest.skip("this torch does not list its operator schemas")
    # out=, torch 2.13's out_dtype= on the products, and the 0-d tensor form of tensor_split (not supported)
    ignored = {"self", "out", "out_dtype", "memory_format", "tensor_indices_or_sections"}
    named: dict[str, set[str]] = {}
    for name, _, _, kwargs in OPERAND_CASES:
        named.setdefault(name, set()).update(kwargs)
    for name, ours in named.items():
        theirs = {
            a.name
            for s in schemas(f"aten::{name}")
            if s.arguments and s.arguments[0].name == "self" and "out" not in s.overload_name
            for a in s.arguments
        } - ignored
        assert ours <= theirs, (name, sorted(ours - theirs))
        assert theirs - {"beta", "alpha", "dim"} <= ours, (name, sorted(theirs - ours))


def test_operand_keywords_record_the_gradients_torch_computes() -> None:
    grads = []
    for lib in (ds, torch):
        x, q, k = (lib.from_numpy(a.copy()).requires_grad_() for a in (np.ones((2, 3, 5)), _B1, _B2))
        (x.baddbmm(batch1=q, batch2=k, beta=0.5, alpha=2.0) ** 2).sum().backward()
        grads.append([t.grad.numpy() for t in (x, q, k)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_an_operand_given_twice_or_a_later_one_alone_is_refused() -> None:
    x, m, n = ds.zeros(3, 5), ds.tensor(_M), ds.tensor(_N)
    with pytest.raises(ds.ArgumentTypeError, match="multiple values for argument 'mat1'"):
        x.addmm(m, n, mat1=m)
    with pytest.raises(ds.ArgumentTypeError, match="expected operands mat1 before 'mat2'"):
        x.addmm(mat2=n)
    with pytest.raises(ds.ArgumentTypeError, match="size twice"):
        ds.ones(4).broadcast_to((2, 4), size=(2, 4))
    with pytest.raises(TypeError):  # torch refuses the same calls
        torch.zeros(3, 5).addmm(torch.tensor(_M), torch.tensor(_N), mat1=torch.tensor(_M))
