"""Tensors handed to NumPy, pandas and matplotlib, and NumPy arrays handed to downslope, as with torch:
0-d results are 0-d arrays (shared, writable), a tensor that requires grad refuses numpy()/__array__,
NumPy 2's copy protocol, views of shared Fortran-order arrays, byte order, int64 overflow, byte masks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
F = ds.nn.functional

# ---------------------------------------------------------------------------------------------- 0-d results


def _zero_d_results(L):
    """Ops giving a 0-d float result, by name, for a library L (downslope or torch)."""
    G = L.nn.functional
    s = L.tensor(0.5)
    v = L.tensor([0.5, 1.5, -1.0])
    m = L.tensor([[2.0, 1.0], [1.0, 3.0]])
    return {
        "s+1": lambda: s + 1,
        "s*s": lambda: s * s,
        "-s": lambda: -s,
        "exp": lambda: s.exp(),
        "sigmoid": lambda: L.sigmoid(s),
        "relu": lambda: G.relu(s),
        "clamp": lambda: s.clamp(0, 1),
        "abs": lambda: s.abs(),
        "pow": lambda: s**2,
        "sqrt": lambda: s.sqrt(),
        "where": lambda: L.where(s > 0, s, 0.0),
        "sum": lambda: v.sum(),
        "mean": lambda: v.mean(),
        "max": lambda: v.max(),
        "prod": lambda: v.prod(),
        "std": lambda: v.std(),
        "var": lambda: v.var(),
        "norm": lambda: v.norm(),
        "dot": lambda: v.dot(v),
        "matmul": lambda: v @ v,
        "logsumexp": lambda: v.logsumexp(0),
        "sum+sum": lambda: v.sum() + v.sum(),
        "0.1*sum": lambda: 0.1 * v.sum(),
        "sum/3": lambda: v.sum() / 3,
        "clone": lambda: (s * 1).clone(),
        "double": lambda: (s * 1).double(),
        "getitem": lambda: v[0] * 1,
        "mse": lambda: G.mse_loss(v, v * 0),
        "cross_entropy": lambda: G.cross_entropy(v[None], L.tensor([0])),
        "nll": lambda: G.nll_loss(v[None], L.tensor([1])),
        "kl": lambda: G.kl_div(v, v.clamp(0.1, 2), reduction="batchmean"),
        "bce_logits": lambda: G.binary_cross_entropy_with_logits(v, v.clamp(0, 1)),
        "huber": lambda: G.huber_loss(v, v * 0),
        "cosine_similarity": lambda: G.cosine_similarity(v, v, dim=0),
        "trace": lambda: m.trace(),
        "det": lambda: L.linalg.det(m),
    }


@pytest.mark.parametrize("name", sorted(_zero_d_results(ds)))
def test_a_0d_op_result_holds_a_0d_array_that_numpy_shares(name):
    ours = _zero_d_results(ds)[name]()
    theirs = _zero_d_results(torch)[name]()
    assert isinstance(ours.array, np.ndarray) and ours.shape == ()
    a = np.asarray(ours.detach())
    assert type(a) is np.ndarray and a.shape == () and a.dtype == ours.dtype
    assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
    np.testing.assert_allclose(a, theirs.detach().numpy(), rtol=1e-6)
    n = ours.detach().numpy()
    assert n.flags.writeable
    n[()] = 7
    assert ours.item() == 7  # numpy() shares the tensor's memory, as torch's does


@pytest.mark.parametrize("name", ["argmax", "eq", "isnan", "count_nonzero"])
def test_a_0d_integer_or_boolean_result_is_handed_out_as_a_shared_array(name):
    def make(L):
        v = L.tensor([0.5, 1.5, -1.0])
        return {
            "argmax": lambda: v.argmax(),
            "eq": lambda: v.sum() == v.sum(),
            "isnan": lambda: v.sum().isnan(),
            "count_nonzero": lambda: v.count_nonzero(),
        }[name]()

    ours, theirs = make(ds), make(torch)
    n = ours.numpy()
    assert type(n) is np.ndarray and n.shape == () and n.flags.writeable
    assert n.tolist() == theirs.numpy().tolist()
    d = ours.detach()
    d.fill_(0)
    assert ours.item() == 0 and n.tolist() == 0  # the alias, the tensor and the array handed out share memory


def _write_through(L):
    out = {}
    t = L.tensor(3.0) + 0
    t.detach().add_(1)
    out["detach().add_"] = t.item()
    t = L.tensor(5.0) * 1
    t.data.fill_(0)
    out[".data.fill_"] = t.item()
    t = L.tensor(2.0) ** 2
    t.unsqueeze(0).mul_(10)
    out["unsqueeze(0).mul_"] = t.item()
    t = L.tensor(5.0) * 1
    t.view(1)[0] = 9
    out["view(1) write"] = t.item()
    t = L.tensor(2.0) * 1
    n = t.numpy()
    t.add_(1)
    out["numpy() then add_"] = float(n)
    t = L.tensor(2.0) * 1
    e = t.expand(3)
    t.add_(1)
    out["expand then add_"] = e.tolist()
    w = L.nn.Parameter(L.tensor(1.0) * 1)
    ref = w.detach()
    opt = L.optim.SGD([w], lr=0.1)
    ((w * 2 - 1) ** 2).backward()
    opt.step()
    out["0-d parameter alias sees step"] = round(ref.item(), 6)
    return out


def test_writes_through_aliases_of_a_0d_result_reach_it_as_in_torch():
    assert _write_through(ds) == _write_through(torch)


def test_lists_of_0d_losses_go_to_numpy_pandas_and_matplotlib():
    history = [((ds.ones(2) * k).sum() * 1).detach() for k in (1.0, 2.0, 3.0)]
    assert np.array(history).tolist() == [2.0, 4.0, 6.0]
    assert float(np.mean(history)) == 4.0
    assert np.stack(history).tolist() == [2.0, 4.0, 6.0]
    assert ds.tensor(history).tolist() == [2.0, 4.0, 6.0]
    assert torch.from_dlpack(history[0]).item() == 2.0
    pd = pytest.importorskip("pandas")
    assert pd.Series(history).mean() == 4.0
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    try:
        (line,) = plt.plot(history)
        assert line.get_ydata().tolist() == [2.0, 4.0, 6.0]
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------- requires grad

_TORCH_MESSAGE = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's __array__ has no copy keyword
@pytest.mark.parametrize(
    "how",
    ["numpy", "asarray", "array", "concatenate", "stack", "enable_grad numpy", "parameter", "non-leaf"],
)
def test_numpy_of_a_tensor_that_requires_grad_is_refused_as_in_torch(how):
    def attempt(L):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        if how == "numpy":
            return w.numpy()
        if how == "asarray":
            return np.asarray(w)
        if how == "array":
            return np.array(w, copy=True)
        if how == "concatenate":
            return np.concatenate([w, w])
        if how == "stack":
            return np.stack([w, w])
        if how == "enable_grad numpy":
            with L.no_grad(), L.enable_grad():
                return w.numpy()
        if how == "parameter":
            return L.nn.Linear(2, 2).weight.numpy()
        return (w * 2).numpy()

    with pytest.raises(RuntimeError) as theirs:
        attempt(torch)
    with pytest.raises(ds.errors.StateError) as ours:
        attempt(ds)
    assert str(ours.value) == str(theirs.value) == _TORCH_MESSAGE


def test_tensor_of_a_list_of_losses_that_require_grad_takes_their_values_as_torch():
    values = []
    for L in (ds, torch):
        w = L.tensor(1.5, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about converting a tensor that requires grad
            t = L.tensor([w * 2, w * 3])
        assert not t.requires_grad
        values.append(t.tolist())
    assert values[0] == values[1] == [3.0, 4.5]


def test_numpy_under_no_grad_is_handed_out_as_in_torch():
    for L in (ds, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        with L.no_grad():
            assert w.numpy().tolist() == np.asarray(w).tolist() == [1.0, 2.0]
            assert np.concatenate([w, w]).tolist() == [1.0, 2.0, 1.0, 2.0]


def test_the_grad_is_not_corrupted_through_a_numpy_alias():
    w = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    with pytest.raises(RuntimeError):
        w.numpy()[:] = 10.0
    y.backward()
    assert w.grad.tolist() == [2.0, 4.0, 6.0]
    pd = pytest.importorskip("pandas")
    with pytest.raises(RuntimeError):
        pd.Series(w)
    assert pd.Series(w.detach()).tolist() == [1.0, 2.0, 3.0]


def test_numpy_force_detaches_and_shares_as_in_torch():
    for L in (ds, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        a = w.numpy(force=True)
        assert a.tolist() == [1.0, 2.0] and a.flags.writeable
        assert np.shares_memory(a, w.detach().numpy())
        assert L.tensor([1.0]).numpy(force=True).tolist() == [1.0]
    assert ds.tensor([1.0, 2.0]).numpy(force=True) is not None
    assert type(ds.tensor(2.0, requires_grad=True).exp().numpy(force=True)) is np.ndarray


# ---------------------------------------------------------------------------------------------- copy protocol


def test_array_follows_numpy_2s_copy_protocol():
    t = ds.ones(3)
    assert np.shares_memory(np.array(t, copy=False), t.numpy())
    assert np.shares_memory(np.asarray(t, dtype=np.float32), t.numpy())
    assert not np.shares_memory(np.array(t), t.numpy())
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="copy"):
        np.array(t, dtype=np.float64, copy=False)
    with pytest.raises(ValueError):  # NumPy's own arrays refuse the same
        np.array(np.ones(3, np.float32), dtype=np.float64, copy=False)


@pytest.mark.parametrize(
    "case",
    [
        "f32 copy=False",
        "f32 copy=True",
        "f32",
        "tensor",
        "tensor copy=True",
        "list copy=False",
        "tensor f64 copy=False",
    ],
)
def test_asarray_shares_copies_or_refuses_as_torch_asarray(case):
    def run(L):
        a = np.zeros(3, np.float32)
        t0 = L.ones(3)
        if case == "f32 copy=False":
            t = L.asarray(a, copy=False)
        elif case == "f32 copy=True":
            t = L.asarray(a, copy=True)
        elif case == "f32":
            t = L.asarray(a)
        elif case == "tensor":
            return L.asarray(t0) is t0
        elif case == "tensor copy=True":
            u = L.asarray(t0, copy=True)
            u[0] = 5
            return (u is t0, t0[0].item())
        elif case == "list copy=False":
            return L.asarray([1.0, 2.0], copy=False)
        else:
            return L.asarray(t0, dtype=L.float64, copy=False)
        a[0] = 99
        return "shares" if t[0].item() == 99 else "copy"

    try:
        theirs = run(torch)
    except ValueError:
        with pytest.raises(ValueError):
            run(ds)
        return
    assert run(ds) == theirs


def test_asarray_keeps_or_sets_requires_grad_and_history():
    a = ds.ones(2, requires_grad=True)
    b = a * 2
    assert ds.asarray(b) is b
    c = ds.asarray(b, copy=True)
    assert c.grad_fn is not None and c is not b
    c.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]
    assert ds.asarray(ds.ones(2), requires_grad=True).requires_grad


# ---------------------------------------------------------------------------------------------- shared arrays


@pytest.mark.parametrize("make", ["transposed", "fortran", "as_tensor fortran"])
def test_view_of_a_shared_array_out_of_order_is_refused_and_keeps_sharing(make):
    def run(L):
        a = np.zeros((3, 2), np.float32)
        if make == "transposed":
            t = L.from_numpy(a.T)
        elif make == "fortran":
            a = np.asfortranarray(np.zeros((2, 3), np.float32))
            t = L.from_numpy(a)
        else:
            a = np.asfortranarray(np.zeros((2, 3), np.float32))
            t = L.as_tensor(a)
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            t.view(6)
        assert t.reshape(6).shape == (6,)
        t.add_(1)
        return a.ravel().tolist()

    assert run(ds) == run(torch) == [1.0] * 6


def test_from_numpy_refuses_a_non_native_byte_order_as_torch_and_tensor_converts():
    big = np.array([[1.0, 2.0]], ">f8")
    with pytest.raises(ValueError, match="byte order"):
        torch.from_numpy(big)
    with pytest.raises(ValueError, match="byte order"):
        ds.from_numpy(big)
    x = ds.tensor(big, dtype=ds.float64)
    assert x.dtype == ds.float64 and x.dtype.isnative
    p = ds.softmax(x, 1)
    assert p.dtype == ds.float64
    np.testing.assert_allclose(p.numpy(), torch.softmax(torch.tensor([[1.0, 2.0]], dtype=torch.float64), 1))
    assert ds.as_tensor(np.array([1.0, 2.0], ">f4")).dtype == np.dtype("float32")


def test_from_numpy_of_a_read_only_array_warns_as_torch():
    a = np.zeros(3, np.float32)
    a.flags.writeable = False
    with pytest.warns(UserWarning, match="The given NumPy array is not writable"):
        t = ds.from_numpy(a)
    with pytest.raises(RuntimeError, match="read-only NumPy array"):
        t.add_(1)
    b = np.zeros(3, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.from_numpy(b)  # a writable array: no warning


# ---------------------------------------------------------------------------------------------- integers


@pytest.mark.parametrize("data", [2**63, [1, 2**63], [[1], [2**63]], 2**64, [-(2**64)]])
def test_python_ints_outside_int64_are_refused_as_in_torch(data):
    with pytest.raises(ValueError, match="Overflow"):
        torch.tensor(data)
    with pytest.raises(ValueError, match="Overflow"):
        ds.tensor(data)
    with pytest.raises(ValueError, match="Overflow"):
        ds.as_tensor(data)


@pytest.mark.parametrize("data", [-(2**63), [0, 0.5, 1], [1.5, 2**63], [2**62, 3], []])
def test_data_torch_accepts_is_kept(data):
    ours, theirs = ds.tensor(data), torch.tensor(data)
    assert ours.tolist() == theirs.tolist()
    assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))


def test_uint64_arrays_beyond_int64_are_refused_not_wrapped():
    big = np.array([2**64 - 1, 5], np.uint64)
    with pytest.raises(ValueError, match="uint64"):
        ds.tensor(big)
    assert ds.tensor(big, dtype=ds.float64).tolist() == [float(2**64 - 1), 5.0]
    assert ds.tensor(np.array([5, 7], np.uint64)).tolist() == [5, 7]
    assert ds.tensor(2**63, dtype=ds.float32).item() == torch.tensor(2**63, dtype=torch.float32).item()


# ---------------------------------------------------------------------------------------------- byte masks


@pytest.mark.parametrize("case", ["1d", "2d mask", "[:, m]", "(m, 0)", "numpy mask", "0-d", "set tensor"])
def test_a_uint8_index_is_a_mask_with_torchs_warning(case):
    def run(L):
        x = L.arange(3) * 10
        y = L.arange(6).reshape(2, 3)
        u8 = L.uint8
        if case == "1d":
            return x[L.tensor([1, 0, 1], dtype=u8)]
        if case == "2d mask":
            return y[L.tensor([[1, 0, 2], [0, 0, 1]], dtype=u8)]
        if case == "[:, m]":
            return y[:, L.tensor([1, 0, 1], dtype=u8)]
        if case == "(m, 0)":
            return y[L.tensor([1, 0], dtype=u8), 0]
        if case == "numpy mask":
            return x[np.array([1, 0, 1], np.uint8)]
        if case == "0-d":
            return y[L.tensor(1, dtype=u8)]
        z = x.clone()
        z[L.tensor([1, 0, 1], dtype=u8)] = L.tensor([7, 8])
        return z

    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = run(torch)
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = run(ds)
    assert ours.tolist() == theirs.tolist()
    count = [
        len([w for w in record if "uint8 is now deprecated" in str(w.message)])
        for record in (ours_warned, theirs_warned)
    ]
    assert count[0] == count[1] == (0 if case == "0-d" else 1)


def test_the_gradient_through_a_uint8_mask_matches_torch():
    grads = []
    for L in (ds, torch):
        w = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (w[L.tensor([1, 0, 1], dtype=L.uint8)] * L.tensor([2.0, 3.0])).sum().backward()
        grads.append(w.grad.tolist())
    assert grads[0] == grads[1] == [2.0, 0.0, 3.0]
