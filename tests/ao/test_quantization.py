"""ds.ao.quantization (and its older path ds.quantization) against torch's: observers and FakeQuantize
give torch's scale, zero point, output and gradient step after step; the default QAT qconfig builds
the same modules; QuantStub/DeQuantStub are the identity; what needs quantized tensors is refused
with the reason."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES = [
    ("MinMaxObserver", dict(dtype="quint8", qscheme="per_tensor_affine")),
    ("MinMaxObserver", dict(dtype="qint8", qscheme="per_tensor_symmetric")),
    ("MinMaxObserver", dict(dtype="quint8", qscheme="per_tensor_symmetric")),
    ("MinMaxObserver", dict(dtype="quint8", qscheme="per_tensor_affine", reduce_range=True)),
    ("MinMaxObserver", dict(dtype="qint8", qscheme="per_tensor_affine", quant_min=-8, quant_max=7)),
    ("MovingAverageMinMaxObserver", dict(dtype="quint8", qscheme="per_tensor_affine", averaging_constant=0.3)),
    ("MovingAverageMinMaxObserver", dict(dtype="qint8", qscheme="per_tensor_symmetric")),
    ("PerChannelMinMaxObserver", dict(dtype="qint8", qscheme="per_channel_symmetric", ch_axis=1)),
    ("PerChannelMinMaxObserver", dict(dtype="quint8", qscheme="per_channel_affine", ch_axis=0)),
    (
        "MovingAveragePerChannelMinMaxObserver",
        dict(dtype="qint8", qscheme="per_channel_symmetric", averaging_constant=0.5),
    ),
]


def _build(lib, cls, kwargs):
    kw = dict(kwargs, dtype=getattr(lib, kwargs["dtype"]), qscheme=getattr(lib, kwargs["qscheme"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reduce_range's deprecation, from both
        return lib.ao.quantization.FakeQuantize(observer=getattr(lib.ao.quantization, cls), **kw)


@pytest.mark.parametrize("cls, kwargs", CASES)
def test_fake_quantize_steps_match_torch(cls, kwargs):
    fqs = {lib: _build(lib, cls, kwargs) for lib in (torch, ds)}
    rng = np.random.default_rng(1)
    weights = np.arange(60.0, dtype=np.float32).reshape(3, 4, 5)
    for step in range(4):
        x = (rng.standard_normal((3, 4, 5)) * (step + 1) + step * 0.3).astype(np.float32)
        got = {}
        for lib, fq in fqs.items():
            t = lib.tensor(x, requires_grad=True)
            y = fq(t)
            (y * lib.tensor(weights)).sum().backward()
            got[lib] = [y.detach().numpy(), t.grad.numpy(), fq.scale.numpy(), fq.zero_point.numpy()]
        for a, b in zip(got[torch], got[ds]):
            np.testing.assert_array_equal(b, a)
    t_obs, d_obs = (fqs[lib].activation_post_process for lib in (torch, ds))
    np.testing.assert_array_equal(d_obs.min_val.numpy(), t_obs.min_val.numpy())
    (ts, tz), (dsc, dz) = t_obs.calculate_qparams(), d_obs.calculate_qparams()
    np.testing.assert_array_equal(dsc.numpy(), ts.numpy())
    np.testing.assert_array_equal(dz.numpy(), tz.numpy())
    assert str(dz.dtype) == str(tz.dtype).removeprefix("torch.")
    assert sorted(fqs[ds].state_dict()) == sorted(fqs[torch].state_dict())


def test_switches_freeze_the_scale_and_turn_quantization_off():
    fq = ds.ao.quantization.FakeQuantize()
    x = ds.tensor([-1.0, 0.3, 2.0])
    fq(x)
    scale = fq.scale.numpy().copy()
    model = ds.nn.Sequential(fq)
    model.apply(ds.ao.quantization.disable_observer)
    fq(x * 10)
    np.testing.assert_array_equal(fq.scale.numpy(), scale)
    model.apply(ds.ao.quantization.disable_fake_quant)
    np.testing.assert_array_equal(fq(x * 10).numpy(), (x * 10).numpy())
    model.apply(ds.ao.quantization.enable_fake_quant)
    assert not np.array_equal(fq(x * 10).numpy(), (x * 10).numpy())


@pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max")
@pytest.mark.parametrize("backend", ["fbgemm", "x86", "qnnpack", "onednn"])
def test_default_qat_qconfig_builds_torchs_modules(backend):
    def describe(lib):
        qconfig = lib.ao.quantization.get_default_qat_qconfig(backend, version=0)
        act, weight = qconfig.activation(), qconfig.weight()
        return [
            (m.quant_min, m.quant_max, repr(m.qscheme), repr(m.dtype), type(m.activation_post_process).__name__)
            for m in (act, weight)
        ]

    assert describe(ds) == describe(torch)
    assert isinstance(ds.quantization.get_default_qat_qconfig(backend), ds.quantization.QConfig)


def test_stubs_are_the_identity_and_the_old_path_has_the_same_names():
    x = ds.randn(2, 3)
    wrapped = ds.ao.quantization.QuantWrapper(ds.nn.Identity())
    np.testing.assert_array_equal(wrapped(x).numpy(), x.numpy())
    assert ds.ao.quantization.QuantStub()(x) is x and ds.quantization.DeQuantStub()(x) is x
    assert ds.quantization.FakeQuantize is ds.ao.quantization.FakeQuantize
    from downslope.ao.quantization.observer import MovingAverageMinMaxObserver

    assert MovingAverageMinMaxObserver is ds.quantization.MovingAverageMinMaxObserver


def test_fusion_is_reachable_at_torchs_path():
    assert ds.nn.utils.fusion.fuse_conv_bn_eval is ds.nn.utils.fuse_conv_bn_eval


@pytest.mark.parametrize(
    "where, name, fragment",
    [
        ("ao.quantization", "swap_module", "prepare_qat(model) swaps Linear and Conv2d"),
        ("ao.quantization", "convert", "quantized (int8) tensors"),
        ("quantization", "quantize_dynamic", "quantized (int8) tensors"),
        ("ao.quantization", "fuse_modules", "fuse_conv_bn_eval"),
        ("", "quantize_per_tensor", "ds.fake_quantize_per_tensor_affine"),
        ("", "_fake_quantize_learnable_per_tensor_affine", "straight-through"),
    ],
)
def test_quantized_tensors_are_refused_with_the_reason(where, name, fragment):
    module = ds
    for part in filter(None, where.split(".")):
        module = getattr(module, part)
    with pytest.raises(AttributeError) as info:
        getattr(module, name)
    assert isinstance(info.value, ds.errors.DownslopeError)
    assert fragment in str(info.value)


def test_bad_observer_arguments_say_what_was_expected():
    with pytest.raises(ds.errors.ArgumentError, match="per_tensor_symmetric"):
        ds.ao.quantization.MinMaxObserver(qscheme=ds.per_channel_affine)
    with pytest.raises(TypeError, match="ds.quint8"):
        ds.ao.quantization.MinMaxObserver(dtype=ds.float32)
    with pytest.raises(ds.errors.ArgumentError, match="must include 0"):
        ds.ao.quantization.MinMaxObserver(quant_min=1, quant_max=7)


def test_a_fresh_per_channel_fake_quantize_loads_torchs_trained_state():
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    trained = torch.ao.quantization.default_per_channel_weight_fake_quant()
    trained(torch.tensor(x))
    fresh = ds.ao.quantization.default_per_channel_weight_fake_quant()
    state = {k: v.numpy() for k, v in trained.state_dict().items()}
    assert str(fresh.load_state_dict(state)) == "<All keys matched successfully>"
    np.testing.assert_array_equal(fresh.scale.numpy(), trained.scale.numpy())
    fresh.disable_observer()
    trained.disable_observer()
    y = (x * 1.5).astype(np.float32)
    np.testing.assert_array_equal(fresh(ds.tensor(y)).numpy(), trained(torch.tensor(y)).numpy())
