"""BatchNorm1d/2d and LayerNorm against PyTorch: outputs, input and parameter gradients, running
statistics over several steps, eval mode, the options, and double backward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.devices import to_host
from downslope.nn import _jit

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", autouse=True, params=["numpy", "jit"])
def kernels(request: Any) -> Any:
    """Every test runs on the NumPy kernels and again on the compiled ones (when numba is installed)."""
    if request.param == "numpy":
        with _jit.disabled():
            yield request.param
        return
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    yield request.param


def copy_into_torch(ours: nn.Module, ref: Any) -> None:
    ref.load_state_dict({k: torch.tensor(to_host(v)) for k, v in ours.state_dict().items()})


def run_both(assert_close: Any, ours: nn.Module, ref: Any, x: np.ndarray, seed: int = 0) -> None:
    """Forward and backward the same input; compare output, input gradient and parameter gradients."""
    xo = ds.tensor(x, dtype=x.dtype, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out, ref_out = ours(xo), ref(xt)
    assert_close(out.detach().numpy(), ref_out.detach().numpy(), x.dtype, "output")
    proj = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
    (out * ds.tensor(proj, dtype=x.dtype)).sum().backward()
    (ref_out * torch.tensor(proj)).sum().backward()
    assert_close(xo.grad.detach().numpy(), xt.grad.detach().numpy(), x.dtype, "input gradient")  # type: ignore[union-attr]
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        assert_close(p.grad.detach().numpy(), ref_params[name].grad.detach().numpy(), x.dtype, f"gradient of {name}")


def assert_same_state(assert_close: Any, ours: nn.Module, ref: Any) -> None:
    ref_state = ref.state_dict()
    for name, value in ours.state_dict().items():
        value, expected = to_host(value), ref_state[name].detach().numpy()
        if value.dtype.kind == "f":
            assert_close(value, expected, value.dtype, name)
        else:
            np.testing.assert_array_equal(value, expected, err_msg=name)


BN_CASES = [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (16, 5)),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 5, 7)),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 5, 6, 3)),
]


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(momentum=0.3, eps=1e-3),
        dict(momentum=None),
        dict(affine=False),
        dict(track_running_stats=False),
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "default",
)
@pytest.mark.parametrize(("ours_cls", "ref_cls", "shape"), BN_CASES, ids=["1d-NC", "1d-NCL", "2d"])
def test_batch_norm_matches_torch_in_train_then_eval(
    assert_close: Any, ours_cls: Any, ref_cls: Any, shape: tuple, options: dict
) -> None:
    ours = ours_cls(shape[1], **options)
    ref = ref_cls(shape[1], **options)
    if ours.weight is not None:  # non-trivial affine parameters
        ours.weight.data.copy_(ds.tensor(np.linspace(0.5, 2.0, shape[1])))
        ours.bias.data.copy_(ds.tensor(np.linspace(-1.0, 1.0, shape[1])))
    copy_into_torch(ours, ref)
    gen = np.random.default_rng(1)
    for step in range(3):  # several steps: the running statistics must track torch's exactly
        x = (gen.standard_normal(shape) * 3 + 2).astype(np.float32)
        ours.zero_grad()
        ref.zero_grad()
        run_both(assert_close, ours, ref, x, seed=step)
        assert_same_state(assert_close, ours, ref)
    ours.eval()
    ref.eval()
    x = (gen.standard_normal(shape) * 3 + 2).astype(np.float32)
    ours.zero_grad()
    ref.zero_grad()
    run_both(assert_close, ours, ref, x, seed=7)
    assert_same_state(assert_close, ours, ref)  # eval mode leaves the running statistics alone


def test_batch_norm_state_dict_keys_match_torch() -> None:
    assert list(nn.BatchNorm2d(3).state_dict()) == list(torch.nn.BatchNorm2d(3).state_dict())
    assert list(nn.BatchNorm1d(3, affine=False, track_running_stats=False).state_dict()) == []


def test_batch_norm_errors_name_the_layer_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\): input has 3 channels in dim 1 \(shape \(2, 3\)\)"):
        nn.BatchNorm1d(4)(ds.randn(2, 3))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 4-D input"):
        nn.BatchNorm2d(3)(ds.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ds.randn(1, 3))
    nn.BatchNorm1d(3).eval()(ds.randn(1, 3))  # fine in eval mode


def test_functional_batch_norm_matches_torch(assert_close: Any) -> None:
    x = np.random.default_rng(2).standard_normal((6, 3, 4)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    out = F.batch_norm(ds.tensor(x), ds.tensor(rm), ds.tensor(rv), training=True, momentum=0.2)
    ref = torch.nn.functional.batch_norm(torch.tensor(x), rm_t, rv_t, training=True, momentum=0.2)
    assert_close(out.detach().numpy(), ref.detach().numpy(), np.float32, "output")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_and_double_backward(assert_close: Any, training: bool) -> None:
    bn = nn.BatchNorm1d(3).double()
    bn.weight.array[...] = [0.5, 1.5, -2.0]  # type: ignore[union-attr]
    bn.running_var.array[...] = [0.5, 2.0, 1.0]  # type: ignore[union-attr]
    bn.train(training)
    if training:
        bn.track_running_stats = False  # finite differences must not move the running stats
    ds.gradcheck(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [ds.randn(5, 3), ds.randn(3), ds.randn(3)]
    )
    # Second derivative: the gradient-norm penalty, compared with torch.
    x = np.random.default_rng(3).standard_normal((5, 3))
    ref = torch.nn.BatchNorm1d(3, track_running_stats=not training).double()
    ref.load_state_dict({k: torch.tensor(to_host(v)) for k, v in bn.state_dict().items()}, strict=False)
    ref.train(training)
    xo = ds.tensor(x, dtype="float64", requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad((bn(xo) ** 3).sum(), [xo], create_graph=True)
    (gt,) = torch.autograd.grad((ref(xt) ** 3).sum(), [xt], create_graph=True)
    (g * g).sum().backward()
    (gt * gt).sum().backward()
    assert_close(g.detach().numpy(), gt.detach().numpy(), np.float64, "first derivative")
    assert_close(xo.grad.detach().numpy(), xt.grad.detach().numpy(), np.float64, "second derivative")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("normalized_shape", "shape"),
    [(5, (4, 5)), (5, (2, 3, 5)), ((3, 5), (2, 3, 5)), ((2, 3, 4), (2, 2, 3, 4))],
)
@pytest.mark.parametrize("options", [dict(), dict(elementwise_affine=False), dict(bias=False), dict(eps=1e-2)])
def test_layer_norm_matches_torch(assert_close: Any, normalized_shape: Any, shape: tuple, options: dict) -> None:
    ours = nn.LayerNorm(normalized_shape, **options)
    ref = torch.nn.LayerNorm(normalized_shape, **options)
    gen = np.random.default_rng(4)
    for p in ours.parameters():
        p.data.copy_(ds.tensor(gen.standard_normal(p.shape)))
    copy_into_torch(ours, ref)
    x = (gen.standard_normal(shape) * 2 + 1).astype(np.float32)
    run_both(assert_close, ours, ref, x)


def test_layer_norm_double_backward_matches_torch(assert_close: Any) -> None:
    gen = np.random.default_rng(5)
    x, w, b = gen.standard_normal((3, 4)), gen.standard_normal(4), gen.standard_normal(4)
    ds.gradcheck(lambda x, w, b: F.layer_norm(x, (4,), w, b), [x, w, b])
    xo, wo = ds.tensor(x, dtype="float64", requires_grad=True), ds.tensor(w, dtype="float64", requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    go = ds.autograd.grad(
        (F.layer_norm(xo, (4,), wo, ds.tensor(b, dtype="float64")) ** 3).sum(), [xo, wo], create_graph=True
    )
    gt = torch.autograd.grad(
        (torch.nn.functional.layer_norm(xt, (4,), wt, torch.tensor(b)) ** 3).sum(), [xt, wt], create_graph=True
    )
    ((go[0] * go[0]).sum() + (go[1] * go[1]).sum()).backward()
    ((gt[0] * gt[0]).sum() + (gt[1] * gt[1]).sum()).backward()
    assert_close(xo.grad.detach().numpy(), xt.grad.detach().numpy(), np.float64, "second derivative wrt x")  # type: ignore[union-attr]
    assert_close(wo.grad.detach().numpy(), wt.grad.detach().numpy(), np.float64, "second derivative wrt weight")  # type: ignore[union-attr]


def test_layer_norm_shape_error() -> None:
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\) must match the last 1 dim.*\(2, 3\)"):
        nn.LayerNorm(4)(ds.randn(2, 3))


def test_normalization_layers_stay_float32() -> None:
    x = ds.randn(4, 3)
    assert nn.BatchNorm1d(3)(x).dtype == np.float32
    assert nn.BatchNorm1d(3).eval()(x).dtype == np.float32
    assert nn.LayerNorm(3)(x).dtype == np.float32


@pytest.mark.parametrize(("groups", "shape"), [(2, (3, 4, 5)), (1, (2, 6, 3, 3)), (6, (2, 6, 4)), (3, (1, 6, 2, 2))])
def test_group_norm_matches_torch(check_op: Any, groups: int, shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w, b = rng.standard_normal((2, shape[1])).astype(np.float32)
    check_op(
        lambda x, w, b: F.group_norm(x, groups, w, b),
        lambda x, w, b: torch.nn.functional.group_norm(x, groups, w, b),
        [x, w, b],
    )
    check_op(lambda x: nn.GroupNorm(groups, shape[1])(x), torch.nn.GroupNorm(groups, shape[1]), [x])


@pytest.mark.parametrize(
    ("name", "shape", "channels"),
    [("InstanceNorm1d", (3, 4, 6), 4), ("InstanceNorm1d", (4, 6), 4), ("InstanceNorm2d", (2, 3, 4, 5), 3),
     ("InstanceNorm2d", (3, 4, 5), 3)],
)  # fmt: skip
def test_instance_norm_matches_torch(check_op: Any, name: str, shape: tuple, channels: int) -> None:
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(1).standard_normal(shape) * 2 - 1).astype(np.float32)
    check_op(getattr(nn, name)(channels), getattr(torch.nn, name)(channels), [x])
    check_op(getattr(nn, name)(channels, affine=True), getattr(torch.nn, name)(channels, affine=True), [x])


@pytest.mark.parametrize(("shape", "norm_shape"), [((3, 5), (5,)), ((2, 3, 4), (3, 4))])
def test_rms_norm_matches_torch(check_op: Any, shape: tuple, norm_shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(norm_shape).astype(np.float32)
    check_op(
        lambda x, w: F.rms_norm(x, norm_shape, w), lambda x, w: torch.nn.functional.rms_norm(x, norm_shape, w), [x, w]
    )
    check_op(
        lambda x: F.rms_norm(x, norm_shape, eps=1e-3),
        lambda x: torch.nn.functional.rms_norm(x, norm_shape, eps=1e-3),
        [x],
    )
    check_op(nn.RMSNorm(norm_shape), torch.nn.RMSNorm(norm_shape), [x])


def test_batch_norm_3d_matches_torch(check_op: Any) -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, 3, 2, 3, 4)).astype(np.float32)
    check_op(nn.BatchNorm3d(3), torch.nn.BatchNorm3d(3), [x])
    with pytest.raises(ValueError, match="5-D"):
        nn.BatchNorm3d(3)(ds.ones(2, 3, 4))


def test_instance_norm_refuses_a_single_spatial_element_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for mine, theirs, shape in [
        (nn.InstanceNorm1d(4), torch.nn.InstanceNorm1d(4), (2, 4, 1)),
        (nn.InstanceNorm1d(4), torch.nn.InstanceNorm1d(4), (4, 1)),
        (nn.InstanceNorm2d(4), torch.nn.InstanceNorm2d(4), (2, 4, 1, 1)),
        (nn.InstanceNorm3d(4), torch.nn.InstanceNorm3d(4), (2, 4, 1, 1, 1)),
    ]:
        with pytest.raises(ValueError, match="more than 1 spatial element"):
            theirs(torch.zeros(shape))
        with pytest.raises(
            ds.errors.ArgumentError, match=f"{type(mine).__name__}: expected more than 1 spatial element"
        ):
            mine(ds.zeros(*shape))  # was an all-zero output
    with pytest.raises(ds.errors.ArgumentError, match="instance_norm: expected more than 1 spatial element"):
        F.instance_norm(ds.zeros(2, 4, 1))


def test_norms_of_an_empty_batch_are_empty_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for mine, theirs, shape in [
        (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (0, 4, 3)),
        (nn.InstanceNorm1d(4), torch.nn.InstanceNorm1d(4), (0, 4, 3)),
        (nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4), (0, 4)),
        (nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4), (0, 4, 2, 2)),
    ]:
        x = ds.zeros(*shape, requires_grad=True)
        y = mine(x)
        assert y.shape == tuple(theirs(torch.zeros(shape)).shape)
        y.sum().backward()
        assert x.grad.shape == shape
    bn = nn.BatchNorm1d(4)
    bn(ds.zeros(0, 4))
    np.testing.assert_array_equal(to_host(bn.running_mean.array), np.zeros(4))  # unchanged, as in torch
    np.testing.assert_array_equal(to_host(bn.running_var.array), np.ones(4))


def test_local_response_norm_size_zero_raises_as_torch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.nn.LocalResponseNorm(0)(torch.randn(2, 3, 4))
    with pytest.raises(ds.errors.ArgumentError, match="local_response_norm: size .* must be a positive int, got 0"):
        nn.LocalResponseNorm(0)(ds.randn(2, 3, 4))


def test_a_state_dict_without_num_batches_tracked_loads_as_in_torch():
    def pair(lib):
        return lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.BatchNorm1d(2), lib.nn.BatchNorm2d(2))

    theirs, ours = pair(torch), pair(ds)
    sd = {k: v for k, v in theirs.state_dict().items() if not k.endswith("num_batches_tracked")}  # no metadata
    ours[1].num_batches_tracked.array[...] = 5
    theirs[1].num_batches_tracked.fill_(5)
    for strict in (True, False):
        got, expected = ours.load_state_dict(sd, strict=strict), theirs.load_state_dict(sd, strict=strict)
        assert got.missing_keys == expected.missing_keys == []
        assert int(ours[1].num_batches_tracked.item()) == int(theirs[1].num_batches_tracked) == 5  # kept
    np.testing.assert_array_equal(ours[1].running_var.detach().numpy(), theirs[1].running_var.detach().numpy())
    partial = {k: v for k, v in sd.items() if k != "1.running_mean"}
    got, expected = ours.load_state_dict(partial, strict=False), theirs.load_state_dict(partial, strict=False)
    assert got.missing_keys == expected.missing_keys == ["1.running_mean"]
    with pytest.raises(ds.errors.StateDictError, match="running_mean"):
        ours.load_state_dict(partial)


@pytest.mark.parametrize(
    ("shape", "groups"),
    [((1, 3, 1), 3), ((1, 2), 2), ((1, 2, 1, 1), 2), ((2, 3, 1), 3), ((1, 4, 1), 2), ((0, 2, 1), 2)],
)
def test_group_norm_refuses_one_value_per_group_where_torch_does(shape: tuple[int, ...], groups: int) -> None:
    try:
        torch.nn.functional.group_norm(torch.zeros(shape), groups)
    except ValueError as e:
        with pytest.raises(ValueError, match=r"more than 1 value per channel .*input size \[") as got:
            F.group_norm(ds.zeros(*shape), groups)
        assert str(e).split("input size ")[1] in str(got.value)  # torch's size list, [N * C // G, G, *spatial]
    else:
        assert F.group_norm(ds.zeros(*shape), groups).shape == shape
