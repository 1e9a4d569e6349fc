"""NumPy arrays and foreign tensors keep torch's classic integer dtypes (int8, int16, int32, int64, uint8)
and float16 in ``ds.tensor`` / ``ds.as_tensor``, as torch does; Python ints stay int64. Tensors of those
dtypes then compute as torch's do (promotion, indexing, embedding, losses), checked against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

KEPT = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.float16]


def _dtype_name(dtype: object) -> str:
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------------- construction
@pytest.mark.parametrize("np_dtype", KEPT, ids=lambda t: np.dtype(t).name)
def test_tensor_keeps_numpy_dtype_as_torch(np_dtype):
    arr = np.array([[0, 3], [200 if np_dtype == np.uint8 else 7, 1]], dtype=np_dtype)
    expected = _dtype_name(torch.tensor(arr).dtype)
    t = ds.tensor(arr)
    assert t.dtype.name == expected == np.dtype(np_dtype).name
    np.testing.assert_array_equal(t.numpy(), arr)
    assert not np.shares_memory(t.numpy(), arr)  # ds.tensor copies, as torch.tensor


@pytest.mark.parametrize("np_dtype", KEPT, ids=lambda t: np.dtype(t).name)
def test_as_tensor_keeps_numpy_dtype_as_torch(np_dtype):
    arr = np.array([1, 2, 3], dtype=np_dtype)
    assert ds.as_tensor(arr).dtype.name == _dtype_name(torch.as_tensor(arr).dtype)


@pytest.mark.host_only  # sharing the caller's host memory: a device tensor is a copy by design
@pytest.mark.parametrize("np_dtype", KEPT, ids=lambda t: np.dtype(t).name)
def test_as_tensor_shares_an_array_whose_dtype_it_keeps(np_dtype):
    arr = np.array([1, 2, 3], dtype=np_dtype)
    t = ds.as_tensor(arr)
    arr[0] = 5  # shared memory, as torch.as_tensor shares it
    assert t.tolist()[0] == 5


@pytest.mark.parametrize("np_dtype", KEPT, ids=lambda t: np.dtype(t).name)
def test_foreign_tensor_and_numpy_scalar_keep_dtype_as_torch(np_dtype):
    ref = torch.tensor(np.array([1, 2], dtype=np_dtype))
    assert ds.tensor(ref).dtype.name == _dtype_name(ref.dtype)
    scalar = np.dtype(np_dtype).type(3)
    assert ds.tensor(scalar).dtype.name == _dtype_name(torch.tensor(scalar).dtype)
    assert ds.tensor([scalar, scalar]).dtype.name == _dtype_name(torch.tensor([scalar, scalar]).dtype)


@pytest.mark.parametrize("data", [[1, 2], 3, [[1], [2]], (4, 5)], ids=["list", "int", "nested", "tuple"])
def test_python_ints_stay_int64_as_torch(data):
    assert _dtype_name(torch.tensor(data).dtype) == "int64"
    assert ds.tensor(data).dtype == np.int64
    assert ds.as_tensor(data).dtype == np.int64


@pytest.mark.parametrize("np_dtype", [np.uint16, np.uint32, np.uint64], ids=lambda t: np.dtype(t).name)
def test_wide_unsigned_arrays_become_int64(np_dtype):
    # downslope has no uint16/uint32/uint64 dtypes (torch keeps them): int64 holds their values
    arr = np.array([0, 1, 60000], dtype=np_dtype)
    for t in (ds.tensor(arr), ds.as_tensor(arr)):
        assert t.dtype == np.int64
        assert t.tolist() == torch.tensor(arr).tolist()


def test_uint64_past_int64_range_is_refused():
    with pytest.raises(ds.errors.ArgumentError, match="uint64"):
        ds.tensor(np.array([2**63], dtype=np.uint64))


def test_float_arrays_keep_the_float32_policy_and_bool_stays_bool():
    assert ds.tensor(np.array([1.5])).dtype == np.float32  # torch: float64; downslope's documented policy
    assert ds.tensor(np.array([True])).dtype == np.bool_
    assert ds.tensor(np.array([1, 2], np.uint8), dtype=ds.float32).dtype == np.float32  # dtype= wins


# ---------------------------------------------------------------------- computing with them
U8 = np.array([200, 3, 255], np.uint8)
I32 = np.array([0, 2, 1], np.int32)
I16 = np.array([-1000, 5, 7], np.int16)
I8 = np.array([-3, 2, 1], np.int8)
ARITHMETIC = {
    "+ int64 tensor": lambda L, t: t + L.tensor([1, 2, 3]),
    "+ 100": lambda L, t: t + 100,  # uint8 wraps around, as torch's
    "* 2.5": lambda L, t: t * 2.5,
    "/ 255": lambda L, t: t / 255,
    ".float() / 255": lambda L, t: t.float() / 255,
    "+ uint8 tensor": lambda L, t: t + L.tensor(U8),
    "+ float32 tensor": lambda L, t: t + L.tensor(np.array([0.5, 1.5, 2.5], np.float32)),
    "sum": lambda L, t: t.sum(),
    "cumsum": lambda L, t: t.cumsum(0),
    "max": lambda L, t: t.max(),
    "// 2": lambda L, t: t // 2,
    "- 1": lambda L, t: t - 1,
    "* itself": lambda L, t: t * t,
    "** 2": lambda L, t: t**2,
    ".long()": lambda L, t: t.long(),
    "where": lambda L, t: L.where(t > 2, t, 0),
    "cat int64": lambda L, t: L.cat([t, L.tensor([1, 2])]),
}


@pytest.mark.parametrize("values", [U8, I32, I16, I8], ids=["uint8", "int32", "int16", "int8"])
@pytest.mark.parametrize("op", list(ARITHMETIC))
def test_integer_arithmetic_matches_torch(values, op):
    f = ARITHMETIC[op]
    expected = f(torch, torch.tensor(values))
    got = f(ds, ds.tensor(values))
    assert got.dtype.name == _dtype_name(expected.dtype)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


IDS = np.array([0, 2, 1], np.int32)  # torch takes int32 indices where it takes int64 ones


def _index_ops(ids_dtype):
    ids = IDS.astype(ids_dtype)
    return {
        "x[ids]": lambda L, x: x[L.tensor(ids)],
        "x[:, ids]": lambda L, x: x[:, L.tensor(ids)],
        "index_select": lambda L, x: x.index_select(0, L.tensor(ids)),
        "gather": lambda L, x: x.gather(1, L.tensor(ids).reshape(3, 1)),
        "embedding": lambda L, x: (TF if L is torch else F).embedding(L.tensor(ids), x),
        "index_add": lambda L, x: L.zeros(3, 4, dtype=L.float64).index_add(0, L.tensor(ids), x),
    }


@pytest.mark.parametrize("op", list(_index_ops(np.int32)))
def test_int32_indices_match_torch_with_gradients(op):
    x = np.random.default_rng(0).standard_normal((3, 4))
    f = _index_ops(np.int32)[op]
    results = []
    for lib in (torch, ds):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        out = f(lib, xt)
        (out * out).sum().backward()
        results.append((out.detach().numpy(), xt.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)


@pytest.mark.parametrize("target_dtype", [np.int64, np.uint8], ids=["int64", "uint8"])
def test_class_targets_torch_accepts_match_torch(target_dtype):
    # torch's nll_loss / cross_entropy take Long and Byte targets
    logits = np.random.default_rng(1).standard_normal((4, 3))
    target = np.array([1, 0, 2, 2], target_dtype)
    results = []
    for lib, fn in ((torch, TF), (ds, F)):
        z = lib.tensor(logits, dtype=lib.float64, requires_grad=True)
        loss = fn.cross_entropy(z, lib.tensor(target)) + fn.nll_loss(fn.log_softmax(z, 1), lib.tensor(target))
        loss.backward()
        results.append((loss.item(), z.grad.numpy()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)


def test_uint8_image_scaling_as_a_torch_loader_writes_it():
    img = np.full((2, 2), 200, np.uint8)
    for lib in (torch, ds):
        t = lib.tensor(img)
        t = t.float() / 255 if t.dtype == lib.uint8 else t
        assert t.max().item() == pytest.approx(200 / 255, rel=1e-6)
