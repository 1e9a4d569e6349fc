"""``repr(module)`` is PyTorch's, character for character, for every module class downslope shares with
``torch.nn``: each built with its defaults, with every optional constructor argument changed in turn
(the alternatives come from PyTorch's own signature) and with a few hand-picked combinations.

A printed model is how users compare a port with the original, so any difference reads as a bug."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# name -> (positional args, keyword args) of the base construction
SPEC: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
# name -> extra constructions: (args or None for the base's, kwargs)
EXTRA: dict[str, list[tuple[tuple[Any, ...] | None, dict[str, Any]]]] = {}
# name -> input that materializes a lazy module
LAZY_INPUT: dict[str, tuple[int, ...]] = {}


def spec(name: str, *args: Any, extra: list[tuple[tuple[Any, ...] | None, dict[str, Any]]] = (), **kw: Any) -> None:  # type: ignore[assignment]
    SPEC[name] = (args, kw)
    EXTRA[name] = list(extra)


for _n in ["CELU", "ELU", "GELU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "LeakyReLU", "LogSigmoid",
           "Mish", "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid", "Softplus", "Softshrink", "Softsign", "Tanh",
           "Tanhshrink", "Identity", "Softmax2d", "PReLU", "RReLU", "AlphaDropout", "FeatureAlphaDropout", "Dropout",
           "Dropout1d", "Dropout2d", "Dropout3d", "Flatten", "CosineSimilarity", "PairwiseDistance", "GLU"]:  # fmt: skip
    spec(_n)
spec("Hardshrink", extra=[(None, {"lambd": 1.5})])
spec("Threshold", 0.1, 20.0)
for _n in ["LogSoftmax", "Softmax", "Softmin"]:
    spec(_n, dim=1, extra=[(None, {"dim": d}) for d in (-1, 0, None)])
spec("Linear", 5, 3)
spec("Bilinear", 4, 5, 3)
spec("Unflatten", 1, (2, 2))
spec("Embedding", 10, 4, extra=[(None, {"padding_idx": -1, "max_norm": 1.0, "norm_type": 3.0, "sparse": True})])
spec("EmbeddingBag", 10, 4, extra=[(None, {"mode": m}) for m in ("sum", "max")] + [(None, {"padding_idx": 2})])
spec("ChannelShuffle", 2)
spec("PixelShuffle", 2)
spec("PixelUnshuffle", 2)
spec("Unfold", kernel_size=2, extra=[(None, {"kernel_size": (2, 3), "padding": (1, 0), "stride": 2})])
spec("Fold", output_size=(4, 5), kernel_size=2, extra=[(None, {"padding": 1, "dilation": (1, 2), "stride": 2})])
spec("Upsample", scale_factor=2, extra=[
    (None, {"mode": "bilinear", "align_corners": True}), (None, {"size": (5, 7), "scale_factor": None}),
    (None, {"scale_factor": (1.5, 2)}), (None, {"scale_factor": 1.7, "mode": "bicubic"}), (None, {"size": 4, "scale_factor": None}),
])  # fmt: skip
spec("UpsamplingBilinear2d", scale_factor=2, extra=[(None, {"size": (3, 4), "scale_factor": None})])
spec("UpsamplingNearest2d", scale_factor=2, extra=[(None, {"size": 3, "scale_factor": None})])
spec("LocalResponseNorm", 3)
spec("CrossMapLRN2d", 3, extra=[((5, 1e-3, 0.5, 2.0), {})])
spec("GroupNorm", 2, 4, extra=[((1, 4), {"affine": False, "bias": True})])
spec("LayerNorm", [5], extra=[(((4, 5),), {}), ((5,), {"elementwise_affine": False, "bias": True})])
spec("RMSNorm", [5], extra=[(((4, 5),), {"eps": 1e-3})])
for _d in (1, 2, 3):
    spec(f"AdaptiveAvgPool{_d}d", 3, extra=[(((2,) * _d,), {})] if _d > 1 else [])
    spec(f"AdaptiveMaxPool{_d}d", 3, extra=[((4,), {"return_indices": True})])
    spec(f"AvgPool{_d}d", 3, stride=2, extra=[(None, {"padding": 1, "ceil_mode": True, "count_include_pad": False})])
    spec(f"MaxPool{_d}d", 3, stride=2, extra=[(None, {"dilation": 2, "padding": 1, "return_indices": True})])
    spec(f"LPPool{_d}d", 2, 3, stride=2)
    spec(f"MaxUnpool{_d}d", 2, extra=[((3,), {"stride": 2, "padding": 1})])
    _pads = {1: (1, 2), 2: (1, 2, 0, 1), 3: (1, 0, 2, 1, 1, 0)}[_d]
    for _p in ["Reflection", "Replication", "Circular", "Zero"]:
        spec(f"{_p}Pad{_d}d", _pads, extra=[((1,), {})])
    spec(f"ConstantPad{_d}d", _pads, 3.5, extra=[((2, -1.0), {}), ((1, 0.0), {})])
    spec(f"Conv{_d}d", 4, 6, 3, extra=[
        (None, {"padding": "same", "dilation": 2, "padding_mode": "reflect"}),
        (None, {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False}),
        (None, {"padding": "valid"}), (None, {"padding": 1, "padding_mode": "circular"}),
    ])  # fmt: skip
    spec(f"ConvTranspose{_d}d", 4, 6, 3, extra=[
        (None, {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 2}),
        (None, {"groups": 2, "stride": 3, "output_padding": 2, "bias": False}),
    ])  # fmt: skip
    spec(
        f"BatchNorm{_d}d", 4, extra=[(None, {"affine": False, "bias": True}), (None, {"bias": False, "momentum": None})]
    )
    spec(f"InstanceNorm{_d}d", 4, extra=[(None, {"affine": True, "track_running_stats": True, "bias": False})])
    # the lazy layers, shown before and after their first input
    _shape = {1: (2, 4, 10), 2: (2, 4, 7, 6), 3: (2, 4, 5, 4, 5)}[_d]
    spec(f"LazyConv{_d}d", 6, 3, extra=[(None, {"padding": "same"}), (None, {"groups": 2, "dilation": 2})])
    spec(f"LazyConvTranspose{_d}d", 6, 3, extra=[(None, {"dilation": 2, "stride": 2, "output_padding": 1})])
    spec(f"LazyBatchNorm{_d}d", extra=[(None, {"bias": False}), (None, {"affine": False})])
    spec(f"LazyInstanceNorm{_d}d", extra=[(None, {"bias": False}), (None, {"track_running_stats": False})])
    for _n in (f"LazyConv{_d}d", f"LazyConvTranspose{_d}d", f"LazyBatchNorm{_d}d", f"LazyInstanceNorm{_d}d"):
        LAZY_INPUT[_n] = _shape
spec("SyncBatchNorm", 4, extra=[(None, {"affine": False, "momentum": None})])
spec("LazyLinear", 3)
LAZY_INPUT["LazyLinear"] = (2, 5)
spec("FractionalMaxPool2d", 2, output_size=(3, 3), extra=[(None, {"output_size": None, "output_ratio": 0.5})])
spec("FractionalMaxPool3d", 2, output_size=(3, 3, 3), extra=[(None, {"output_size": None, "output_ratio": 0.5})])
for _n in ["RNN", "GRU", "LSTM"]:
    spec(_n, 4, 5, extra=[
        (None, {"num_layers": 2, "bidirectional": True, "dropout": 0.5}),
        (None, {"batch_first": True, "bias": False}),
    ] + ([(None, {"proj_size": 2, "num_layers": 2, "bidirectional": True})] if _n == "LSTM" else [])
      + ([(None, {"nonlinearity": "relu"})] if _n == "RNN" else []))  # fmt: skip
    spec(_n + "Cell", 4, 5, extra=[(None, {"bias": False})] + ([(None, {"nonlinearity": "relu", "bias": False})] if _n == "RNN" else []))  # fmt: skip
spec("MultiheadAttention", 8, 2, extra=[(None, {"kdim": 3, "vdim": 5, "batch_first": True, "dropout": 0.1})])
_TRANSFORMER = {"dim_feedforward": 16, "dropout": 0.0}
spec("TransformerEncoderLayer", 8, 2, **_TRANSFORMER, extra=[(None, {"bias": False, "norm_first": True})])
spec("TransformerDecoderLayer", 8, 2, **_TRANSFORMER, extra=[(None, {"bias": False, "activation": "gelu"})])
spec("Transformer", d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, **_TRANSFORMER)
# losses: PyTorch's print no arguments (only TripletMarginWithDistanceLoss's distance module)
for _n in ["L1Loss", "MSELoss", "HuberLoss", "SmoothL1Loss", "SoftMarginLoss", "BCELoss", "BCEWithLogitsLoss",
           "CrossEntropyLoss", "NLLLoss", "NLLLoss2d", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss",
           "CosineEmbeddingLoss", "HingeEmbeddingLoss", "MarginRankingLoss", "MultiLabelMarginLoss",
           "MultiLabelSoftMarginLoss", "MultiMarginLoss", "TripletMarginLoss", "CTCLoss"]:  # fmt: skip
    spec(_n)
spec("TripletMarginWithDistanceLoss", extra=[
    (None, {"distance_function": "cosine"}), (None, {"distance_function": "lambda"}),
])  # fmt: skip
spec("AdaptiveLogSoftmaxWithLoss", 16, 10, [4, 7], extra=[(None, {"head_bias": True, "div_value": 2.0})])
spec("LinearCrossEntropyLoss", 5, 3, extra=[(None, {"out_features": (2, 4), "bias": True, "label_smoothing": 0.1})])

# the module containers and bases, built in _build below
CONTAINERS = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
              "TransformerEncoder", "TransformerDecoder", "RNNBase", "RNNCellBase", "DataParallel"]  # fmt: skip

# Alternatives for an optional argument, by name (otherwise a bool default is flipped).
ALT: dict[str, list[Any]] = {
    "reduction": ["sum", "none"], "eps": [1e-3], "momentum": [None, 0.3], "margin": [0.7], "delta": [0.5],
    "beta": [0.5, 2.0], "threshold": [1.0], "alpha": [0.5], "negative_slope": [0.2], "lambd": [0.2],
    "approximate": ["tanh"], "min_val": [-0.5], "max_val": [0.5], "p": [0.2], "num_layers": [2],
    "nonlinearity": ["relu"], "proj_size": [2], "norm_type": [1.0], "max_norm": [0.5], "label_smoothing": [0.2],
    "ignore_index": [1], "blank": [1], "padding_idx": [0], "div_value": [2.0], "activation": ["gelu"],
    "value": [2.5], "start_dim": [0, 2], "end_dim": [1], "divisor_override": [2], "stride": [2], "init": [0.1],
    "upper": [0.5], "lower": [0.05], "dilation": [2], "padding": [1, "same"], "groups": [2],
    "padding_mode": ["reflect", "replicate", "circular"], "output_padding": [1], "dim": [0, -1],
    "num_parameters": [4], "k": [2.0], "size": [2], "mode": ["sum"], "dropout": [0.25], "keepdim": [True],
    "ceil_mode": [True], "count_include_pad": [False], "log_target": [True], "full": [True], "log_input": [False],
    "swap": [True], "head_bias": [True],
}  # fmt: skip
# Arguments that never reach the repr, or that the alternatives above cannot give sensibly.
SKIP_ARGS = {"self", "device", "dtype", "size_average", "reduce", "_weight", "_freeze", "custom_encoder",
             "custom_decoder", "layer_norm_eps", "enable_nested_tensor", "mask_check", "norm", "encoder_layer",
             "decoder_layer", "weight", "pos_weight", "distance_function", "_random_samples", "sparse", "args",
             "kwargs", "include_last_offset", "kdim", "vdim"}  # fmt: skip
# Alternative values a class does not accept (PyTorch would raise, or the combination is invalid).
SKIP_VARIANT = {
    ("ConvTranspose1d", "padding", "same"), ("ConvTranspose2d", "padding", "same"),
    ("ConvTranspose3d", "padding", "same"), ("LazyConvTranspose1d", "padding", "same"),
    ("LazyConvTranspose2d", "padding", "same"), ("LazyConvTranspose3d", "padding", "same"),
}  # fmt: skip


def _variants(name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    args, base = SPEC[name]
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = [(args, dict(base))]
    params = inspect.signature(getattr(torch.nn, name).__init__).parameters
    for pname, p in params.items():
        if pname in SKIP_ARGS or pname in base or p.default is inspect.Parameter.empty:
            continue
        values = [not p.default] if isinstance(p.default, bool) else ALT.get(pname, [])
        for v in values:
            if (name, pname, v) not in SKIP_VARIANT:
                out.append((args, {**base, pname: v}))
    for extra_args, kw in EXTRA[name]:
        out.append((args if extra_args is None else extra_args, {**base, **kw}))
    return out


def _resolve(lib: Any, kw: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kw)
    if kw.get("distance_function") == "cosine":
        kw["distance_function"] = lib.nn.CosineSimilarity()
    elif kw.get("distance_function") == "lambda":
        kw["distance_function"] = lambda a, b: (a - b).abs().sum(-1)
    return kw


def _pair(name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> tuple[Any, Any] | None:
    try:
        theirs = getattr(torch.nn, name)(*args, **_resolve(torch, kw))
    except Exception:
        return None  # a combination PyTorch refuses is not a repr question
    ours = getattr(ds.nn, name)(*args, **_resolve(ds, kw))
    return theirs, ours


@pytest.mark.parametrize("name", sorted(SPEC))
def test_repr_matches_torch(name: str) -> None:
    if not hasattr(ds.nn, name):
        pytest.skip(f"downslope.nn has no {name}")
    checked = 0
    for args, kw in _variants(name):
        built = _pair(name, args, kw)
        if built is None:
            continue
        theirs, ours = built
        assert repr(ours) == repr(theirs), f"{name}{args} {kw}"
        if name in LAZY_INPUT:  # a lazy layer prints the layer it becomes once it has seen an input
            x = np.random.default_rng(0).standard_normal(LAZY_INPUT[name]).astype(np.float32)
            try:
                with torch.no_grad():
                    theirs(torch.from_numpy(x))
            except RuntimeError:  # an input too small for this configuration: nothing to materialize
                continue
            ours(ds.from_numpy(x))
            assert repr(ours) == repr(theirs), f"{name}{args} {kw} after its first input"
        checked += 1
    assert checked >= 1


def _build(lib: Any, name: str) -> Any:
    nn = lib.nn
    if name == "Module":
        return nn.Module()
    if name == "Sequential":
        return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.1)), nn.Linear(3, 1))
    if name == "ModuleList":
        return nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.Tanh()])
    if name == "ModuleDict":
        return nn.ModuleDict({"act": nn.GELU(), "proj": nn.Linear(2, 4, bias=False)})
    if name == "ParameterList":
        return nn.ParameterList([nn.Parameter(lib.zeros(2, 3)), nn.Parameter(lib.zeros(4))])
    if name == "ParameterDict":
        return nn.ParameterDict({"a": nn.Parameter(lib.zeros(2)), "b": nn.Parameter(lib.zeros(1, 3))})
    if name == "TransformerEncoder":
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
        return nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8), enable_nested_tensor=False)
    if name == "TransformerDecoder":
        return nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0), 1)
    if name == "RNNBase":
        return nn.RNNBase("LSTM", 4, 5, num_layers=2, proj_size=2)
    if name == "RNNCellBase":
        return nn.RNNCellBase(4, 5, bias=False, num_chunks=3)
    if name == "DataParallel":
        return nn.DataParallel(nn.Linear(2, 2))
    raise AssertionError(name)


# Deliberate differences, as (class, PyTorch's text, downslope's text) replacements applied to PyTorch's
# repr before comparing:
ALLOWED = {
    # downslope's dtypes are NumPy's: a parameter's dtype prints as float32, not torch.float32
    "ParameterList": ("torch.float32", "float32"),
    "ParameterDict": ("torch.float32", "float32"),
}


@pytest.mark.host_only  # a parameter's repr names its device when it is not the CPU, as PyTorch's does
@pytest.mark.parametrize("name", CONTAINERS)
def test_container_and_base_reprs_match_torch(name: str) -> None:
    if not hasattr(ds.nn, name):
        pytest.skip(f"downslope.nn has no {name}")
    ours, theirs = _build(ds, name), _build(torch, name)
    want = repr(theirs)
    if name in ALLOWED:
        want = want.replace(*ALLOWED[name])
    assert repr(ours) == want


def test_multihead_attention_out_proj_is_torchs_class_and_a_linear() -> None:
    mha = ds.nn.MultiheadAttention(8, 2)
    assert type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    assert isinstance(mha.out_proj, ds.nn.Linear)
    assert list(mha.state_dict()) == list(torch.nn.MultiheadAttention(8, 2).state_dict())


def test_every_shared_module_class_is_covered() -> None:
    shared = {
        n
        for n, c in vars(torch.nn).items()
        if isinstance(c, type) and issubclass(c, torch.nn.Module) and hasattr(ds.nn, n)
    }
    missing = shared - set(SPEC) - set(CONTAINERS)
    assert not missing, f"add these to SPEC (or CONTAINERS): {sorted(missing)}"
