"""Recurrent layers: RNN, LSTM and GRU (multi-layer, optionally bidirectional) and their cells.

The sequence layers run each (layer, direction) as ONE fused op over the whole sequence, with
its backward through time written by hand (``_rnn_kernels``: one GEMM for the input projection of
all steps, one recurrent GEMM and one fused gate computation per step); it is checked against
PyTorch and by finite differences. ``LSTMCell`` and ``GRUCell`` run one step as one fused node
(``_rnn_cells``), so a Python loop over a cell records one node per step; under ``create_graph``
their rule is the same formula written with differentiable ops, so double backward works; the
sequence layers' rule reruns the sequence with those cells when a gradient is differentiated again.
``RNNCell`` is the basic-op step below (the fused ``linear`` and the activation); the basic-op
LSTM step serves the LSTM's projection (``proj_size``). A packed sequence runs the fused kernels
too, on its padded batch with the count of rows that have an element at each step.

Parameter names, shapes, gate order and initialization follow PyTorch, so a ``state_dict`` copies
across in either direction:

* ``weight_ih_l{k}`` ``(G*H, input)``, ``weight_hh_l{k}`` ``(G*H, H)``, ``bias_ih_l{k}`` and
  ``bias_hh_l{k}`` ``(G*H,)``, with ``_reverse`` appended for the backward direction; G is 1 for
  RNN, 4 for LSTM (gates i, f, g, o) and 3 for GRU (gates r, z, n).
* every parameter starts ~ U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default), drawn from
  ``downslope.backend.rng()``.

The GRU's candidate uses PyTorch's form ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend, ops
from ..backend import namespace_of
from ..devices import device_of
from ..errors import ArgumentError, ArgumentTypeError, DeviceError, DTypeError, DTypeValueError, ShapeError
from ..tensor import Tensor, empty, wrap_array
from . import functional as F
from . import init
from ._arrays import array_like
from ._rnn_cells import gru_cell, lstm_cell
from ._rnn_kernels import rnn_sequence
from .module import Module, Parameter
from .utils.rnn import PackedSequence, _layout, _packed_from_padded, _padded_from_packed

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

State = Any  # a hidden state tensor, or (h, c) for the LSTM


# ---------------------------------------------------------------------- one time step
def _rnn_step(
    x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, act: Callable
) -> Tensor:
    """h' = act(W_ih x + b_ih + W_hh h + b_hh)."""
    return act(F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh))


def _lstm_step(
    x: Tensor, state: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Gates i, f, g, o from one pre-activation; c' = f*c + i*g, h' = o * tanh(c')."""
    h, c = state
    size = c.shape[-1]  # the hidden size (h is smaller with a projection)
    gates = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    s = ops.sigmoid(gates)  # one call for the three sigmoid gates (the g slice of it goes unused)
    i, f, o = s[..., :size], s[..., size : 2 * size], s[..., 3 * size :]
    g = ops.tanh(gates[..., 2 * size : 3 * size])
    c = f * c + i * g
    return o * ops.tanh(c), c


def _gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """r, z = sigmoid(...); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) n + z h."""
    size = h.shape[-1]
    gi = F.linear(x, w_ih, b_ih)
    gh = F.linear(h, w_hh, b_hh)
    rz = ops.sigmoid(gi[..., : 2 * size] + gh[..., : 2 * size])
    r, z = rz[..., :size], rz[..., size:]
    n = ops.tanh(gi[..., 2 * size :] + r * gh[..., 2 * size :])
    return n + z * (h - n)


def _fused_cell_fits(x: Tensor, state: Any, weights: tuple[Any, ...]) -> bool:
    """Whether the fused LSTM cell can take this step: a (N, I) input, and one dtype for the input, the
    state and the weights (the cell's arrays meet in place; mixed dtypes go the recorded way)."""
    if x.ndim != 2 or not isinstance(state, tuple):
        return False
    dtype = x.dtype
    return all(t is None or t.dtype == dtype for t in (*state, *weights))


_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _step_function(mode: str) -> Callable[..., Any]:
    if mode == "LSTM":
        return _lstm_step
    if mode == "GRU":
        return _gru_step
    act = ops.tanh if mode == "RNN_TANH" else ops.relu

    def rnn_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
        return _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh, act)

    return rnn_step


def _check_size(value: Any, what: str, owner: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ArgumentError(f"{owner}: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_device(t: Tensor, weight: Tensor, name: str, what: str = "the input") -> None:
    """Refuse an input or state on another device than the layer's parameters, before the fused
    kernels meet it (CuPy's own error there would not name the devices)."""
    if type(t.array) is not type(weight.array):
        here, there = device_of(weight.array), device_of(t.array)
        raise DeviceError(
            f"Expected all tensors to be on the same device, but found at least two devices, {here} and {there}! "
            f"({name}: the parameters are on {here}, {what} on {there}; move one with .to(device))"
        )


def _mode_of_nonlinearity(nonlinearity: str, owner: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ArgumentError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


# ---------------------------------------------------------------------- full sequence layers
class RNNBase(Module):
    """Shared by RNN, LSTM and GRU: parameters, argument checks and the loop over layers and time."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = _check_size(input_size, "input_size", name)
        self.hidden_size = _check_size(hidden_size, "hidden_size", name)
        self.num_layers = _check_size(num_layers, "num_layers", name)
        self.bias = bool(bias)  # host: a Python flag
        self.batch_first = bool(batch_first)  # host: a Python flag
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ArgumentError(f"{name}: dropout must be a probability in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} acts between layers, so with num_layers=1 it does nothing",
                UserWarning,
                stacklevel=2,
            )
        self.dropout = float(dropout)  # host: a Python number
        self.bidirectional = bool(bidirectional)  # host: a Python flag
        self.proj_size = _check_size(proj_size, "proj_size", name, minimum=0)
        if self.proj_size and mode != "LSTM":
            raise ArgumentError(f"{name}: proj_size is an LSTM option (got proj_size={proj_size})")
        if self.proj_size >= self.hidden_size:
            raise ArgumentError(
                f"{name}: proj_size ({self.proj_size}) has to be smaller than hidden_size ({self.hidden_size})"
            )
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        gate_rows = _GATES[mode] * self.hidden_size
        directions = 2 if self.bidirectional else 1
        state_size = self.proj_size or self.hidden_size  # h's size: the projection's, when there is one
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else state_size * directions
            for suffix in ("", "_reverse")[:directions]:
                # Built on the host and filled by reset_parameters(); model.to(device) moves them.
                setattr(self, f"weight_ih_l{layer}{suffix}", Parameter(empty((gate_rows, layer_input), dtype=dt)))
                setattr(self, f"weight_hh_l{layer}{suffix}", Parameter(empty((gate_rows, state_size), dtype=dt)))
                if self.bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", Parameter(empty((gate_rows,), dtype=dt)))
                    setattr(self, f"bias_hh_l{layer}{suffix}", Parameter(empty((gate_rows,), dtype=dt)))
                if self.proj_size:  # h_t = W_hr (o_t * tanh(c_t)), PyTorch's LSTM with projections
                    setattr(
                        self,
                        f"weight_hr_l{layer}{suffix}",
                        Parameter(empty((self.proj_size, self.hidden_size), dtype=dt)),
                    )
        self._step = _step_function(mode)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """Does nothing: PyTorch uses it to pack weights for cuDNN; kept so that ported code runs."""

    @property
    def _flat_weights_names(self) -> list[str]:
        """The parameters' names in PyTorch's order (per layer, forward then ``_reverse``: weight_ih,
        weight_hh, bias_ih, bias_hh, weight_hr), which code written for torch walks to initialise the
        weights through ``m._parameters[name]``.

        >>> import downslope as ds
        >>> ds.nn.GRU(2, 3)._flat_weights_names
        ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
        """
        kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        kinds += ("weight_hr",) if self.proj_size else ()
        suffixes = ("", "_reverse") if self.bidirectional else ("",)
        return [f"{k}_l{layer}{s}" for layer in range(self.num_layers) for s in suffixes for k in kinds]

    @property
    def _all_weights(self) -> list[list[str]]:
        """``_flat_weights_names`` grouped per layer and direction (PyTorch's ``_all_weights``), which
        recipes walk to set the LSTM's forget-gate bias by name.

        >>> import downslope as ds
        >>> ds.nn.LSTM(2, 3, bidirectional=True, bias=False)._all_weights
        [['weight_ih_l0', 'weight_hh_l0'], ['weight_ih_l0_reverse', 'weight_hh_l0_reverse']]
        """
        names = self._flat_weights_names
        per = len(names) // (self.num_layers * (1 + self.bidirectional))
        return [names[i : i + per] for i in range(0, len(names), per)]

    @property
    def _flat_weights(self) -> list[Any]:
        """The parameters named by ``_flat_weights_names``, in that order (the ones the layer runs with)."""
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Any]]:
        """The parameters grouped per layer and direction, as PyTorch's ``all_weights``."""
        flat, per = self._flat_weights, len(self._flat_weights_names) // (self.num_layers * (1 + self.bidirectional))
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def _weights(self, layer: int, direction: int) -> tuple[Any, ...]:
        suffix = "_reverse" if direction else ""
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        found = tuple(getattr(self, f"{n}_l{layer}{suffix}") for n in names)
        return found if self.bias else found + (None, None)

    # torch's checks and state permutation, which code subclassing its RNNs (a forward of its own that
    # packs, sorts or checks like torch's) calls; this layer's own forward makes its checks itself
    def check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        """Refuse an ``input`` of another dtype than the weights, of the wrong number of dimensions
        (3; 2 for a packed sequence's data, given its ``batch_sizes``) or with a last dimension other
        than ``input_size`` (torch's ``RNNBase.check_input``)."""
        weight_dtype = self._flat_weights[0].dtype
        if input.dtype != weight_dtype:  # torch: a ValueError, which ArgumentError is
            raise ArgumentError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.to({weight_dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:  # torch: RuntimeErrors, which ShapeError is
            raise ShapeError(
                f"{type(self).__name__}: input must have {expected_input_dim} dimensions, got {input.dim()} "
                f"(shape {tuple(input.shape)})"
            )
        if self.input_size != input.shape[-1]:
            raise ShapeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.shape[-1]}"
            )

    def _expected_state(self, input: Tensor, batch_sizes: Tensor | None, size: int) -> tuple[int, int, int]:
        if batch_sizes is not None:
            batch = int(batch_sizes[0])  # host: a packed sequence's batch sizes are host integers (torch's too)
        else:
            batch = input.shape[0] if self.batch_first else input.shape[1]
        return (self.num_layers * (2 if self.bidirectional else 1), batch, size)

    def get_expected_hidden_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        """The shape h0 must have for ``input``: (num_layers * num_directions, batch, proj_size or hidden_size)."""
        return self._expected_state(input, batch_sizes, self.proj_size or self.hidden_size)

    def check_hidden_size(
        self, hx: Tensor, expected_hidden_size: tuple[int, ...], msg: str = "Expected hidden size {}, got {}"
    ) -> None:
        """Refuse ``hx`` unless its shape is ``expected_hidden_size`` (``msg`` formatted with both)."""
        if tuple(hx.shape) != tuple(expected_hidden_size):
            raise ShapeError(msg.format(tuple(expected_hidden_size), list(hx.shape)))

    def check_forward_args(self, input: Tensor, hidden: Any, batch_sizes: Tensor | None) -> None:
        """:meth:`check_input`, then the state's shape (torch's ``check_forward_args``)."""
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx: Any, permutation: Tensor | None) -> Any:
        """``hx`` with its batch (dim 1) in the order ``permutation`` gives (a packed batch's sorted
        order); ``hx`` itself when ``permutation`` is None."""
        if permutation is None:
            return hx
        return ops.index_select(hx, 1, permutation)

    def _state_shape(self, batch: int | None, size: int | None = None) -> tuple[int, ...]:
        lead = self.num_layers * (2 if self.bidirectional else 1)
        size = self.hidden_size if size is None else size
        return (lead, size) if batch is None else (lead, batch, size)

    def _initial_states(self, hx: Any, batch: int | None, like: Tensor) -> list[Any]:
        """One state per (layer, direction): a tensor (N, H), or an (h, c) pair for the LSTM (h of the
        projection's size when there is one)."""
        name = type(self).__name__
        expected = self._state_shape(batch)
        expected_h = self._state_shape(batch, self.proj_size or None)
        count = expected[0]
        if hx is None:
            # Zeros in the input's namespace (its device) and dtype, float64 included.
            z = wrap_array(namespace_of(like.array).zeros(expected[1:], dtype=like.dtype))
            zh = wrap_array(namespace_of(like.array).zeros(expected_h[1:], dtype=like.dtype)) if self.proj_size else z
            return [(zh, z) if self.mode == "LSTM" else z for _ in range(count)]
        if self.mode == "LSTM":
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):  # torch indexes it: a list works too
                raise ArgumentTypeError(f"{name}: the initial state must be a tuple (h0, c0), got {type(hx).__name__}")
            parts = [self._checked_state(t, e, label) for t, e, label in zip(hx, (expected_h, expected), ("h0", "c0"))]
            return [(parts[0][k], parts[1][k]) for k in range(count)]
        h0 = self._checked_state(hx, expected, "h0")
        return [h0[k] for k in range(count)]

    def _checked_state(self, t: Any, expected: tuple[int, ...], label: str) -> Tensor:
        name = type(self).__name__
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{name}: {label} must be a Tensor, got {type(t).__name__}")
        if t.shape != expected:  # torch: a RuntimeError, which ShapeError is
            raise ShapeError(
                f"{name}: expected {label} of shape {expected} (num_layers * num_directions, batch, hidden_size), "
                f"got {tuple(t.shape)}"
            )
        _check_device(t, self._weights(0, 0)[0], name, label)
        return t

    def forward(self, input: Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        """Run the whole sequence; returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``).

        Shapes (L = sequence length, D = 2 if bidirectional else 1):
        input ``(L, N, input_size)``, or ``(N, L, input_size)`` with ``batch_first``, or unbatched
        ``(L, input_size)``; output ``(L, N, D*hidden_size)`` (batch_first: ``(N, L, ...)``);
        h_n and c_n ``(num_layers*D, N, hidden_size)`` (unbatched: without the N dim).
        """
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            # torch: a ValueError for the number of dims, a RuntimeError for input_size (ShapeError is both)
            layout = "(N, L, {0})" if self.batch_first else "(L, N, {0})"
            raise ShapeError(
                f"{name}(input_size={self.input_size}): expected input of shape {layout.format(self.input_size)} "
                f"or unbatched (L, {self.input_size}), got {tuple(input.shape)}"
            )
        weight = self._weights(0, 0)[0]
        param_dtype = weight.dtype
        if input.dtype != param_dtype:
            raise DTypeValueError(  # torch: a ValueError
                f"{name}: input dtype {input.dtype} does not match the parameters' dtype {param_dtype}"
            )
        unbatched = input.ndim == 2
        if unbatched:
            x = ops.unsqueeze(input, 1)
        else:
            x = ops.transpose(input, 0, 1) if self.batch_first else input
        length, batch = x.shape[0], x.shape[1]
        if length == 0:
            raise ShapeError(f"{name}: the input sequence is empty (shape {tuple(input.shape)})")  # torch: RuntimeError
        states = self._initial_states(hx, None if unbatched else batch, x)
        _check_device(input, weight, name)
        if unbatched:
            states = [
                tuple(ops.unsqueeze(s, 0) for s in st) if isinstance(st, tuple) else ops.unsqueeze(st, 0)
                for st in states
            ]
        if self.proj_size:  # step by step (the fused kernel has no projection)
            output, finals = self._run_steps(x, states, None)
        else:
            output, finals = self._run_fused(x, states, None)
        if unbatched:
            output = ops.squeeze(output, 1)
        elif self.batch_first:
            output = ops.transpose(output, 0, 1)
        return output, self._final_states(finals, unbatched, None)

    def _final_states(self, finals: list[Any], unbatched: bool, unsort: Any) -> Any:
        """h_n (and c_n) stacked over (layer, direction); ``unsort`` (an index array) puts a packed
        batch's sorted rows back in the batch's own order."""
        parts = [[s[0] for s in finals], [s[1] for s in finals]] if self.mode == "LSTM" else [finals]
        stacked = []
        for part in parts:
            t = ops.stack(part, axis=0)
            if unsort is not None:
                t = t[:, unsort]
            stacked.append(ops.squeeze(t, 1) if unbatched else t)
        return (stacked[0], stacked[1]) if self.mode == "LSTM" else stacked[0]

    def _forward_packed(self, packed: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
        """PyTorch's packed path: ``data`` is unpacked to a time-major batch in the sorted order (the
        layer's ``batch_first`` does not apply), a given state is put in that order by
        ``sorted_indices``, and the final states come back in the batch's own order."""
        name = type(self).__name__
        data, batch_sizes = packed.data, packed.batch_sizes
        if data.ndim != 2 or data.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}(input_size={self.input_size}): expected a PackedSequence with data of shape "
                f"(total steps, {self.input_size}), got {tuple(data.shape)}"
            )
        weight = self._weights(0, 0)[0]
        if data.dtype != weight.dtype:
            raise DTypeValueError(  # torch: a ValueError
                f"{name}: input dtype {data.dtype} does not match the parameters' dtype {weight.dtype}"
            )
        _check_device(data, weight, name)
        if batch_sizes.shape[0] == 0:
            raise ShapeError(f"{name}: the packed sequence is empty (no time steps)")
        x = _padded_from_packed(data, batch_sizes)  # (L, N, input_size), longest sequences first
        _, _, lengths = _layout(batch_sizes)
        states = self._initial_states(hx, lengths.shape[0], x)
        if hx is not None and packed.sorted_indices is not None:
            order = array_like(packed.sorted_indices, x.array)
            states = [tuple(s[order] for s in st) if isinstance(st, tuple) else st[order] for st in states]
        if self.proj_size:  # step by step (the fused kernel has no projection)
            steps = np.arange(x.shape[0])  # host: with the host lengths, then moved once
            running = array_like((steps[:, None] < lengths[None, :])[..., None], x.array)
            output, finals = self._run_steps(x, states, running)
        else:
            output, finals = self._run_fused(x, states, batch_sizes.array)
        out = PackedSequence(
            _packed_from_padded(output, batch_sizes), batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        unsort = None if packed.unsorted_indices is None else array_like(packed.unsorted_indices, x.array)
        return out, self._final_states(finals, False, unsort)

    def _run_fused(self, x: Tensor, states: list[Any], active: Any) -> tuple[Tensor, list[Any]]:
        """Each (layer, direction) as ONE fused op over the whole time-major ``x`` (see
        ``_rnn_kernels``), whose result holds [h0, h_1..h_L] (and c_L for the LSTM) in processing
        order. ``active`` (a packed batch, sorted longest first): the host ``batch_sizes``; a
        sequence's state stops changing after its last element and the reverse direction starts
        there (the outputs past a sequence's end are left as they are: packing drops them)."""
        length = x.shape[0]
        directions = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        finals: list[Any] = []
        for layer in range(self.num_layers):
            per_direction = []
            for direction in range(directions):
                state = states[layer * directions + direction]
                h0, c0 = state if lstm else (state, None)
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, direction)
                seq = rnn_sequence(self.mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=direction == 1, active=active)
                # The backward direction ran from the last step to the first: reverse it back.
                out = seq[length:0:-1] if direction else seq[1 : length + 1]
                if directions == 1 and layer == self.num_layers - 1 and out.requires_grad:
                    # the caller's output as its own copy, as torch's: the rule reads the hidden states
                    # in seq, so a write into a view of them (out += x, a residual) would refuse backward
                    out = ops.clone(out)
                per_direction.append(out)
                finals.append((seq[length], seq[length + 1]) if lstm else seq[length])
            x = ops.concatenate(per_direction, axis=-1) if directions == 2 else per_direction[0]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, finals

    def _run_steps(self, x: Tensor, states: list[Any], running: Any) -> tuple[Tensor, list[Any]]:
        """The sequence step by step (time-major ``x``), for what the fused kernel does not do: a
        packed batch (``running``, (L, N, 1) True where a sequence has a step: a sequence's state
        stops changing after its last element, the reverse direction starts there, and its outputs
        past the end are zero) and the LSTM's projection (``proj_size``: h_t = W_hr (o_t * tanh(c_t)))."""
        length = x.shape[0]
        steps = [x[t] for t in range(length)]
        directions = 2 if self.bidirectional else 1
        finals: list[Any] = []
        for layer in range(self.num_layers):
            per_direction = []
            for direction in range(directions):
                state = states[layer * directions + direction]
                weights = self._weights(layer, direction)
                w_hr = getattr(self, f"weight_hr_l{layer}{'_reverse' if direction else ''}") if self.proj_size else None
                w_hr_t = None if w_hr is None else ops.transpose(w_hr, 0, 1)
                # the LSTM step as the fused cell (one node, its rule written by hand, as LSTMCell runs it)
                # rather than ~14 recorded ops; with the projection applied after it
                fused = self.mode == "LSTM" and _fused_cell_fits(steps[0], state, weights)
                order = range(length - 1, -1, -1) if direction else range(length)
                outs: list[Tensor] = [None] * length  # type: ignore[list-item]
                for t in order:
                    if fused:
                        both = lstm_cell(steps[t], state[0], state[1], *weights)
                        new = (both[0], both[1])
                    else:
                        new = self._step(steps[t], state, *weights)
                    if w_hr_t is not None:
                        new = (ops.matmul(new[0], w_hr_t), new[1])
                    if running is None:
                        state = new
                        outs[t] = state[0] if isinstance(state, tuple) else state
                        continue
                    keep = running[t]
                    if isinstance(new, tuple):
                        new = tuple(ops.where(keep, a, b) for a, b in zip(new, state))
                    else:
                        new = ops.where(keep, new, state)
                    state = new
                    h = state[0] if isinstance(state, tuple) else state
                    outs[t] = ops.where(running[t], h, h.dtype.type(0))
                per_direction.append(outs)
                finals.append(state)
            if directions == 2:
                steps = [ops.concatenate([a, b], axis=-1) for a, b in zip(*per_direction)]
            else:
                steps = per_direction[0]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                steps = [F.dropout(s, self.dropout, training=True) for s in steps]
        return ops.stack(steps, axis=0), finals

    def extra_repr(self) -> str:
        # PyTorch's RNNBase.extra_repr: its field order, and no nonlinearity (PyTorch leaves it out)
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with act tanh or relu.

    Returns ``(output, h_n)``; see :meth:`RNNBase.forward` for shapes.

    Example:
        >>> import downslope as ds
        >>> rnn = ds.nn.RNN(3, 5, num_layers=2, batch_first=True)
        >>> out, h_n = rnn(ds.randn(4, 7, 3))
        >>> out.shape, h_n.shape
        (downslope.Size([4, 7, 5]), downslope.Size([2, 4, 5]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # torch's positional order (its RNN takes *args): proj_size, then device and dtype, last
        mode = _mode_of_nonlinearity(nonlinearity, "RNN")
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size, dtype=dtype
        )
        self.nonlinearity = nonlinearity  # as torch's RNN keeps it (its mode says the same)


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o as in PyTorch); returns ``(output, (h_n, c_n))``.

    ``proj_size > 0`` adds PyTorch's projection ``h_t = W_hr (o_t * tanh(c_t))`` (parameters
    ``weight_hr_l{k}``): h and the output have ``proj_size`` features, c keeps ``hidden_size``.
    That layer runs step by step (slower than the fused sequence kernel).

    Example:
        >>> import downslope as ds
        >>> lstm = ds.nn.LSTM(3, 5, bidirectional=True)
        >>> out, (h_n, c_n) = lstm(ds.randn(7, 4, 3))
        >>> out.shape, h_n.shape, c_n.shape
        (downslope.Size([7, 4, 10]), downslope.Size([2, 4, 5]), downslope.Size([2, 4, 5]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        sizes = (input_size, hidden_size, num_layers)
        super().__init__("LSTM", *sizes, bias, batch_first, dropout, bidirectional, proj_size, dtype=dtype)

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        """The shape c0 must have for ``input``: (num_layers * num_directions, batch, hidden_size)."""
        return self._expected_state(input, batch_sizes, self.hidden_size)

    def check_forward_args(self, input: Tensor, hidden: Any, batch_sizes: Tensor | None) -> None:
        """:meth:`check_input`, then the shapes of ``hidden = (h0, c0)`` (torch's LSTM ``check_forward_args``)."""
        self.check_input(input, batch_sizes)
        expected_h = self.get_expected_hidden_size(input, batch_sizes)
        self.check_hidden_size(hidden[0], expected_h, "Expected hidden[0] size {}, got {}")
        expected_c = self.get_expected_cell_size(input, batch_sizes)
        self.check_hidden_size(hidden[1], expected_c, "Expected hidden[1] size {}, got {}")

    def permute_hidden(self, hx: Any, permutation: Tensor | None) -> Any:
        """``(h, c)`` with their batch (dim 1) in the order ``permutation`` gives; ``hx`` when it is None."""
        if permutation is None:
            return hx
        return ops.index_select(hx[0], 1, permutation), ops.index_select(hx[1], 1, permutation)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n as in PyTorch); returns ``(output, h_n)``.

    Example:
        >>> import downslope as ds
        >>> gru = ds.nn.GRU(3, 5)
        >>> out, h_n = gru(ds.randn(7, 3))  # unbatched: (L, input_size)
        >>> out.shape, h_n.shape
        (downslope.Size([7, 5]), downslope.Size([1, 5]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # torch's positional order (its GRU takes *args): proj_size (refused unless 0), then device and dtype
        sizes = (input_size, hidden_size, num_layers)
        super().__init__("GRU", *sizes, bias, batch_first, dropout, bidirectional, proj_size, dtype=dtype)


# ---------------------------------------------------------------------- single-step cells
class RNNCellBase(Module):
    """Shared by the cells: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
        *,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        # torch's base takes the gate count; the cells here also say which cell they are (num_chunks 1: tanh)
        if mode is None:
            mode = {1: "RNN_TANH", 3: "GRU", 4: "LSTM"}.get(num_chunks)
            if mode is None:
                raise ArgumentError(f"{name}: expected num_chunks 1 (RNN), 3 (GRU) or 4 (LSTM), got {num_chunks!r}")
        if _GATES.get(mode) != num_chunks:
            raise ArgumentError(f"{name}: a {mode} cell has {_GATES.get(mode)} chunks, got num_chunks={num_chunks!r}")
        self.mode = mode
        self.input_size = _check_size(input_size, "input_size", name)
        self.hidden_size = _check_size(hidden_size, "hidden_size", name)
        self.bias = bool(bias)  # host: a Python flag
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        rows = _GATES[mode] * self.hidden_size
        # Built on the host and filled by reset_parameters(); model.to(device) moves them.
        self.weight_ih = Parameter(empty((rows, self.input_size), dtype=dt))
        self.weight_hh = Parameter(empty((rows, self.hidden_size), dtype=dt))
        if self.bias:
            self.bias_ih: Parameter | None = Parameter(empty((rows,), dtype=dt))
            self.bias_hh: Parameter | None = Parameter(empty((rows,), dtype=dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._step = _step_function(mode)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _check(self, input: Any, hx: Any) -> tuple[Tensor, Any, bool]:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            # torch: a ValueError for the number of dims, a RuntimeError for input_size (ShapeError is both)
            raise ShapeError(
                f"{name}(input_size={self.input_size}): expected input of shape (N, {self.input_size}) or "
                f"({self.input_size},), got {tuple(input.shape)}"
            )
        if input.dtype != self.weight_ih.dtype:  # torch: its matmul's RuntimeError
            raise DTypeError(
                f"{name}: input dtype {input.dtype} does not match the parameters' dtype {self.weight_ih.dtype}"
            )
        unbatched = input.ndim == 1
        x = ops.unsqueeze(input, 0) if unbatched else input
        expected = (x.shape[0], self.hidden_size)
        lstm_list = self.mode == "LSTM" and isinstance(hx, list)  # torch indexes (h, c): a list works too
        parts = tuple(hx) if isinstance(hx, tuple) or lstm_list else (hx,)
        if hx is None:  # zeros in the input's namespace (its device) and dtype
            zeros = wrap_array(namespace_of(x.array).zeros(expected, dtype=x.dtype))
            return x, ((zeros, zeros) if self.mode == "LSTM" else zeros), unbatched
        if self.mode == "LSTM" and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ArgumentTypeError(f"{name}: the state must be a tuple (h, c), got {type(hx).__name__}")
        checked = []
        for t in parts:
            if not isinstance(t, Tensor):
                raise ArgumentTypeError(f"{name}: the hidden state must be a Tensor, got {type(t).__name__}")
            want = expected[1:] if unbatched else expected
            if t.shape != want:
                raise ShapeError(f"{name}: expected a hidden state of shape {want}, got {tuple(t.shape)}")
            _check_device(t, self.weight_ih, name, "the hidden state")
            checked.append(ops.unsqueeze(t, 0) if unbatched else t)
        return x, (tuple(checked) if self.mode == "LSTM" else checked[0]), unbatched

    def forward(self, input: Tensor, hx: Any = None) -> Any:
        x, state, unbatched = self._check(input, hx)
        _check_device(x, self.weight_ih, type(self).__name__)
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if self.mode == "LSTM":  # one fused node per step (see _rnn_cells), sliced into (h', c')
            packed = lstm_cell(x, state[0], state[1], *weights)
            out: Any = (packed[0], packed[1])
        elif self.mode == "GRU":
            out = gru_cell(x, state, *weights)
        else:
            out = self._step(x, state, *weights)
        if unbatched:
            return tuple(ops.squeeze(t, 0) for t in out) if isinstance(out, tuple) else ops.squeeze(out, 0)
        return out

    def extra_repr(self) -> str:
        # PyTorch's RNNCellBase.extra_repr: bias before nonlinearity, which prints bare
        text = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        if self.mode == "RNN_RELU":
            text += ", nonlinearity=relu"
        return text


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    Example:
        >>> import downslope as ds
        >>> ds.nn.RNNCell(3, 4)(ds.randn(2, 3)).shape
        downslope.Size([2, 4])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        mode = _mode_of_nonlinearity(nonlinearity, "RNNCell")
        super().__init__(input_size, hidden_size, bias, 1, dtype=dtype, mode=mode)


class LSTMCell(RNNCellBase):
    """One LSTM step; ``forward(x, (h, c))`` returns ``(h', c')``.

    Example:
        >>> import downslope as ds
        >>> h, c = ds.nn.LSTMCell(3, 4)(ds.randn(2, 3))
        >>> h.shape, c.shape
        (downslope.Size([2, 4]), downslope.Size([2, 4]))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, dtype=dtype, mode="LSTM")


class GRUCell(RNNCellBase):
    """One GRU step; ``forward(x, h)`` returns ``h'``.

    Example:
        >>> import downslope as ds
        >>> ds.nn.GRUCell(3, 4)(ds.randn(3)).shape
        downslope.Size([4])
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, dtype=dtype, mode="GRU")
