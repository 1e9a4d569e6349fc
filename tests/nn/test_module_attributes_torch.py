"""Module attributes that torch code reads (``conv.transposed``, ``pool.kernel_size``, ``rnn.nonlinearity``,
...) exist and hold what torch's hold, of the same type (an int where torch keeps an int, a tuple where it
makes one), and reprs print the numbers as torch's do."""

from __future__ import annotations

from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], tuple[str, ...]]] = [
    ("RNN", (3, 4), {"nonlinearity": "relu"}, ("nonlinearity",)),
    ("RNN", (3, 4), {}, ("nonlinearity",)),
    ("Conv1d", (3, 4, 3), {}, ("transposed", "output_padding", "padding_mode", "padding", "stride")),
    ("Conv2d", (3, 4, 3), {"padding": "same"}, ("transposed", "output_padding", "padding_mode", "padding")),
    ("Conv3d", (1, 1, 3), {}, ("transposed", "output_padding", "padding_mode")),
    ("ConvTranspose1d", (2, 3, 3), {}, ("transposed", "output_padding", "padding_mode")),
    (
        "ConvTranspose2d",
        (2, 3, 3),
        {"stride": 2, "output_padding": 1},
        ("transposed", "output_padding", "padding_mode"),
    ),
    ("ConvTranspose3d", (2, 3, 3), {}, ("transposed", "output_padding", "padding_mode")),
    ("ReLU6", (), {}, ("min_val", "max_val", "inplace")),
    ("Hardtanh", (-2, 2), {}, ("min_val", "max_val")),
    ("Softplus", (), {"beta": 2}, ("beta", "threshold")),
    ("Threshold", (0.1, 20), {}, ("threshold", "value")),
    ("MaxPool1d", (3, 2), {}, ("kernel_size", "stride", "padding", "dilation")),
    ("MaxPool2d", (3,), {}, ("kernel_size", "stride", "padding", "dilation")),
    ("MaxPool2d", ((3, 2), 1), {}, ("kernel_size", "stride", "padding", "dilation")),
    ("MaxPool3d", (2,), {}, ("kernel_size", "stride", "padding", "dilation")),
    ("AvgPool1d", (3, 2), {}, ("kernel_size", "stride", "padding")),
    ("AvgPool1d", (3,), {}, ("kernel_size", "stride", "padding")),
    ("AvgPool2d", (3, 2), {}, ("kernel_size", "stride", "padding")),
    ("AvgPool2d", (3,), {}, ("kernel_size", "stride", "padding")),
    ("AvgPool3d", (2,), {}, ("kernel_size", "stride", "padding")),
    ("MaxUnpool1d", (2,), {}, ("kernel_size", "stride", "padding")),
    ("MaxUnpool2d", (2,), {}, ("kernel_size", "stride", "padding")),
    ("MaxUnpool2d", (2, 1, 1), {}, ("kernel_size", "stride", "padding")),
    ("MaxUnpool3d", (2,), {}, ("kernel_size", "stride", "padding")),
    ("FractionalMaxPool2d", (2,), {"output_size": 3}, ("kernel_size", "output_size", "output_ratio")),
    ("FractionalMaxPool2d", (3,), {"output_ratio": 0.5}, ("kernel_size", "output_size", "output_ratio")),
    ("FractionalMaxPool3d", (2,), {"output_size": 3}, ("kernel_size", "output_size", "output_ratio")),
    ("LPPool1d", (2, 3), {}, ("norm_type", "kernel_size", "stride")),
    ("LPPool2d", (2, 3), {}, ("norm_type", "kernel_size", "stride")),
    ("Upsample", (), {"scale_factor": 2}, ("scale_factor", "size", "mode")),
    ("Upsample", (), {"scale_factor": (2, 3), "mode": "bilinear"}, ("scale_factor", "size", "mode")),
    ("Upsample", (), {"size": 4}, ("scale_factor", "size")),
]


def _describe(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_describe(v) for v in value)
    return (type(value).__name__, value)


@pytest.mark.parametrize("name, args, kwargs, attributes", CASES, ids=lambda c: str(c))
def test_attributes_hold_what_torch_holds(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], attributes: tuple[str, ...]
) -> None:
    ours = getattr(ds.nn, name)(*args, **kwargs)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    for attribute in attributes:
        assert _describe(getattr(ours, attribute)) == _describe(getattr(theirs, attribute)), attribute


@pytest.mark.parametrize(
    "name, args, kwargs",
    [
        ("Softplus", (), {"beta": 2}),
        ("Softplus", (), {"beta": 2, "threshold": 10}),
        ("Threshold", (0.1, 20), {}),
        ("Hardtanh", (-2, 2), {}),
        ("Hardtanh", (-2.5, 2.5), {}),
        ("ReLU6", (), {}),
        ("AvgPool1d", (3, 2), {}),
        ("MaxUnpool2d", (2,), {}),
        ("FractionalMaxPool2d", (2,), {"output_size": 3}),
        ("Upsample", (), {"scale_factor": 2}),
    ],
)
def test_reprs_print_numbers_as_torch(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    assert repr(getattr(ds.nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_multihead_attention_merge_masks_matches_torch() -> None:
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(4, 2)
    ours = ds.nn.MultiheadAttention(4, 2)
    key_padding = [[False, True, False]]
    query = [[[0.0] * 4] * 3]
    for attn_mask in (None, [[False, True, False]] * 3):
        t_mask, t_kind = theirs.merge_masks(
            None if attn_mask is None else torch.tensor(attn_mask), torch.tensor(key_padding), torch.tensor(query)
        )
        d_mask, d_kind = ours.merge_masks(
            None if attn_mask is None else ds.tensor(attn_mask), ds.tensor(key_padding), ds.tensor(query)
        )
        assert d_kind == t_kind
        assert tuple(d_mask.shape) == tuple(t_mask.shape)
        assert d_mask.numpy().tolist() == t_mask.numpy().tolist()
    assert ours.merge_masks(None, None, ds.tensor(query)) == theirs.merge_masks(None, None, torch.tensor(query))
