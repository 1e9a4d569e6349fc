"""Complex tensors against torch: dtypes and creation, the complex-only ops (real, imag, conj, abs, angle,
complex, polar, view_as_real/complex), promotion of complex with real operands, and gradients by torch's
convention (dL/dx + i dL/dy) through the ops that support complex values; the others are refused by name."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError, DTypeError, ShapeError

from .._complex_helpers import to_numpy as _numpy

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(7)


def _complex_array(*shape: int) -> np.ndarray:
    return np.asarray(_RNG.standard_normal(shape) + 1j * _RNG.standard_normal(shape))


def _ours(a: Any, grad: bool = True) -> Any:
    if not isinstance(a, np.ndarray):
        return a
    return ds.tensor(a, dtype=ds.complex128 if a.dtype.kind == "c" else ds.float64, requires_grad=grad)


def _theirs(a: Any, grad: bool = True) -> Any:
    return torch.tensor(a, requires_grad=grad) if isinstance(a, np.ndarray) else a


def _real_loss(lib: Any, y: Any, weight: np.ndarray) -> Any:
    """A real loss with a gradient that differs per element: Re(sum(y * w)) for a complex w."""
    if lib is torch:
        w = torch.tensor(weight if y.is_complex() else weight.real)
    else:
        w = ds.tensor(weight if y.is_complex() else weight.real, dtype=ds.complex128 if y.is_complex() else ds.float64)
    product = y * w
    return (lib.real(product) if y.is_complex() else product).sum()


def _check(fn: Callable[..., Any], *arrays: Any, grads: bool = True) -> None:
    """``fn(lib, *inputs)`` in downslope and torch: values, dtypes and the inputs' gradients agree."""
    ours = [_ours(a, grads) for a in arrays]
    theirs = [_theirs(a, grads) for a in arrays]
    y, ref = fn(ds, *ours), fn(torch, *theirs)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), rtol=1e-10, atol=1e-12)
    if not grads:
        return
    weight = _complex_array(*ref.shape)
    _real_loss(ds, y, weight).backward()
    _real_loss(torch, ref, weight).backward()
    for mine, them in zip(ours, theirs):
        if isinstance(mine, ds.Tensor):
            assert mine.grad.dtype == mine.dtype
            np.testing.assert_allclose(_numpy(mine.grad), _numpy(them.grad), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- dtypes and creation


def test_dtype_names_are_torchs() -> None:
    assert ds.complex64 == np.complex64 and ds.cfloat is ds.complex64
    assert ds.complex128 == np.complex128 and ds.cdouble is ds.complex128
    for name in ("complex64", "complex128"):
        ours, ref = ds.zeros(2, dtype=getattr(ds, name)), torch.zeros(2, dtype=getattr(torch, name))
        assert ds.is_complex(ours) is torch.is_complex(ref) is True
        assert ours.is_complex() and not ours.is_floating_point() and not ref.is_floating_point()
        assert ours.type() == ref.type()


@pytest.mark.host_only  # from_numpy shares a host array's memory; on a device it is a copy
def test_creation_follows_torch_and_the_float_policy() -> None:
    # Python complex numbers: complex64, as torch; NumPy complex128 data: complex64, as float64 data is float32
    assert ds.tensor([1 + 2j, 3]).dtype == ds.complex64 and torch.tensor([1 + 2j, 3]).dtype == torch.complex64
    assert ds.tensor(np.array([1 + 2j])).dtype == ds.complex64
    assert ds.tensor(np.array([1 + 2j]), dtype=ds.complex128).dtype == ds.complex128
    assert ds.as_tensor(np.array([1j])).dtype == ds.complex64
    shared = np.array([1 + 2j])
    assert ds.from_numpy(shared).dtype == ds.complex128 and ds.from_numpy(shared).numpy() is shared
    for factory in ("zeros", "ones", "empty"):
        assert getattr(ds, factory)(2, 3, dtype=ds.complex64).dtype == ds.complex64
    ours, ref = ds.full((2,), 1 - 2j), torch.full((2,), 1 - 2j)
    assert str(ref.dtype) == "torch.complex64" and ours.dtype == ds.complex64
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    assert ds.tensor(2 + 3j).item() == torch.tensor(2 + 3j).item() == 2 + 3j
    assert ds.tensor([1j, 2]).tolist() == torch.tensor([1j, 2]).tolist()


def test_randn_complex_has_unit_variance_split_between_the_parts() -> None:
    ds.manual_seed(0)
    z = ds.randn(200_000, dtype=ds.complex64).numpy()
    assert z.dtype == np.complex64
    # torch's complex normal: real and imaginary parts independent, each of variance 1/2
    assert abs(z.real.var() - 0.5) < 0.01 and abs(z.imag.var() - 0.5) < 0.01
    assert abs(np.mean(np.abs(z) ** 2) - 1) < 0.02


@pytest.mark.host_only  # a device tensor's repr names its device
def test_repr_leaves_out_the_default_complex_dtype_as_torch() -> None:
    assert repr(ds.tensor([1 + 2j])) == repr(torch.tensor([1 + 2j])) == "tensor([1.+2.j])"
    assert "dtype=complex128" in repr(ds.tensor([1 + 2j], dtype=ds.complex128))
    assert "torch.complex128" in repr(torch.tensor([1 + 2j], dtype=torch.complex128))


def test_complex_leaves_require_grad_and_integers_still_refuse() -> None:
    z = ds.tensor([1j], requires_grad=True)
    assert z.requires_grad and torch.tensor([1j], requires_grad=True).requires_grad
    with pytest.raises(DTypeError, match="floating point and complex dtype"):
        ds.tensor([1], requires_grad=True)


def test_casting_to_real_keeps_the_real_part_and_warns_as_torch() -> None:
    values = np.array([1.5 + 2j, -3 - 1j])
    z, ref = ds.tensor(values), torch.tensor(values, dtype=torch.complex64)
    torch.set_warn_always(True)  # torch warns once per process otherwise
    for cast in (lambda t, lib: t.to(lib.float32), lambda t, lib: t.float(), lambda t, lib: t.double()):
        with pytest.warns(UserWarning, match="discards the imaginary part"):
            got = cast(z, ds)
        with pytest.warns(UserWarning, match="discards the imaginary part"):
            want = cast(ref, torch)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    torch.set_warn_always(False)


def test_cast_to_real_passes_the_real_part_of_the_gradient() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _check(lambda lib, z: (z * z).to(lib.float64) * 3, _complex_array(4))


def test_real_to_complex_cast_gives_the_real_input_the_real_part() -> None:
    _check(lambda lib, x: x.to(lib.complex128) * (1 + 2j), _RNG.standard_normal(4))


# ---------------------------------------------------------------------- complex-only ops


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, z: lib.real(z) * 2,
        lambda lib, z: z.imag * 3,
        lambda lib, z: z.conj() * 1,
        lambda lib, z: z.abs(),
        lambda lib, z: lib.abs(z),
        lambda lib, z: z.angle(),
        lambda lib, z: z.abs() ** 2,
        lambda lib, z: lib.view_as_real(z) * 1,
        lambda lib, z: z.exp(),
        lambda lib, z: lib.exp(z) * z.conj(),
    ],
    ids=["real", "imag", "conj", "abs", "ds.abs", "angle", "abs_squared", "view_as_real", "exp", "exp_times_conj"],
)
def test_complex_functions_match_torch(fn: Callable[..., Any]) -> None:
    _check(fn, _complex_array(2, 3))


def test_abs_and_angle_at_zero_have_torchs_zero_gradient() -> None:
    _check(lambda lib, z: z.abs() + z.angle(), np.array([0j, 1 + 1j]))


def test_view_as_complex_complex_and_polar_match_torch() -> None:
    parts = _RNG.standard_normal((3, 2))
    _check(lambda lib, x: lib.view_as_complex(x) * 1, parts)
    a, b = _RNG.standard_normal(3), _RNG.standard_normal(3)
    _check(lambda lib, x, y: lib.complex(x, y), a, b)
    _check(lambda lib, r, t: lib.polar(r, t), np.abs(a), b)


@pytest.mark.host_only  # host arrays' memory
def test_view_as_real_shares_memory_and_writes_through_as_torch() -> None:
    z = ds.tensor([1 + 2j, 3 + 4j])
    parts = ds.view_as_real(z)
    assert np.shares_memory(parts.numpy(), z.numpy())
    parts.mul_(2)
    z.real.add_(1)
    z.imag[1].fill_(0.5)
    t = torch.tensor([1 + 2j, 3 + 4j], dtype=torch.complex64)
    torch.view_as_real(t).mul_(2)
    t.real.add_(1)
    t.imag[1].fill_(0.5)
    np.testing.assert_array_equal(z.numpy(), t.numpy())


def test_isreal_and_is_conj_match_torch() -> None:
    values = np.array([1 + 0j, 2j, -3 + 0j])
    np.testing.assert_array_equal(ds.isreal(ds.tensor(values)).numpy(), torch.isreal(torch.tensor(values)).numpy())
    assert ds.isreal(ds.ones(2)).numpy().all() and torch.isreal(torch.ones(2)).numpy().all()
    z = ds.tensor(values).conj()
    assert ds.is_conj(z) is False and z.is_conj() is False and z.isreal().numpy().tolist() == [True, False, True]


def test_complex_only_ops_refuse_what_torch_refuses() -> None:
    with pytest.raises(DTypeError, match="imag is not implemented"):
        ds.imag(ds.ones(2))
    with pytest.raises(DTypeError, match="view_as_real is only supported for complex"):
        ds.view_as_real(ds.ones(2))
    with pytest.raises(ShapeError, match="last dimension of size 2"):
        ds.view_as_complex(ds.ones(3))
    with pytest.raises(DTypeError, match="complex: expected both inputs"):
        ds.complex(ds.ones(2), ds.ones(2, dtype=ds.int64))
    with pytest.raises(ArgumentTypeError, match="is_complex: expected a Tensor"):
        ds.is_complex(1j)
    # a real tensor's real part and conjugate are the tensor itself, as in torch
    x = ds.ones(2)
    assert ds.real(x) is x and x.conj() is x


# ---------------------------------------------------------------------- arithmetic and promotion

_OPERANDS = {
    "complex": lambda: _complex_array(2, 3),
    "real": lambda: _RNG.standard_normal((2, 3)),
    "complex_0d": lambda: _complex_array(),
    "real_0d": lambda: np.asarray(_RNG.standard_normal()),
    "float": lambda: 1.5,
    "complex_number": lambda: 0.5 - 2j,
}
_PAIRS = [
    (a, b)
    for a in _OPERANDS
    for b in _OPERANDS
    if ("complex" in a or "complex" in b)
    and not (a in ("float", "complex_number") and b in ("float", "complex_number"))
]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize(("left", "right"), _PAIRS, ids=[f"{a}-{b}" for a, b in _PAIRS])
def test_binary_ops_promote_and_differentiate_as_torch(op: str, left: str, right: str) -> None:
    a, b = _OPERANDS[left](), _OPERANDS[right]()
    fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}
    _check(lambda lib, x, y: fns[op](x, y), a, b)


def test_single_precision_promotion_matches_torch() -> None:
    cases = [
        (ds.ones(2, dtype=ds.complex64), ds.ones(2, dtype=ds.float64), torch.complex128),
        (ds.ones(2, dtype=ds.complex64), ds.tensor(1.0, dtype=ds.float64), torch.complex64),
        (ds.ones(2, dtype=ds.float64), ds.tensor(1j), torch.complex128),
        (ds.ones(2, dtype=ds.int64), ds.tensor(1j, dtype=ds.complex128), torch.complex128),
        (ds.ones(2, dtype=ds.int64), 1j, torch.complex64),
        (ds.ones(2), 2j, torch.complex64),
    ]
    for a, b, want in cases:
        ta = torch.from_numpy(np.array(a.numpy()))
        tb = torch.from_numpy(np.array(b.numpy())) if isinstance(b, ds.Tensor) else b
        assert (ta * tb).dtype == want
        assert str((a * b).dtype) == str(want).replace("torch.", "")


def _written(z: Any) -> Any:
    out = z * 1
    out[0] = z[1] * 2
    return out


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, z: -z,
        lambda lib, z: 2 - z,
        lambda lib, z: z**2,
        lambda lib, z: z**1.5,
        lambda lib, z: z.square(),
        lambda lib, z: z.sum(),
        lambda lib, z: z.sum(1),
        lambda lib, z: z.mean(),
        lambda lib, z: z.mean(0, keepdim=True),
        lambda lib, z: z.reshape(3, 2) * 1,
        lambda lib, z: z.view(-1) * 1,
        lambda lib, z: z.permute(1, 0) * 1,
        lambda lib, z: z.transpose(0, 1) * 1,
        lambda lib, z: z.unsqueeze(1) * 1,
        lambda lib, z: z[:1].squeeze(0) * 1,
        lambda lib, z: z.flatten() * 1,
        lambda lib, z: z[1] * 1,
        lambda lib, z: z[:, 1:] * 1,
        lambda lib, z: z[:, [0, 2, 0]] * 1,
        lambda lib, z: lib.cat([z, z * 2], 1),
        lambda lib, z: lib.stack([z, z.conj()]),
        lambda lib, z: z @ z.mT,
        lambda lib, z: lib.matmul(z, z.T.conj()),
        lambda lib, z: z.clone(),
        lambda lib, z: z.expand(4, 2, 3) * 1,
        lambda lib, z: z.mH * 1,
        lambda lib, z: z.H * 1,
        lambda lib, z: z.adjoint() * 1,
        lambda lib, z: lib.where(lib.tensor([True, False, True]), z, 0.5),
        lambda lib, z: z.masked_fill(lib.tensor([False, True, False]), 0.5),
        lambda lib, z: z.tril() * 1,
        lambda lib, z: z.cumsum(1),
        lambda lib, z: lib.sgn(z),
        lambda lib, z: _written(z),
    ],
    ids=[
        "neg", "rsub", "pow2", "pow1.5", "square", "sum", "sum_dim", "mean", "mean_dim", "reshape", "view",
        "permute", "transpose", "unsqueeze", "squeeze", "flatten", "index", "slice", "fancy_index", "cat",
        "stack", "matmul", "matmul_conj", "clone", "expand", "mH", "H", "adjoint", "where", "masked_fill", "tril",
        "cumsum", "sgn", "setitem",
    ],
)  # fmt: skip
def test_supported_ops_match_torch(fn: Callable[..., Any]) -> None:
    _check(fn, _complex_array(2, 3))


def test_fourier_neural_operator_einsum_matches_torch() -> None:
    # the FNO spectral layer's weight product: (batch, in, x, y) x (in, out, x, y) -> (batch, out, x, y)
    x_ft, w = _complex_array(2, 3, 4, 5), _complex_array(3, 6, 4, 5)
    _check(lambda lib, a, b: lib.einsum("bixy,ioxy->boxy", a, b), x_ft, w)


def test_complex_matmul_with_a_real_matrix_is_refused_as_torch() -> None:
    with pytest.raises(RuntimeError):
        torch.ones(2, 2) @ torch.ones(2, 2, dtype=torch.complex64)
    with pytest.raises(DTypeError, match="same dtype"):
        ds.ones(2, 2) @ ds.ones(2, 2, dtype=ds.complex64)


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("relu", lambda z: ds.relu(z)),
        ("maximum", lambda z: ds.maximum(z, z)),
        ("clamp", lambda z: z.clamp(0, 1)),
        ("erf", lambda z: ds.erf(z)),
        ("logit", lambda z: z.logit()),
    ],
)
def test_ops_without_complex_support_are_refused_by_name(name: str, fn: Callable[..., Any]) -> None:
    z = ds.tensor([1 + 1j, -1j], requires_grad=True)
    with pytest.raises(DTypeError, match=f"{name}: not (implemented|supported) for complex tensors"):
        fn(z)


def test_sign_of_complex_is_refused_as_torch() -> None:
    with pytest.raises(RuntimeError, match="torch.sgn"):
        torch.sign(torch.tensor([1j]))
    with pytest.raises(DTypeError, match="Please use torch.sgn instead"):
        ds.sign(ds.tensor([1j]))


def test_sgn_at_zero_has_torchs_zero_gradient() -> None:
    _check(lambda lib, z: lib.sgn(z), np.array([0j, 3 + 4j]))


@pytest.mark.host_only  # NumPy's ComplexWarning from a host cast (a device namespace warns from its own module)
def test_an_op_that_lifts_its_input_to_float_refuses_complex_by_name() -> None:
    # ops that lift their input to float would drop the imaginary part
    with pytest.raises(DTypeError, match="erfinv: not implemented for complex"):
        ds.erfinv(ds.tensor([1 + 1j]))


def test_double_backward_through_complex_ops_matches_torch() -> None:
    values = _complex_array(3)
    z, ref = _ours(values), _theirs(values)
    (g,) = ds.autograd.grad((z * z * z).abs().sum(), z, create_graph=True)
    (want,) = torch.autograd.grad((ref * ref * ref).abs().sum(), ref, create_graph=True)
    np.testing.assert_allclose(_numpy(g), _numpy(want), rtol=1e-10)
    (gg,) = ds.autograd.grad(ds.real(g * (1 - 1j)).sum(), z)
    (want2,) = torch.autograd.grad(torch.real(want * (1 - 1j)).sum(), ref)
    np.testing.assert_allclose(_numpy(gg), _numpy(want2), rtol=1e-9)


def test_gradients_agree_with_finite_differences() -> None:
    # torch's convention from first principles: dL/dx + i dL/dy for L real
    values = _complex_array(4)
    w = _complex_array(4)

    def loss(v: np.ndarray) -> float:
        z = ds.tensor(v, dtype=ds.complex128)
        y = ds.exp(z) * z / (z.conj() + 3) + z.abs() ** 1.5
        return float(ds.real(y * ds.tensor(w, dtype=ds.complex128)).sum().item())

    z = ds.tensor(values, dtype=ds.complex128, requires_grad=True)
    y = ds.exp(z) * z / (z.conj() + 3) + z.abs() ** 1.5
    ds.real(y * ds.tensor(w, dtype=ds.complex128)).sum().backward()
    h = 1e-6
    want = np.empty(4, complex)
    for i in range(4):
        e = np.zeros(4, complex)
        e[i] = h
        dx = (loss(values + e) - loss(values - e)) / (2 * h)
        dy = (loss(values + 1j * e) - loss(values - 1j * e)) / (2 * h)
        want[i] = dx + 1j * dy
    np.testing.assert_allclose(z.grad.numpy(), want, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------- saving


def test_save_and_load_keep_complex_tensors(tmp_path: Any) -> None:
    state = {"w": ds.tensor([1 + 2j, -3j]), "d": ds.tensor([1j], dtype=ds.complex128)}
    path = os.path.join(tmp_path, "c.ds")
    ds.save(state, path)
    back = ds.load(path)
    for key, value in state.items():
        assert back[key].dtype == value.dtype
        np.testing.assert_array_equal(back[key].numpy(), value.numpy())


def test_a_module_with_a_complex_weight_stored_as_view_as_real_trains_as_torchs() -> None:
    # the FNO pattern that survives state_dict and optimizers: a real parameter viewed as complex
    init = _RNG.standard_normal((3, 2))
    x = _complex_array(4, 3)

    def step(lib: Any, opt_cls: Any) -> Any:
        w = lib.nn.Parameter(lib.tensor(init) if lib is torch else ds.tensor(init, dtype=ds.float64))
        opt = opt_cls([w], lr=0.1)
        data = lib.tensor(x) if lib is torch else ds.tensor(x, dtype=ds.complex128)
        for _ in range(3):
            opt.zero_grad()
            loss = ((data * lib.view_as_complex(w)).abs() ** 2).mean()
            loss.backward()
            opt.step()
        return w

    ours, ref = step(ds, ds.optim.Adam), step(torch, torch.optim.Adam)
    np.testing.assert_allclose(_numpy(ours), _numpy(ref), rtol=1e-10)


def test_safetensors_holds_complex64_and_refuses_complex128(tmp_path: Any) -> None:
    path = os.path.join(tmp_path, "c.safetensors")
    ds.save_safetensors({"w": ds.tensor([1 + 2j, -3j])}, path)
    back = ds.load_safetensors(path)
    assert back["w"].dtype == ds.complex64
    np.testing.assert_array_equal(back["w"].numpy(), np.array([1 + 2j, -3j], np.complex64))
    safetensors_torch = pytest.importorskip("safetensors.torch")
    np.testing.assert_array_equal(safetensors_torch.load_file(path)["w"].numpy(), back["w"].numpy())
    with pytest.raises(Exception, match="complex128"):
        ds.save_safetensors({"w": ds.tensor([1j], dtype=ds.complex128)}, path)


def test_cfloat_and_cdouble_as_torchs() -> None:
    x = ds.tensor([1.0, 2.0])
    assert x.cfloat().dtype == ds.complex64 and x.cdouble().dtype == ds.complex128
    assert str(torch.tensor([1.0, 2.0]).cfloat().dtype) == "torch.complex64"


def test_an_assignment_into_real_writes_the_complex_tensor_as_torch() -> None:
    z, t = ds.tensor([1 + 2j]), torch.tensor([1 + 2j])
    z.real[0] = 5.0
    t.real[0] = 5.0
    np.testing.assert_array_equal(z.numpy(), t.numpy())


@pytest.mark.parametrize(
    "fn",
    [
        lambda L, z: L.linalg.vector_norm(z),
        lambda L, z: L.linalg.norm(z),
        lambda L, z: z.reciprocal(),
        lambda L, z: L.logsumexp(z, 0),
        lambda L, z: L.nn.functional.normalize(z, dim=0),
    ],
    ids=["vector_norm", "linalg.norm", "reciprocal", "logsumexp", "normalize"],
)
def test_ops_that_would_drop_the_imaginary_part_refuse_even_with_warnings_ignored(fn: Callable[..., Any]) -> None:
    z = np.array([3 + 4j, 1j], np.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # training scripts silence warnings; no result may lose the imaginary part
        try:
            out = fn(ds, ds.tensor(z))
        except DTypeError as refusal:
            assert "complex" in str(refusal)
            return
        expected = fn(torch, torch.tensor(z))
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5)


def test_vdot_conjugates_its_first_argument_as_torch() -> None:
    a, b = np.array([1 + 2j, 3j], np.complex64), np.array([2 - 1j, 1 + 1j], np.complex64)
    assert complex(ds.vdot(ds.tensor(a), ds.tensor(b))) == complex(torch.vdot(torch.tensor(a), torch.tensor(b)))


def test_a_complex_state_dict_loads_into_a_complex_parameter() -> None:
    layer = ds.nn.Module()
    layer.w = ds.nn.Parameter(ds.zeros(2, dtype=ds.complex64))
    layer.load_state_dict({"w": ds.tensor(np.array([1 + 2j, 3 - 1j], np.complex64))})
    assert layer.w.detach().numpy().tolist() == [1 + 2j, 3 - 1j]


def test_complex_numbers_have_no_order_as_in_torch() -> None:
    z = ds.tensor([1 + 2j, -3 + 0j])
    assert complex(z[0]) == complex(torch.tensor([1 + 2j])[0]) == 1 + 2j
    for compare in (lambda t: t > 0, lambda t: t < 0, lambda t: t >= 0, lambda t: t <= 0):
        with pytest.raises((RuntimeError, NotImplementedError)):
            compare(torch.tensor([1 + 2j]))
        with pytest.raises(DTypeError, match="no order"):
            compare(z)
