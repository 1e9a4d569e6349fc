"""Optimizers on float16 parameters against torch over five steps, with large (|g| > 256, whose
square overflows float16) and tiny gradients: PyTorch keeps float16 state but computes in float32
(its opmath), so the stored moments must be torch's numbers exactly; the parameters follow, bar the
float16 roundings that torch's kernels make at other points of the step (its add(alpha=lr) rounds lr
to float16; AdamW decays the parameter before stepping it; NAdam adds two terms separately; RAdam
rounds lr times its update)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

N = 64  # whole SIMD vectors in torch's float16 kernels (their scalar tails round some ops differently)

CASES: list[tuple[str, dict[str, Any]]] = [
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"weight_decay": 0.1}),
    ("AdamW", {}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True, "momentum": 0.9}),
    ("Adagrad", {}),
    ("Adadelta", {}),
    ("Adamax", {}),
    ("NAdam", {}),
    ("RAdam", {}),
    ("SGD", {"momentum": 0.9}),
]
#: where torch's float16 step and this one round the parameter update identically
SAME_PARAMS = {"Adam", "Adagrad", "Adadelta", "NAdam"}


def _gradient(kind: str, step: int) -> np.ndarray:
    r = np.random.default_rng(step)
    sign = r.choice([-1.0, 1.0], N)
    scale = r.uniform(300, 2000, N) if kind == "large" else r.uniform(0.005, 0.05, N)
    return (sign * scale).astype(np.float16)


def _start() -> np.ndarray:
    return np.random.default_rng(1).uniform(-2, 2, N).astype(np.float16)


def _run(lib: Any, name: str, options: dict[str, Any], kind: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    p = lib.nn.Parameter(lib.tensor(_start()))
    opt = getattr(lib.optim, name)([p], lr=1.0 if name == "Adadelta" else 0.01, **options)
    for step in range(5):
        p.grad = lib.tensor(_gradient(kind, step))
        opt.step()
    state = {k: np.array(v.numpy()) for k, v in opt.state[p].items() if k != "step" and v.ndim > 0}
    return np.array(p.detach().numpy()), state


@pytest.mark.parametrize("kind", ["large", "tiny"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_float16_state_is_torch_exactly(name: str, options: dict[str, Any], kind: str) -> None:
    params, state = _run(ds, name, options, kind)
    ref_params, ref_state = _run(torch, name, options, kind)
    assert set(state) == set(ref_state)
    for key, ref in ref_state.items():
        assert state[key].dtype == np.float16, key
        np.testing.assert_array_equal(state[key], ref, err_msg=key)
    assert params.dtype == np.float16
    finite = np.isfinite(ref_params)  # torch's float16 Adam divides by eps rounded to 0 where v underflows
    if name in SAME_PARAMS and options.get("weight_decay") is None:
        np.testing.assert_array_equal(params[finite], ref_params[finite])
    else:
        # torch rounds the update (or lr, in its float16 add(alpha=-lr)) to float16 where this step keeps
        # float32: apart by a float16 rounding of the distance moved, plus one of the parameter, per step
        moved = np.abs(ref_params[finite].astype(np.float32) - _start()[finite])
        ulp = np.spacing(np.abs(ref_params[finite])).astype(np.float32)
        err = np.abs(params[finite].astype(np.float32) - ref_params[finite])
        assert (err <= 5 * (ulp + moved * 2.0**-11)).all()


def test_large_float16_gradients_keep_the_parameter_moving() -> None:
    # the report's case: g**2 formed in float16 was inf for |g| > 256, and the parameter stopped
    for name in ("Adam", "AdamW", "RMSprop"):
        p = ds.nn.Parameter(ds.ones(3, dtype=ds.float16))
        opt = getattr(ds.optim, name)([p], lr=1e-3)
        p.grad = ds.tensor([300.0, 10.0, -500.0], dtype=ds.float16)
        opt.step()
        key = "square_avg" if name == "RMSprop" else "exp_avg_sq"
        assert np.isfinite(opt.state[p][key].numpy()).all()
        assert (p.detach().numpy() != 1).all()


def _spread_gradient(shape: tuple[int, ...], step: int) -> np.ndarray:
    """Magnitudes from 1e-3 to 2000 (float16 squares underflow at one end and overflow at the other)."""
    r = np.random.default_rng(10 + step)
    magnitude = np.geomspace(1e-3, 2000, int(np.prod(shape))).reshape(shape) * r.uniform(0.5, 1.5, shape)
    return (magnitude * r.choice([-1.0, 1.0], shape)).astype(np.float16)


def _steps(lib: Any, name: str, shape: tuple[int, ...], options: dict[str, Any]) -> tuple[Any, Any]:
    p = lib.nn.Parameter(lib.tensor(np.random.default_rng(2).standard_normal(shape).astype(np.float16)))
    opt = getattr(lib.optim, name)([p], **options)
    for step in range(5):
        p.grad = lib.tensor(_spread_gradient(shape, step))
        opt.step()
    return p, opt


ADAFACTOR_OPTIONS: list[dict[str, Any]] = [
    {},
    {"lr": 0.01, "weight_decay": 0.1},
    {"beta2_decay": -0.5, "eps": (None, 1e-2), "maximize": True},
]


@pytest.mark.parametrize("options", ADAFACTOR_OPTIONS, ids=str)
@pytest.mark.parametrize("shape", [(N,), (8, 8), (2, 4, 8)], ids=str)  # a vector, a matrix, a batch of them
def test_adafactor_float16_is_torch_exactly(shape: tuple[int, ...], options: dict[str, Any]) -> None:
    """torch's float16 Adafactor: each op in float32, rounded once to float16 (the norms too, before .item()),
    and add_(alpha=) reading alpha at its float16 value: the states and the parameters are torch's numbers."""
    ours, opt = _steps(ds, "Adafactor", shape, options)
    ref, ref_opt = _steps(torch, "Adafactor", shape, options)
    state, ref_state = opt.state[ours], ref_opt.state[ref]
    assert set(state) == set(ref_state)
    for key, value in ref_state.items():
        if key != "step":
            assert state[key].dtype == ds.float16, key
        np.testing.assert_array_equal(state[key].numpy(), value.numpy(), err_msg=key)
    np.testing.assert_array_equal(ours.detach().numpy(), ref.detach().numpy())


def test_nadam_float16_mu_product_is_float32_as_torch() -> None:
    ours, opt = _steps(ds, "NAdam", (N,), {})
    ref, ref_opt = _steps(torch, "NAdam", (N,), {})
    mu, ref_mu = opt.state[ours]["mu_product"], ref_opt.state[ref]["mu_product"]
    assert str(mu.dtype) == str(ref_mu.dtype).replace("torch.", "") == "float32"
    assert mu.item() == ref_mu.item()


NADAM_OPTIONS: list[dict[str, Any]] = [
    {},
    {"weight_decay": 0.1},
    {"weight_decay": 0.1, "decoupled_weight_decay": True},
    {"momentum_decay": 0.02, "maximize": True},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-4},
]


def _nadam_float16(lib: Any, options: dict[str, Any], steps: int, kind: str = "spread") -> tuple[Any, Any]:
    p = lib.nn.Parameter(lib.tensor(_start()))
    opt = lib.optim.NAdam([p], **options)
    for step in range(steps):
        p.grad = lib.tensor(_spread_gradient((N,), step) if kind == "spread" else _gradient(kind, step))
        opt.step()
    return p, opt


def _same_bits(ours: Any, ref: Any) -> None:
    """Equal float16 numbers, NaN where torch's is (a float16 v that underflows to 0 divides by 0)."""
    np.testing.assert_array_equal(ours.detach().numpy(), ref.detach().numpy())


@pytest.mark.parametrize("kind", ["spread", "large", "tiny"])
@pytest.mark.parametrize("options", NADAM_OPTIONS, ids=str)
def test_nadam_float16_parameters_are_torch_bit_for_bit(options: dict[str, Any], kind: str) -> None:
    """torch's float16 NAdam stores the parameter after its decoupled decay and after each of its two
    addcdiv_ (whose coefficients it computes in float64 from the float32 mu_product): ten steps land on
    its very float16 numbers, and the product on its float32 one."""
    ours, opt = _nadam_float16(ds, options, 10, kind)
    ref, ref_opt = _nadam_float16(torch, options, 10, kind)
    _same_bits(ours, ref)
    mu, ref_mu = opt.state[ours]["mu_product"], ref_opt.state[ref]["mu_product"]
    assert mu.dtype == ds.float32 and mu.shape == ()
    assert mu.item() == ref_mu.item()
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(opt.state[ours][key].numpy(), ref_opt.state[ref][key].numpy(), err_msg=key)


def test_nadam_float16_mu_product_view_is_live() -> None:
    """A value written into opt.state[p]['mu_product'] is the product the next step uses (as torch's
    tensor, updated in place), in float32."""
    ours, opt = _nadam_float16(ds, {}, 3)
    ref, ref_opt = _nadam_float16(torch, {}, 3)
    view = opt.state[ours]["mu_product"]
    view.fill_(0.123456789)
    ref_opt.state[ref]["mu_product"].fill_(0.123456789)
    assert view.item() == ref_opt.state[ref]["mu_product"].item()  # rounded to float32, not float16
    for step in range(3, 6):
        ours.grad = ds.tensor(_spread_gradient((N,), step))
        ref.grad = torch.tensor(_spread_gradient((N,), step))
        opt.step()
        ref_opt.step()
    _same_bits(ours, ref)
    assert view.item() == ref_opt.state[ref]["mu_product"].item()


def test_nadam_float16_state_dict_round_trip_and_torch_checkpoint() -> None:
    """state_dict gives the float32 product; a run resumed from it (or from torch's state_dict) is torch's
    uninterrupted run to the bit. (torch's own load_state_dict casts mu_product to the parameters' float16,
    so a resumed torch run drifts from its uninterrupted one; this one keeps float32, as torch's steps do.)"""
    ours, opt = _nadam_float16(ds, {"weight_decay": 0.1}, 4)
    ref, ref_opt = _nadam_float16(torch, {"weight_decay": 0.1}, 4)
    saved = opt.state_dict()
    assert saved["state"][0]["mu_product"].dtype == ds.float32
    from_torch = {
        "state": {0: {k: ds.tensor(v.numpy()) for k, v in ref_opt.state_dict()["state"][0].items()}},
        "param_groups": opt.state_dict()["param_groups"],
    }
    for step in range(4, 8):
        ref.grad = torch.tensor(_spread_gradient((N,), step))
        ref_opt.step()
    for state_dict in (saved, from_torch):
        p = ds.nn.Parameter(ours.detach().clone())
        again = ds.optim.NAdam([p], weight_decay=0.1)
        again.load_state_dict(state_dict)
        assert again.state[p]["mu_product"].dtype == ds.float32
        for step in range(4, 8):
            p.grad = ds.tensor(_spread_gradient((N,), step))
            again.step()
        _same_bits(p, ref)
        assert again.state[p]["mu_product"].item() == ref_opt.state[ref]["mu_product"].item()


def test_nadam_loads_a_float16_mu_product_from_an_older_checkpoint() -> None:
    """Checkpoints saved while the product was kept in the parameters' float16 still load: the value
    widens to float32 exactly, and the next steps are torch's from that same product."""
    ours, opt = _nadam_float16(ds, {}, 3)
    ref, ref_opt = _nadam_float16(torch, {}, 3)
    saved = opt.state_dict()
    old = np.float16(saved["state"][0]["mu_product"].item())
    saved["state"][0]["mu_product"] = ds.tensor(np.full(N, old))  # older form: the parameter's shape, float16
    p = ds.nn.Parameter(ours.detach().clone())
    again = ds.optim.NAdam([p])
    again.load_state_dict(saved)
    mu = again.state[p]["mu_product"]
    assert mu.dtype == ds.float32 and mu.item() == float(old)
    ref_opt.state[ref]["mu_product"].fill_(float(old))
    for step in range(3, 6):
        p.grad = ds.tensor(_spread_gradient((N,), step))
        ref.grad = torch.tensor(_spread_gradient((N,), step))
        again.step()
        ref_opt.step()
    _same_bits(p, ref)


def test_nadam_float16_parameters_with_uneven_steps_are_torch_bit_for_bit() -> None:
    """Two float16 parameters in one buffer, one of which misses steps: each keeps its own float32 product."""

    def run(lib: Any) -> tuple[Any, Any, Any]:
        a = lib.nn.Parameter(lib.tensor(_start()))
        b = lib.nn.Parameter(lib.tensor(_start()[::-1].copy()))
        opt = lib.optim.NAdam([a, b], lr=0.01)
        for step in range(6):
            a.grad = lib.tensor(_spread_gradient((N,), step))
            b.grad = lib.tensor(_spread_gradient((N,), step + 20)) if step % 2 else None
            opt.step()
        return a, b, opt

    a, b, opt = run(ds)
    ra, rb, ref_opt = run(torch)
    _same_bits(a, ra)
    _same_bits(b, rb)
    for ours, ref in ((a, ra), (b, rb)):
        mu = opt.state[ours]["mu_product"]
        assert mu.dtype == ds.float32
        assert mu.item() == ref_opt.state[ref]["mu_product"].item()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nadam_mu_product_dtype_is_torch_scalar_dtype(dtype: str) -> None:
    """float32 for float32 and float64 parameters alike (torch's _get_scalar_dtype), with its value."""

    def run(lib: Any) -> Any:
        p = lib.nn.Parameter(lib.tensor(_start().astype(dtype)))
        opt = lib.optim.NAdam([p])
        for step in range(4):
            p.grad = lib.tensor(_spread_gradient((N,), step).astype(dtype))
            opt.step()
        return opt.state[p]["mu_product"]

    mu, ref_mu = run(ds), run(torch)
    assert str(mu.dtype) == str(ref_mu.dtype).replace("torch.", "") == "float32"
    assert mu.item() == ref_mu.item()


def test_bfloat16_parameters_are_refused() -> None:
    """NumPy has no bfloat16, so there is no bfloat16 NAdam state to keep: the parameter itself is refused."""
    with pytest.raises(TypeError, match="bfloat16"):
        ds.nn.Parameter(ds.ones(N, dtype=ds.bfloat16))
