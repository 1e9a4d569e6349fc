"""Tensor creation, the dtype policy, conversions, factories and the errors bad input gets."""

from __future__ import annotations

import copy
import doctest
import importlib
import pickle
import re

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------- dtype policy
@pytest.mark.parametrize(
    "data",
    [[1.0, 2.0], [[0.5], [1.5]], 1.5, np.array([1.0, 2.0]), np.float64(2.0)],
    ids=["list", "nested list", "python float", "float64 array", "np.float64"],
)
def test_floating_data_defaults_to_float32(data):
    t = ds.tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32))


@pytest.mark.parametrize("data", [[1, 2], 3, np.array([1, 2], dtype=np.uint16)])
def test_python_integers_and_unsigned_wide_arrays_become_int64(data):
    assert ds.tensor(data).dtype == np.int64


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int16, np.float16])
def test_arrays_of_torch_s_narrow_dtypes_keep_them_as_torch(dtype):
    array = np.array([1, 2], dtype=dtype)
    assert ds.tensor(array).dtype == np.dtype(dtype)
    assert str(torch.tensor(array).dtype).replace("torch.", "") == np.dtype(dtype).name


def test_bool_stays_bool_and_explicit_dtype_wins():
    assert ds.tensor([True, False]).dtype == np.bool_
    assert ds.tensor([1.0, 2.0], dtype="float64").dtype == np.float64
    assert ds.tensor([1, 2], dtype=ds.float32).dtype == np.float32
    assert ds.tensor([1.5], dtype=float).dtype == np.float64  # as torch: Python float is float64
    assert ds.tensor([1.5], dtype=int).dtype == np.int64


def test_float32_tensor_with_python_and_numpy_scalars_stays_float32():
    x = ds.tensor([1.0, 2.0])
    for other in (2.0, 3, np.float64(0.5), np.float32(0.5), np.int64(2), np.array([1.0, 2.0])):
        for out in (x * other, other * x, x + other, other - x, x / other, x**2.0):
            assert out.dtype == np.float32, (type(other), out)


def test_mixed_int_and_float_follow_torch_promotion():
    cases = [
        (lambda m: m.tensor([1, 2]) + m.tensor([0.5, 0.5]), np.float32),
        (lambda m: m.tensor([1, 2]) * 2.5, np.float32),
        (lambda m: m.tensor([1, 2]) * 2, np.int64),
        (lambda m: m.tensor([1, 2]) / 2, np.float32),
        (lambda m: m.tensor([1, 2]) * m.tensor([True, False]), np.int64),
        (lambda m: m.tensor([1.0, 2.0], dtype=m.float64) + 1.5, np.float64),
        (lambda m: m.tensor([1.0, 2.0], dtype=m.float64) * m.tensor([1.0, 2.0]), np.float64),
    ]
    for make, expected in cases:
        ours, theirs = make(ds), make(torch)
        assert ours.dtype == expected
        assert str(theirs.dtype) == f"torch.{np.dtype(expected)}"
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())


def test_set_default_dtype_changes_new_floating_tensors():
    previous = ds.get_default_dtype()
    try:
        ds.set_default_dtype("float64")
        assert ds.tensor([1.0]).dtype == np.float64
        assert ds.zeros(2).dtype == np.float64
        with pytest.raises(TypeError, match="floating"):
            ds.set_default_dtype("int64")
    finally:
        ds.set_default_dtype(previous)
    assert ds.tensor([1.0]).dtype == np.float32


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad",
    ["abc", ["a", "b"], object(), [[1, 2], [3]], [1.0, None], None, {"a": 1}, {1, 2}],
    ids=["string", "strings", "object", "ragged", "None inside", "None", "dict", "set"],
)
def test_bad_data_is_refused_with_type_error(bad):
    with pytest.raises(TypeError, match="cannot make a tensor"):
        ds.tensor(bad)


@pytest.mark.parametrize(
    "bad",
    [np.array(["a", "b"]), np.array([b"x"]), np.array([1, 2], dtype=object), np.array(["2020-01-01"], dtype="M8[D]")],
    ids=["str array", "bytes array", "object array", "datetime array"],
)
def test_numpy_arrays_of_strings_objects_or_dates_are_refused(bad):
    with pytest.raises(TypeError, match=re.escape(f"data of dtype {bad.dtype}")):
        ds.tensor(bad)


@pytest.mark.parametrize("dtype", [str, "U3", object, "object", bytes])
def test_string_and_object_dtypes_are_refused_at_creation(dtype):
    for make in (
        lambda: ds.tensor([1, 2], dtype=dtype),
        lambda: ds.zeros(2, dtype=dtype),
        lambda: ds.ones(2, dtype=dtype),
    ):
        with pytest.raises(TypeError, match="unsupported dtype .*floats, integers or booleans"):
            make()
    with pytest.raises(TypeError, match="unsupported dtype"):
        ds.tensor([1.0]).astype(dtype)


def test_combining_a_tensor_with_a_string_is_refused():
    with pytest.raises(TypeError, match="str"):
        ds.tensor([1.0]) + "a"


def test_unknown_dtype_is_refused():
    with pytest.raises(TypeError, match="dtype"):
        ds.tensor([1.0], dtype="complex32")  # NumPy has no half-precision complex
    with pytest.raises(TypeError, match="dtype"):
        ds.tensor([1.0], dtype="not-a-dtype")


def test_a_dtype_another_library_registered_with_numpy_is_refused():
    # ml_dtypes (imported by onnx and others) registers complex32 with NumPy as a complex kind, and
    # bfloat16/float8 types: NumPy's ops do not compute in them, so tensors refuse them by any name
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in ("complex32", ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn):
        with pytest.raises(TypeError, match="unsupported dtype"):
            ds.tensor([1.0], dtype=dtype)


# ---------------------------------------------------------------------- copies and sharing
@pytest.mark.host_only  # from_numpy shares a host array's memory; on a device it is a copy
def test_tensor_copies_and_from_numpy_shares():
    a = np.array([1.0, 2.0], dtype=np.float32)
    copied = ds.tensor(a)
    shared = ds.from_numpy(a)
    a[0] = 9.0
    assert copied.numpy()[0] == 1.0
    assert shared.numpy()[0] == 9.0
    assert ds.from_numpy(np.zeros(2)).dtype == np.float64  # from_numpy keeps the dtype, like torch
    with pytest.raises(TypeError, match="numpy.ndarray"):
        ds.from_numpy([1.0])


def test_tensor_from_tensor_copies_and_as_tensor_does_not():
    t = ds.tensor([1.0, 2.0])
    assert ds.as_tensor(t) is t
    assert ds.as_tensor(t, dtype="float64").dtype == np.float64
    c = ds.tensor(t)
    c.array[0] = 5.0
    assert t.numpy()[0] == 1.0


def test_tensor_from_list_of_tensors():
    t = ds.tensor([ds.tensor(1.0), ds.tensor(2.0)])
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


# ---------------------------------------------------------------------- factories
def test_factories_match_torch():
    assert ds.zeros(2, 3).shape == (2, 3) and ds.zeros((2, 3)).shape == (2, 3)
    assert ds.ones(4).dtype == np.float32 and ds.ones(4, dtype="float64").dtype == np.float64
    np.testing.assert_array_equal(ds.ones(2, 2).numpy(), torch.ones(2, 2).numpy())
    for fill in (1.5, 3, True):
        ours, theirs = ds.full((2,), fill), torch.full((2,), fill)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert str(theirs.dtype) == f"torch.{ours.dtype}"
    assert ds.full((2,), 3, dtype="float64").dtype == np.float64
    np.testing.assert_array_equal(ds.arange(5).numpy(), torch.arange(5).numpy())
    assert ds.arange(5).dtype == np.int64
    np.testing.assert_allclose(ds.arange(0, 1, 0.25).numpy(), torch.arange(0, 1, 0.25).numpy())
    assert ds.arange(0, 1, 0.25).dtype == np.float32
    x = ds.tensor([[1, 2], [3, 4]])
    assert ds.zeros_like(x).dtype == np.int64 and ds.ones_like(ds.ones(2)).dtype == np.float32
    assert ds.zeros(3, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="shape"):
        ds.zeros(-1)


def test_random_factories_are_seeded_float32_and_distributed():
    ds.manual_seed(123)
    a, u = ds.randn(1000), ds.rand(1000)
    ds.manual_seed(123)
    np.testing.assert_array_equal(ds.randn(1000).numpy(), a.numpy())
    np.testing.assert_array_equal(ds.rand(1000).numpy(), u.numpy())
    assert a.dtype == np.float32 and u.dtype == np.float32
    assert ds.randn(2, dtype="float64").dtype == np.float64
    assert abs(float(a.mean())) < 0.15 and 0.85 < float(a.std()) < 1.15
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    for factory, torch_factory in ((ds.randn, torch.randn), (ds.rand, torch.rand)):
        with pytest.raises(RuntimeError):
            torch_factory(3, dtype=torch.int64)
        with pytest.raises(TypeError, match="floating"):
            factory(3, dtype="int64")  # would silently truncate the samples


# ---------------------------------------------------------------------- python protocol
def test_python_protocol():
    x = ds.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert len(x) == 2 and x.size() == (2, 2) and x.size(1) == 2 and x.numel() == 4 and x.dim() == 2
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert float(ds.tensor(2.5)) == 2.5 and int(ds.tensor(3)) == 3 and ds.tensor([7.0]).item() == 7.0
    assert bool(ds.tensor(1.0)) and not bool(ds.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        x.item()
    with pytest.raises(TypeError, match="0-d"):
        len(ds.tensor(1.0))
    assert np.asarray(x).dtype == np.float32 and np.asarray(x, dtype=np.float64).dtype == np.float64
    assert {x: 1}[x] == 1  # hashable by identity


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")  # torch's, not ours
@pytest.mark.host_only  # np.asarray shares a host tensor's memory; of a device tensor it is a copy
def test_np_array_copies_like_for_torch_and_np_asarray_shares():
    ours, theirs = ds.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])
    for t in (ours, theirs):
        np.array(t)[0] = 5.0
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.numpy()[0] == 1.0
    np.asarray(ours)[1] = 7.0  # asarray may share, as documented for .numpy()
    assert ours.numpy()[1] == 7.0
    assert np.array(ours, dtype=np.float64).dtype == np.float64


def test_iteration_gives_rows_with_gradients_and_refuses_0d():
    x = ds.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert len(rows) == 2 and rows[1].shape == (2,)
    (rows[0] * 2 + rows[1]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 2.0], [1.0, 1.0]])
    with pytest.raises(TypeError):
        list(torch.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        list(ds.tensor(1.0))


def test_comparisons_give_bool_tensors_without_grad():
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    t = torch.tensor([1.0, 2.0, 3.0])
    for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        ours = getattr(x, op)(2.0)
        assert ours.dtype == np.bool_ and not ours.requires_grad
        np.testing.assert_array_equal(ours.numpy(), getattr(t, op)(2.0).numpy())


def test_argmax_argmin_match_torch():
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    x, t = ds.tensor(a), torch.tensor(a)
    assert x.argmax().item() == t.argmax().item()
    np.testing.assert_array_equal(x.argmax(1).numpy(), t.argmax(1).numpy())
    np.testing.assert_array_equal(x.argmin(dim=0, keepdim=True).numpy(), t.argmin(dim=0, keepdim=True).numpy())
    np.testing.assert_array_equal(x.argmax(axis=1).numpy(), a.argmax(axis=1))


def test_repr_shows_dtype_and_grad_state():
    assert repr(ds.tensor([1.0, 2.0], device="cpu")) == "tensor([1., 2.])"
    assert "dtype=float64" in repr(ds.tensor([1.0], dtype="float64"))
    assert repr(ds.tensor([1, 2], device="cpu")) == "tensor([1, 2])"
    assert "requires_grad=True" in repr(ds.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward0>" in repr(ds.tensor([1.0], requires_grad=True) * 2)


def test_numpy_ufunc_on_tensor_does_not_silently_drop_the_graph():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    out = np.ones(2) * x  # NumPy defers to Tensor.__rmul__
    assert isinstance(out, ds.Tensor) and out.requires_grad and out.dtype == np.float32
    with pytest.raises(RuntimeError, match="requires grad"):  # as torch: the gradient would be lost
        np.exp(x)
    with ds.no_grad():
        assert isinstance(np.exp(x), ds.Tensor)
    sd = ds.nn.Linear(3, 2).state_dict()  # detached tensors: NumPy's functions work on them, as in torch
    assert isinstance(np.abs(sd["weight"]), ds.Tensor) and not bool(np.isnan(sd["weight"]).any())
    assert float(np.abs(sd["weight"] - np.zeros((2, 3))).max()) == float(sd["weight"].abs().max())


def test_shape_helpers_and_aliases():
    x = ds.randn(2, 3, 4)
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3) and x.transpose().shape == (4, 3, 2)
    assert x.view(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6) and x.reshape(-1).shape == (24,)
    with pytest.raises(TypeError, match="permute"):
        x.transpose(0, 1, 2)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0, 1)
    with pytest.raises(IndexError, match="unsqueeze"):
        x.unsqueeze(5)
    assert x.amax(1).shape == (2, 4) and x.amin().shape == ()


@pytest.mark.host_only  # the examples print CPU tensors (a device tensor's repr names its device)
@pytest.mark.parametrize("module", ["downslope.tensor", "downslope"])
def test_docstring_examples_run(module):
    # pytest also collects them (--doctest-modules over src/downslope); this keeps them checked in this file's run
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_setitem_under_no_grad_matches_torch_and_bad_assignments_name_the_shape():
    ours, theirs = ds.zeros(4, 3), torch.zeros(4, 3)
    mask = np.array([True, False, True, False])
    for index, value in [((1, 2), 5.0), (slice(0, 2), 1.5), (mask, -1.0), ([0, 3], 2.0), ((slice(None), 0), 7.0)]:
        ours[index] = value
        theirs[torch.from_numpy(index) if isinstance(index, np.ndarray) else index] = value
    ours[ds.tensor([False, True, False, False])] = ds.tensor([9.0, 8.0, 7.0])
    theirs[torch.tensor([False, True, False, False])] = torch.tensor([9.0, 8.0, 7.0])
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(IndexError, match=r"shape \(4, 3\)"):
        ours[np.array([True, False])] = 1.0  # a mask of the wrong length
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(4, 3\)"):
        ours[0] = ds.ones(2)
    with pytest.raises(IndexError, match=r"shape \(4, 3\)"):
        ours[9] = 1.0


def test_to_accepts_the_cpu_device_and_refuses_others():
    x = ds.tensor([1.0, 2.0], device="cpu")
    assert x.to("cpu") is x
    assert x.to("float64").dtype == np.float64
    assert x.to(ds.float64, device="cpu").dtype == np.float64
    if not ds.cuda.is_available():
        with pytest.raises(RuntimeError, match="is not available"):
            x.to("cuda")


def test_legacy_constructor_with_sizes_as_in_old_pytorch_code():
    torch = pytest.importorskip("torch")
    for args in [(3, 4), (2, 1, 5)]:
        ours, theirs = ds.Tensor(*args), torch.Tensor(*args)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.float32
        assert not ours.numpy().any()  # zeros (torch leaves the memory uninitialised)
    assert ds.Tensor().shape == tuple(torch.Tensor().shape) == (0,)
    assert ds.Tensor([1.5, 2.0]).tolist() == [1.5, 2.0]
    w = ds.nn.Parameter(ds.Tensor(2, 3))
    assert w.shape == (2, 3) and w.requires_grad
    with pytest.raises(TypeError, match="integer sizes"):
        ds.Tensor(2, 3.5)


def test_legacy_typed_constructors_as_in_old_pytorch_code():
    torch = pytest.importorskip("torch")
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ByteTensor", "BoolTensor"):
        for args in [([1, 0, 2],), (2, 3)]:
            ours, theirs = getattr(ds, name)(*args), getattr(torch, name)(*args)
            assert ours.shape == tuple(theirs.shape)
            assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
            if len(args) == 1:
                assert ours.tolist() == theirs.tolist()
    assert ds.Tensor([1, 2]).dtype == torch.Tensor([1, 2]).numpy().dtype == np.float32


def test_type_takes_old_pytorchs_tensor_types():
    x = ds.tensor([1.5, 2.5])
    assert x.type(ds.LongTensor).tolist() == [1, 2] and x.type(ds.DoubleTensor).dtype == np.float64
    assert x.type() == "torch.FloatTensor" and x.type("torch.IntTensor").dtype == np.int32


def test_type_of_the_tensor_class_is_the_default_float_as_in_torch():
    torch = pytest.importorskip("torch")
    # `Tensor = torch.cuda.FloatTensor if cuda else torch.Tensor; batch.type(Tensor)` in GAN scripts
    for data in ([1, 2], [1.5, 2.5]):
        for spelling in (lambda lib: lib.Tensor, lambda lib: "torch.Tensor"):
            ours = ds.tensor(data, dtype=ds.float64 if isinstance(data[0], float) else None).type(spelling(ds))
            theirs = torch.tensor(data, dtype=torch.float64 if isinstance(data[0], float) else None)
            theirs = theirs.type(spelling(torch))
            assert str(ours.dtype) == str(theirs.dtype)[6:] and ours.tolist() == theirs.tolist()


def test_view_shares_memory_and_refuses_what_only_a_copy_could_give():
    torch = pytest.importorskip("torch")
    x = ds.zeros(2, 3)
    x.view(6)[1] = 7.0  # a write through the view reaches the tensor
    assert x.tolist() == [[0.0, 7.0, 0.0], [0.0, 0.0, 0.0]]
    assert x.view(-1, 2).shape == (3, 2) and x.view((3, 2)).shape == (3, 2)
    for make in (lambda lib: lib.zeros(3, 4).t(), lambda lib: lib.zeros(4, 3)[::2]):
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            make(torch).view(-1)
        with pytest.raises(ds.ShapeError, match=r"view size is not compatible.*viewed as \(\d+,\).*Use \.reshape"):
            make(ds).view(-1)
        assert make(ds).reshape(-1).shape == tuple(make(torch).reshape(-1).shape)  # reshape copies instead
    assert ds.tensor([1.0]).view(ds.int32).tolist() == torch.tensor([1.0]).view(torch.int32).tolist()


def test_view_of_a_convolutions_output_works_as_in_torch():
    # channel-major in memory here, contiguous in torch: x.view(N, -1) (LeNet's flatten) must work
    conv = ds.nn.Conv2d(1, 4, 3)
    x = ds.randn(2, 1, 6, 6, requires_grad=True)
    y = conv(x)
    flat = y.view(2, -1)
    flat.sum().backward()
    assert flat.shape == (2, 64) and x.grad.shape == (2, 1, 6, 6)
    flat.detach()[0, 0] = 100.0  # the view shares y's memory
    assert y[0, 0, 0, 0].item() == 100.0
    assert conv(x).detach().view(2, -1).shape == (2, 64)  # shared with the graph's tensor: viewed through a copy


def _both(program):
    """Run ``program(lib)`` with downslope and with torch; return both results as nested lists."""
    torch = pytest.importorskip("torch")

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(u) for u in v]
        return v.tolist() if hasattr(v, "tolist") else v

    return plain(program(ds)), plain(program(torch))


def _element_writes(lib):
    p = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    with lib.no_grad():
        p.mul_(3)
        p[0].fill_(7)  # one element: a 0-d view, as in torch (NumPy alone gives a copy)
    x = lib.arange(4.0)
    e = x[1]
    e += 10
    grid = lib.zeros(2, 3)
    grid[1, 2].add_(5)
    for row in grid:
        row[0].fill_(9)
    return [p.detach(), x, grid]


def _element_writes_in_a_graph(lib):
    a = lib.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = a * 2
    y[1, 2].mul_(10)
    y.diagonal().zero_()  # a view too
    (y * y).sum().backward()
    return [a.grad]


def _operators_in_place(lib):
    ints = lib.arange(12).reshape(3, 4)
    view = ints[1:]
    view //= 2
    alias = ints
    alias %= 3
    bits = lib.tensor([1, 2, 3])
    bits <<= 1
    bits ^= lib.tensor([1, 1, 1])
    bits |= lib.tensor([8, 0, 0])
    bits &= lib.tensor([15, 15, 15])
    bits >>= 1
    column = lib.arange(12.0).reshape(3, 4) + 1
    column[:, 1].neg_()  # NumPy 2.4's negative(out=) on a strided view writes wrong values
    return [ints, bits, column]


@pytest.mark.parametrize("program", [_element_writes, _element_writes_in_a_graph, _operators_in_place])
def test_in_place_writes_through_elements_views_and_operators_match_torch(program):
    ours, theirs = _both(program)
    assert ours == theirs


@pytest.mark.host_only  # on a device a 0-d index tensor stays an index array: reading it would wait for the device
def test_a_zero_d_integer_tensor_indexes_like_an_int():
    ours, theirs = _both(lambda lib: _zero_d_index(lib))
    assert ours == theirs


def _zero_d_index(lib):
    grid = lib.zeros(2, 3)
    grid[lib.tensor(0)].fill_(1)  # a view of the row, as with grid[0]
    return grid


def test_in_place_semantics_at_the_edges_match_torch():
    torch = pytest.importorskip("torch")
    for lib in (ds, torch):
        a = lib.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        y = a * 2
        y.copy_(y)  # a no-op: the gradient is y's
        (y * y).sum().backward()
        assert a.grad.tolist() == (8 * np.arange(6.0).reshape(2, 3)).tolist()
        with pytest.raises(RuntimeError, match="single memory location"):
            y = a * 2
            y.mul_(y[0])  # the operand is a view of the tensor written
        flags = lib.tensor([True, False])
        with pytest.raises(RuntimeError if lib is torch else TypeError, match="can't be cast"):
            flags |= lib.tensor([2, 0])


def test_an_index_changed_in_place_after_the_forward_does_not_move_the_gradient():
    # torch refuses the backward (the saved index changed); downslope saved a copy and gives the
    # gradient of what the forward computed
    a = ds.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    index = ds.tensor([0, 2])
    picked = a[index]
    index.fill_(1)
    picked.sum().backward()
    assert a.grad.sum(1).tolist() == [4.0, 0.0, 4.0]


def test_no_grad_on_a_generator_function_covers_its_body():
    torch = pytest.importorskip("torch")
    for lib in (ds, torch):
        w = lib.ones(3, requires_grad=True)

        @lib.no_grad()
        def values(w=w):
            yield w * 2

        assert not next(values()).requires_grad
        assert (w * 2).requires_grad  # the caller's mode is untouched


@pytest.mark.host_only  # sharing the caller's NumPy array is a host matter
def test_as_tensor_shares_an_array_it_keeps_the_dtype_of():
    kept = np.zeros(2, np.float32)
    shared = ds.as_tensor(kept)
    kept[0] = 5
    assert shared.tolist() == [5.0, 0.0]
    doubles = np.zeros(2)
    converted = ds.as_tensor(doubles)  # float64 becomes float32 (the library's default): a copy
    doubles[0] = 5
    assert converted.tolist() == [0.0, 0.0] and converted.dtype == np.float32


def test_div_rounding_in_place_detach_in_place_and_inference_mode_false_match_torch():
    def program(lib):
        floats, ints = lib.tensor([7.0, -7.0]), lib.tensor([7, -7])
        floats.div_(2, rounding_mode="floor")
        ints.div_(2, rounding_mode="trunc")
        a = lib.ones(2, requires_grad=True)
        with lib.inference_mode(False):
            kept = (a * 2).requires_grad
        with lib.inference_mode():
            off = (a * 2).requires_grad
        y = a * 2
        y.detach_()
        return [floats, ints, kept, off, y.requires_grad, y.grad_fn is None]

    ours, theirs = _both(program)
    assert ours == theirs


# ---------------------------------------------------------------------- pickling, copying and DLPack, as torch's tensors
def test_a_pickled_tensor_carries_values_and_requires_grad_not_its_graph() -> None:
    import pickle

    torch = pytest.importorskip("torch")
    x = ds.ones(3, requires_grad=True)
    y = x
    for _ in range(3000):  # a long history: pickling it whole would recurse past Python's limit
        y = y * 1.0001
    back = pickle.loads(pickle.dumps(y))
    ref = pickle.loads(pickle.dumps(torch.ones(3, requires_grad=True) * 2))
    assert (back.requires_grad, back.is_leaf, back.grad_fn) == (ref.requires_grad, ref.is_leaf, None)
    np.testing.assert_array_equal(back.detach().numpy(), y.detach().numpy())
    assert len(pickle.dumps(y)) < 1000
    x.grad = ds.ones(3)
    assert pickle.loads(pickle.dumps(x)).grad is None  # as torch: .grad is not pickled
    p = pickle.loads(pickle.dumps(ds.nn.Parameter(ds.ones(2))))
    assert type(p) is ds.nn.Parameter and p.requires_grad


def test_a_deep_copy_keeps_a_leafs_grad_and_shared_objects() -> None:
    import copy

    x = ds.ones(3, requires_grad=True)
    x.grad = ds.full((3,), 2.0)
    c = copy.deepcopy(x)
    assert (
        c.grad is not None
        and c.grad.tolist() == [2.0, 2.0, 2.0]
        and not np.shares_memory(c.detach().numpy(), x.detach().numpy())
    )
    lin = ds.nn.Linear(2, 2)
    lin.tied = lin.weight
    twin = copy.deepcopy(lin)
    assert twin.tied is twin.weight and twin.weight is not lin.weight
    y = copy.deepcopy(x * 2)  # an intermediate comes back as a leaf with its values
    assert y.is_leaf and y.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.host_only  # DLPack exchange with CPU torch: a host array by design
def test_dlpack_shares_memory_with_torch_both_ways() -> None:
    torch = pytest.importorskip("torch")
    t = ds.arange(6.0).reshape(2, 3)
    torch.from_dlpack(t)[0, 0] = 100.0
    assert t[0, 0].item() == 100.0
    x = torch.arange(4.0)
    d = ds.from_dlpack(x)
    x[1] = 9.0
    assert d.tolist() == [0.0, 9.0, 2.0, 3.0]
    with pytest.raises(ds.DownslopeError, match="requires grad"):
        torch.from_dlpack(ds.ones(2, requires_grad=True))
    with pytest.raises(ds.DownslopeError, match="__dlpack__"):
        ds.from_dlpack([1, 2])


@pytest.mark.parametrize("dtype", ["int64", "bool", "uint8"])
def test_a_non_floating_tensor_cannot_require_grad_through_the_attribute_like_torch(dtype):
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 0], dtype=getattr(torch, dtype)).requires_grad = True
    x = ds.tensor([1, 0], dtype=getattr(ds, dtype))
    with pytest.raises(ds.errors.ArgumentTypeError, match="floating point"):
        x.requires_grad = True
    assert x.requires_grad is False
    x.requires_grad = False  # allowed, as in torch
    f = ds.tensor([1.0])
    f.requires_grad = True
    assert f.requires_grad is True and (f * 2).requires_grad


@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_assigning_a_grad_of_another_shape_or_dtype_raises_like_torch(bad):
    def wrong(m):
        return m.tensor([5.0, 5.0, 5.0]) if bad == "shape" else m.tensor([5.0, 5.0], dtype=m.float64)

    t = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        t.grad = wrong(torch)
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises((ds.errors.ShapeError, ds.errors.ArgumentTypeError), match="assigned grad has data"):
        x.grad = wrong(ds)
    assert x.grad is None
    x.grad = ds.tensor([5.0, 5.0])
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0])
    x.grad = None
    assert x.grad is None


def test_post_accumulate_grad_hook_sees_the_accumulated_grad_like_torch() -> None:
    results = []
    for lib in (ds, torch):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        seen: list[list[float]] = []
        handle = w.register_post_accumulate_grad_hook(lambda t, seen=seen: seen.append(t.grad.tolist()))
        (w * w).sum().backward()
        (w * 3).sum().backward()
        lib.autograd.grad((w * w).sum(), w)  # leaves .grad alone: no call
        handle.remove()
        (w * 3).sum().backward()
        results.append((seen, w.grad.tolist()))
        with pytest.raises(RuntimeError, match="non-leaf"):
            (w * 2).register_post_accumulate_grad_hook(print)
        with pytest.raises(RuntimeError, match="doesn't require gradient"):
            lib.ones(2).register_post_accumulate_grad_hook(print)
    assert results[0] == results[1]


def test_half_casts_and_bfloat16_is_refused_with_the_dtype_message() -> None:
    assert ds.ones(2).half().dtype == ds.float16
    with pytest.raises(TypeError) as made:
        ds.zeros(2, dtype=ds.bfloat16)
    with pytest.raises(TypeError) as cast:
        ds.ones(2).bfloat16()
    assert str(cast.value) == str(made.value)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 1)])
def test_repr_of_an_empty_tensor_shows_its_size_like_torch(shape: tuple[int, ...]) -> None:
    ours = re.sub(r", device='[^']*'", "", repr(ds.zeros(*shape, dtype=ds.float64)))  # the strict stand-in's
    theirs = repr(torch.zeros(*shape, dtype=torch.float64)).replace("torch.", "")
    assert ours == theirs


def test_arange_refuses_a_zero_step_and_inconsistent_bounds_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for args in ((0, 10, 0), (0, 10, -1), (10, 0, 1)):
        with pytest.raises(RuntimeError):
            torch.arange(*args)
        with pytest.raises(ds.errors.ArgumentError, match="arange"):
            ds.arange(*args)  # was a ZeroDivisionError, or an empty tensor
    with pytest.raises(ds.errors.ArgumentTypeError, match="arange: end must be a number"):
        ds.arange("a")
    for args in ((3, 3), (5,), (5, 0, -2), (0.0, 1.0, 0.25)):
        np.testing.assert_array_equal(ds.arange(*args).numpy(), torch.arange(*args).numpy())


@pytest.mark.parametrize(
    "name",
    ["zeros(2.5)", "ones(None)", "eye(-1)", "eye(2.5)", "randint(5, 3)", "linspace(steps=-1)", "randperm(-1)",
     "bincount(float)", "bincount(negative)", "linear(weight=None)", "sum(dim=1.0)"],
)  # fmt: skip
def test_bad_arguments_to_factories_and_ops_are_refused_in_one_line_as_torch_refuses_them(name):
    torch = pytest.importorskip("torch")

    def call(lib):  # type: ignore[no-untyped-def]
        F = lib.nn.functional
        return {
            "zeros(2.5)": lambda: lib.zeros(2.5),
            "ones(None)": lambda: lib.ones(None),
            "eye(-1)": lambda: lib.eye(-1),
            "eye(2.5)": lambda: lib.eye(2.5),
            "randint(5, 3)": lambda: lib.randint(5, 3, (2,)),
            "linspace(steps=-1)": lambda: lib.linspace(0, 1, -1),
            "randperm(-1)": lambda: lib.randperm(-1),
            "bincount(float)": lambda: lib.bincount(lib.tensor([1.5])),
            "bincount(negative)": lambda: lib.bincount(lib.tensor([-1])),
            "linear(weight=None)": lambda: F.linear(lib.ones(2, 3), None),
            "sum(dim=1.0)": lambda: lib.ones(3).sum(dim=1.0),
        }[name]()

    with pytest.raises(Exception):  # noqa: B017  (torch's exception types vary; it refuses)
        call(torch)
    with pytest.raises(ds.DownslopeError):
        call(ds)


def test_transposed_view_of_a_contiguous_tensor_is_refused_as_in_torch():
    # the same memory layout as a convolution's output, but a real transposed view: a copy would lose writes
    torch = pytest.importorskip("torch")
    for make in (
        lambda lib: lib.zeros(2, 3, 4).transpose(0, 1),
        lambda lib: lib.zeros(2, 3, 4, 5).permute(1, 0, 2, 3),
        lambda lib: lib.zeros(2, 3, 4).detach().transpose(0, 1),
    ):
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            make(torch).view(-1)
        with pytest.raises(ds.ShapeError, match="view size is not compatible"):
            make(ds).view(-1)
    o = ds.zeros(2, 3, 4)
    o.transpose(0, 1).reshape(-1).fill_(1.0)  # reshape copies, as torch's
    assert o.sum().item() == 0.0
    with pytest.raises(ds.ShapeError, match="view size is not compatible"):
        o.transpose(0, 1).view_as(ds.zeros(24))
    assert o.transpose(0, 1).reshape_as(ds.zeros(24)).shape == (24,)


def test_views_and_strides_after_convolution_layers_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((4, 3, 10, 10)).astype(np.float32)
    ds.manual_seed(0)
    ours = ds.nn.Conv2d(3, 6, 3)
    theirs = torch.nn.Conv2d(3, 6, 3)
    layers = {
        "conv": lambda lib, t: t,
        "relu": lambda lib, t: lib.relu(t),
        "bn-relu-pool": lambda lib, t: lib.nn.functional.max_pool2d(
            lib.relu(lib.nn.functional.batch_norm(t, None, None, training=True)), 2
        ),
        "avgpool": lambda lib, t: lib.nn.functional.adaptive_avg_pool2d(t, 4),
        "conv1d": lambda lib, t: lib.nn.functional.conv1d(t[:, :, 0], lib.ones(2, 6, 3)),
    }
    for name, layer in layers.items():
        y = layer(ds, ours(ds.tensor(x)))
        ty = layer(torch, theirs(torch.tensor(x)))
        assert y.stride() == ty.stride(), name
        assert [y.stride(d) for d in range(-y.ndim, y.ndim)] == [ty.stride(d) for d in range(-ty.ndim, ty.ndim)], name
        flat = y.view(y.shape[0], -1)
        flat[0, 0] = 123.0
        # a real view, as in torch (conv1d's output is a view of the layer's own intermediate tensor,
        # shared: laid out in order under both, see tensor.relayout_shared); on a device a shared output
        # is viewed through a copy (the case Tensor.view documents as left)
        on_host = type(y.array) is np.ndarray
        assert (y.flatten()[0].item() == 123.0) is (on_host or name != "conv1d"), name
        # shared (here by detach): still viewable as in torch, through a copy (see Tensor.view)
        assert y.detach().view(-1).shape == tuple(ty.detach().view(-1).shape), name
    # a channel slice of a convolution's output is not contiguous in torch, whose view refuses it, as
    # here; one image, y[0], is contiguous there, so its view works (through a copy here, see Tensor.view)
    out = ours(ds.tensor(x))
    with pytest.raises(ds.ShapeError, match="view size is not compatible"):
        out[:, :2].detach().view(-1)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        theirs(torch.tensor(x))[:, :2].detach().view(-1)
    assert out[0].detach().view(-1).shape == (6 * 8 * 8,)
    with pytest.raises(ds.ShapeError, match="view size is not compatible"):
        ds.tensor(x).transpose(0, 1).view(-1)  # an ordinary tensor laid out so is refused, as in torch


def test_stride_matches_torch():
    torch = pytest.importorskip("torch")
    makes = [
        lambda lib: lib.zeros(2, 3, 4),
        lambda lib: lib.zeros(2, 3, 4).transpose(0, 2),
        lambda lib: lib.zeros(3, 1).expand(3, 4),
        lambda lib: lib.zeros(6, 5)[::2, 1:],
        lambda lib: lib.zeros(5),
        lambda lib: lib.tensor(1.0),
        lambda lib: lib.zeros(2, 3, dtype=lib.float64).t(),
    ]
    for make in makes:
        assert make(ds).stride() == make(torch).stride()
    for bad in (3, -4):
        with pytest.raises(IndexError, match="Dimension out of range"):
            ds.zeros(2, 3, 4).stride(bad)
        with pytest.raises(IndexError, match="Dimension out of range"):
            torch.zeros(2, 3, 4).stride(bad)
    with pytest.raises(IndexError, match="no dimensions"):
        ds.tensor(1.0).stride(0)
    with pytest.raises(TypeError, match="dim"):
        ds.zeros(2).stride("0")


def _next_names(fn):
    return [(None if n is None else n.name(), i) for n, i in fn.next_functions]


@pytest.mark.parametrize("op", ["3 + x", "3 * x", "3 / x", "3 - x", "x + 3", "x * 3", "x / 3", "3 * x ** 3"])
def test_reflected_operators_record_what_torch_records(op):
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(1).uniform(0.5, 2.0, 50)
    results = []
    for lib in (ds, torch):
        leaf = lib.tensor(values, dtype=lib.float32, requires_grad=True)
        y = eval(op, {"x": leaf * 1})  # a non-leaf x, so that next_functions shows its node
        names = (y.grad_fn.name(), _next_names(y.grad_fn))
        y.backward(lib.ones_like(y))
        results.append((y.detach().numpy(), leaf.grad.numpy(), names))
    (y, g, names), (ty, tg, tnames) = results
    # PyTorch's rounding too (3 / x is x.reciprocal() * 3 there); x ** 3 itself may round differently
    np.testing.assert_allclose(y, ty, rtol=1e-6 if "**" in op else 0)
    np.testing.assert_allclose(g, tg, rtol=1e-6)
    if op == "3 - x":  # PyTorch's RsubBackward1 (rsub with a number): the same one input
        assert names[1] == tnames[1] and tnames[0] == "RsubBackward1" and names[0].startswith("RsubBackward")
    elif op == "3 / x":  # x.reciprocal() * 3: reciprocal is named DivBackward0 here
        assert names[0] == tnames[0] and [i for _, i in names[1]] == [0, 0] and names[1][1] == tnames[1][1]
    else:
        assert names == tnames


def test_reflected_operators_keep_dtypes_and_double_backward():
    torch = pytest.importorskip("torch")
    for op in ("3 / x", "2.5 - x", "3 - x", "1.5 * x", "2 + x"):
        for make in (lambda lib: lib.tensor([2, 4]), lambda lib: lib.tensor([2.0, 4.0], dtype=lib.float64)):
            ours, theirs = eval(op, {"x": make(ds)}), eval(op, {"x": make(torch)})
            assert ours.tolist() == theirs.tolist() and str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), op
    x = ds.tensor([0.5, 2.0], dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad((3 - x**3).sum(), x, create_graph=True)
    (h,) = ds.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [-3.0, -12.0])  # d2/dx2 (3 - x^3) = -6x


def test_top_level_inplace_functions_match_torch():
    torch = pytest.importorskip("torch")
    names = [n for n in dir(torch) if n.endswith("_") and not n.startswith("_")]
    # those whose Tensor method exists here (not a placeholder saying why it is left out) are all at the
    # top level too
    from downslope import _unsupported

    assert all(hasattr(ds, n) for n in names if _unsupported.provides(ds.Tensor, n))
    values = [0.2, 0.5, 0.9]
    calls = {
        "sin_": (), "exp_": (), "log_": (), "sqrt_": (), "abs_": (), "neg_": (), "sigmoid_": (), "tanh_": (),
        "relu_": (), "zero_": (), "fill_": (2.5,), "clamp_": (0.3, 0.6), "clamp_min_": (0.4,), "atanh_": (),
        "logit_": (), "xlogy_": (2.0,), "round_": (),
    }  # fmt: skip
    for name, args in calls.items():
        x, tx = ds.tensor(values), torch.tensor(values)
        assert getattr(ds, name)(x, *args) is x, name
        getattr(torch, name)(tx, *args)
        np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-6, err_msg=name)
    x = ds.tensor([-1.0, 2.0])
    assert ds.clamp_(x, min=0.0) is x and x.tolist() == [0.0, 2.0]
    with pytest.raises(TypeError, match="must be Tensor"):
        ds.sin_([1.0])


def test_writes_through_view_reshape_flatten_contiguous_of_a_convolution_output_reach_it_as_in_torch():
    """A convolution's output is contiguous in torch (channel-major here): view, reshape, flatten and
    contiguous give views there, so a write through them changes the output. Here too, or, when a
    live tensor shares the output's memory (no view of that shape exists then), the write is refused
    rather than lost."""
    torch = pytest.importorskip("torch")

    def run(lib, how):
        lib.manual_seed(0)
        conv = lib.nn.Conv2d(1, 2, 3, padding=1)
        with lib.no_grad():
            conv.weight.fill_(0.5)
            conv.bias.fill_(0.25)
            y = conv(lib.ones(2, 1, 4, 4))
            if how == "view":
                y.view(2, -1)[:, :3] = 0.0
            elif how == "reshape":
                y.reshape(2, -1)[:, :3] = 0.0
            elif how == "flatten":
                lib.flatten(y, 1)[:, :3] = 0.0
            elif how == "contiguous":
                y.contiguous()[0, 0, 0, :3] = 0.0
            elif how == "detached":
                y = conv(lib.ones(2, 1, 4, 4)).detach()  # the output itself is gone: y is its only holder
                y.view(2, -1)[:, :3] = 0.0
            return y.numpy().copy(), y.is_contiguous(), y.view(-1).data_ptr() == y.data_ptr()

    for how in ("view", "reshape", "flatten", "contiguous", "detached"):
        ours, theirs = run(ds, how), run(torch, how)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, err_msg=how)
        assert ours[1:] == theirs[1:] == (True, True), how

    conv = ds.nn.Conv2d(1, 2, 3, padding=1)
    y = conv(ds.ones(2, 1, 4, 4))
    y.relu_()  # an in-place op in grad mode keeps the old history alive, not another tensor
    y.view(2, -1)[0, 0] = 7.0
    assert y[0, 0, 0, 0].item() == 7.0
    # views of the output that torch keeps contiguous view (through a copy here): one image, a batch slice
    assert [tuple(f.view(-1).shape) for f in y] == [(32,), (32,)] and y[:1].reshape(1, -1).shape == (1, 32)
    alias = y.detach()  # alive: it shares y's memory, so no view of y in (2, 32) exists: a copy
    assert y.flatten(1).shape == (2, 32) and float(alias.sum()) == float(y.sum())


def test_the_input_gradient_of_a_padded_convolution_is_contiguous_as_in_torch():
    """WGAN-GP's gradient penalty views the input gradient taken with create_graph."""
    conv = ds.nn.Conv2d(1, 4, 3, padding=1)
    x = ds.randn(4, 1, 8, 8, requires_grad=True)
    (g,) = ds.autograd.grad(conv(x).sum(), x, create_graph=True)
    assert g.is_contiguous()
    ((g.view(4, -1).norm(2, dim=1) - 1) ** 2).mean().backward()
    assert conv.weight.grad is not None


def test_a_batch_norm_output_is_contiguous_and_viewable_as_in_torch():
    """Batch norm lays its output out channel-major, as a convolution does, from any input: what
    torch returns contiguous is reported and viewed so, and writes through a reshape reach it."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 4, 4, 5)).astype(np.float32)
    for lib in (ds, torch):
        y = lib.nn.functional.batch_norm(lib.tensor(x), None, None, training=True)
        assert y.is_contiguous() and y.stride() == (80, 20, 5, 1)
        y.reshape(2, -1)[0, 0] = -7.0
        assert float(y[0, 0, 0, 0]) == -7.0
        assert lib.relu(y).stride() == (80, 20, 5, 1)


def test_reshape_of_a_permuted_convolution_output_copies_as_in_torch():
    """A detection head's permute(0, 2, 3, 1).reshape(-1, C): PyTorch's contiguous output needs a copy,
    so an in-place op on the result leaves the output alone; the channel-major memory here would
    allow a view through which it would change."""
    torch = pytest.importorskip("torch")
    rs = np.random.RandomState(0)
    xn, wn = rs.randn(2, 3, 4, 5).astype(np.float32), rs.randn(4, 3, 3, 3).astype(np.float32)
    sums = []
    for lib in (ds, torch):
        conv = lib.nn.Conv2d(3, 4, 3, padding=1)
        with lib.no_grad():
            conv.weight.copy_(lib.tensor(wn))
            conv.bias.zero_()
        y = conv(lib.tensor(xn))
        p = y.permute(0, 2, 3, 1).reshape(-1, 4)
        f = y.transpose(1, 2).flatten(0, 1)
        with lib.no_grad():
            p.sigmoid_()
            f.zero_()
        sums.append(float(y.detach().sum()))
    np.testing.assert_allclose(sums[0], sums[1], rtol=1e-5)


def test_tensors_take_user_attributes_like_torch() -> None:
    # fast.ai's backprop lesson stores gradients as ``out.g``; torch tensors accept any attribute
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        t = lib.ones(2)
        t.g = lib.zeros(2)
        assert t.g.shape == (2,)
    t = ds.ones(2)
    t.label = "x"
    assert copy.deepcopy(t).label == "x"
    assert pickle.loads(pickle.dumps(t)).label == "x"
    assert not hasattr(ds.ones(2), "label")


def test_tensor_compared_with_none_is_a_python_bool_as_in_torch():
    t = ds.ones(3)
    assert (t != None) is True and (t == None) is False  # noqa: E711  (the comparison under test)
    assert (None != t) is True and (None == t) is False  # noqa: E711
    r = torch.ones(3)
    assert (r != None) is True and (r == None) is False  # noqa: E711
