"""Transformer layers with PyTorch's names, defaults, state-dict keys and numbers.

``TransformerEncoderLayer`` is self-attention then a feed-forward block, each wrapped in a
residual connection with layer norm after it (post-norm, the default) or before it
(``norm_first=True``). ``TransformerDecoderLayer`` adds attention over the encoder's output
(``memory``) between the two. ``TransformerEncoder``/``TransformerDecoder`` stack copies of a layer;
``Transformer`` is the encoder-decoder model of "Attention Is All You Need".

Masks are PyTorch's: ``*_mask`` (L, S) or (N*nhead, L, S) and ``*_key_padding_mask`` (N, S),
boolean True = masked out, or float masks added to the attention scores.
``Transformer.generate_square_subsequent_mask(L)`` is the causal float mask (-inf above the diagonal).
The ``*_is_causal`` flags are hints, as in PyTorch: with a causal mask they let the fused attention
apply the mask itself.

Differences from PyTorch: no nested-tensor fast path (PyTorch's eval-mode, no-grad encoder with a
key padding mask returns zeros at the padded positions; here they hold whatever the layers compute,
as in PyTorch's training mode), and ``device`` is not an argument.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..device import resolve
from ..devices import to_device
from ..errors import ArgumentError, ArgumentTypeError, InvalidValueError, ShapeError
from ..tensor import Tensor, wrap_array
from . import functional as F
from . import init
from ._arrays import is_host
from .attention import MultiheadAttention, _canonical_mask
from .layers import Dropout, Linear
from .module import Module, ModuleList
from .normalization import LayerNorm

__all__ = [
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
    "generate_square_subsequent_mask",
]


def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Tensor:
    """The causal mask for a sequence of ``sz`` steps: 0 on and below the diagonal, -inf above it
    (position i may attend to positions j <= i), float32 unless ``dtype`` says otherwise, on
    ``device`` (the CPU by default; PyTorch's argument order).

    Example:
        >>> from downslope import nn
        >>> nn.Transformer.generate_square_subsequent_mask(3)
        tensor([[  0., -inf, -inf],
                [  0.,   0., -inf],
                [  0.,   0.,   0.]])
    """
    if isinstance(sz, bool) or not isinstance(sz, (int, np.integer)) or sz < 0:
        raise ArgumentError(f"generate_square_subsequent_mask: sz must be a non-negative integer, got {sz!r}")
    dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    mask = np.triu(np.full((sz, sz), -np.inf, dtype=dt), k=1)  # host: made on the host, then moved once
    return wrap_array(mask if device is None else to_device(mask, resolve(device, "generate_square_subsequent_mask")))


def _check_tensors(owner: str, **inputs: Any) -> np.dtype:
    """The inputs must be tensors; returns the first one's dtype."""
    for name, t in inputs.items():
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(
                f"{owner}: {name} must be a Tensor, got {type(t).__name__}; wrap arrays with ds.tensor(...)"
            )
    return next(iter(inputs.values())).array.dtype


def _get_activation(activation: str | Callable[[Tensor], Tensor], owner: str) -> Callable[[Tensor], Tensor]:
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if callable(activation) and not isinstance(activation, str):
        return activation
    raise InvalidValueError(f"{owner}: activation should be 'relu', 'gelu' or a callable, got {activation!r}")


def _detect_is_causal_mask(mask: Tensor | None, is_causal: bool | None, size: int | None) -> bool:
    """The caller's hint if given, else whether ``mask`` equals the causal mask (PyTorch's rule)."""
    if is_causal is not None:
        return bool(is_causal)  # host: a Python flag
    if mask is None:
        return False
    sz = size if size is not None else mask.shape[-2]
    arr = mask.array if isinstance(mask, Tensor) else mask
    if not is_host(arr) or arr.shape != (sz, sz):
        # Reading a device mask's values would wait for the GPU; the mask is then applied as given,
        # which computes the same attention as the causal fast path.
        return False
    causal = np.triu(np.full((sz, sz), -np.inf), k=1)  # host: compared with a host mask
    return bool((arr == causal).all())  # host: a host mask's values


def _seq_len(x: Tensor, batch_first: bool) -> int:
    if x.ndim == 2:  # unbatched (S, E)
        return int(x.shape[0])
    return int(x.shape[1 if batch_first else 0])


# the numbers a probability may be given as (NumPy scalars too, as torch takes them)
_REALS = (int, float, np.integer, np.floating)


def _check_common(d_model: Any, nhead: Any, dim_feedforward: Any, dropout: Any, owner: str) -> None:
    for what, n in (("d_model", d_model), ("nhead", nhead), ("dim_feedforward", dim_feedforward)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ArgumentError(f"{owner}: {what} must be a positive integer, got {n!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, _REALS) or not 0.0 <= dropout < 1.0:
        raise ArgumentError(f"{owner}: dropout must be a probability in [0, 1), got {dropout!r}")


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each with a residual connection and layer norm.

    Post-norm (default): ``x = norm1(x + sa(x)); x = norm2(x + ff(x))``; with ``norm_first``:
    ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``. ``ff(x) = linear2(dropout(activation(linear1(x))))``.
    Input (S, N, E), or (N, S, E) with ``batch_first``, or unbatched (S, E).

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
        >>> layer(ds.randn(2, 7, 16)).shape
        downslope.Size([2, 7, 16])
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        _check_common(d_model, nhead, dim_feedforward, dropout, "TransformerEncoderLayer")
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = bool(norm_first)  # host: a Python number
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _get_activation(activation, "TransformerEncoderLayer")
        if dtype is not None:
            self.to(dtype)

    @property
    def batch_first(self) -> bool:
        return self.self_attn.batch_first

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        dtype = _check_tensors(type(self).__name__, src=src)
        src_key_padding_mask = _canonical_mask(src_key_padding_mask, "src_key_padding_mask", dtype, src)
        src_mask = _canonical_mask(src_mask, "src_mask", dtype, src)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        out = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal
        )[0]
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's output (``memory``), and a feed-forward network,
    each with a residual connection and layer norm (after, or before with ``norm_first``).

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
        >>> layer(ds.randn(2, 5, 16), ds.randn(2, 7, 16)).shape
        downslope.Size([2, 5, 16])
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        _check_common(d_model, nhead, dim_feedforward, dropout, "TransformerDecoderLayer")
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, dtype=dtype
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = bool(norm_first)  # host: a Python number
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _get_activation(activation, "TransformerDecoderLayer")
        if dtype is not None:
            self.to(dtype)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        _check_tensors(type(self).__name__, tgt=tgt, memory=memory)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Tensor:
        out = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal, need_weights=False
        )[0]
        return self.dropout1(out)

    def _mha_block(self, x: Tensor, mem: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Tensor:
        out = self.multihead_attn(
            x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal, need_weights=False
        )[0]
        return self.dropout2(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


def _clones(module: Module, n: int) -> ModuleList:
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


def _check_layers(num_layers: Any, owner: str) -> int:
    if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
        raise ArgumentError(f"{owner}: num_layers must be a positive integer, got {num_layers!r}")
    return int(num_layers)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (independent weights), then ``norm``.
    ``enable_nested_tensor`` and ``mask_check`` are accepted and have no effect (see the module docstring).

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> enc = ds.nn.TransformerEncoder(layer, num_layers=2)
        >>> enc(ds.randn(3, 6, 16)).shape
        downslope.Size([3, 6, 16])
    """

    def __init__(
        self,
        encoder_layer: Module,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        # enable_nested_tensor and mask_check steer PyTorch's nested-tensor fast path, which has no
        # counterpart here; they are accepted so that PyTorch code runs unchanged.
        super().__init__()
        self.layers = _clones(encoder_layer, _check_layers(num_layers, "TransformerEncoder"))
        self.num_layers = len(self.layers)
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        dtype = _check_tensors(type(self).__name__, src=src)
        src_key_padding_mask = _canonical_mask(src_key_padding_mask, "src_key_padding_mask", dtype, src)
        mask = _canonical_mask(mask, "mask", dtype, src)
        attn = getattr(self.layers[0], "self_attn", None)
        batch_first = bool(getattr(attn, "batch_first", False))  # host: a Python flag
        causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, batch_first))
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, is_causal=causal, src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            out = self.norm(out)
        return out


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer`` (independent weights), then ``norm``.

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.TransformerDecoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> dec = ds.nn.TransformerDecoder(layer, num_layers=2)
        >>> dec(ds.randn(3, 5, 16), ds.randn(3, 6, 16)).shape
        downslope.Size([3, 5, 16])
    """

    def __init__(self, decoder_layer: Module, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, _check_layers(num_layers, "TransformerDecoder"))
        self.num_layers = len(self.layers)
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        _check_tensors(type(self).__name__, tgt=tgt, memory=memory)
        first = self.layers[0]
        attn = getattr(first, "self_attn", None)
        batch_first = bool(getattr(attn, "batch_first", False))  # host: a Python flag
        causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, _seq_len(tgt, batch_first))
        out = tgt
        for layer in self.layers:
            out = layer(
                out,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=causal,
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            out = self.norm(out)
        return out


class Transformer(Module):
    """The encoder-decoder Transformer (Vaswani et al. 2017) with PyTorch's defaults and keys
    (``encoder.layers.0.self_attn.in_proj_weight``, ..., ``encoder.norm``, ``decoder.norm``).
    Every weight matrix starts Xavier-uniform, as in PyTorch's ``Transformer``.

    Example:
        >>> import downslope as ds
        >>> model = ds.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
        ...                           dim_feedforward=32, batch_first=True)
        >>> src, tgt = ds.randn(2, 7, 16), ds.randn(2, 5, 16)
        >>> mask = ds.nn.Transformer.generate_square_subsequent_mask(5)
        >>> model(src, tgt, tgt_mask=mask).shape
        downslope.Size([2, 5, 16])
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if custom_encoder is not None:
            self.encoder: Module = custom_encoder
        else:
            enc_layer = TransformerEncoderLayer(
                d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first, bias
            )
            self.encoder = TransformerEncoder(
                enc_layer, num_encoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
            )
        if custom_decoder is not None:
            self.decoder: Module = custom_decoder
        else:
            dec_layer = TransformerDecoderLayer(
                d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first, bias
            )
            self.decoder = TransformerDecoder(
                dec_layer, num_decoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
            )
        self.d_model = int(d_model)
        self.nhead = int(nhead)
        self.batch_first = bool(batch_first)  # host: a Python number
        self._reset_parameters()
        if dtype is not None:
            self.to(dtype)

    def _reset_parameters(self) -> None:
        """PyTorch's: every weight matrix (a parameter of 2 or more dims) redrawn Xavier-uniform, in place;
        vectors (biases, norm weights) are left as they are, as there."""
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        _check_tensors(type(self).__name__, src=src, tgt=tgt)
        batched = src.ndim == 3
        axis = 0 if self.batch_first else 1
        if batched and (tgt.ndim != 3 or src.shape[axis] != tgt.shape[axis]):
            raise ShapeError(
                f"Transformer(batch_first={self.batch_first}): src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must have the "
                f"same batch size (dim {axis})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ShapeError(
                f"Transformer(d_model={self.d_model}): src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must have d_model "
                "features in their last dim"
            )
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )
