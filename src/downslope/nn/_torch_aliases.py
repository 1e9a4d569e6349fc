"""PyTorch's top-level spellings of the nn functions: ``torch.conv2d``, ``torch.dropout``,
``torch.batch_norm``, ``torch.lstm_cell``... with torch's TOP-LEVEL signatures, which sometimes
differ from ``torch.nn.functional``'s:

* ``dropout(input, p, train)`` and its kin take ``train`` positionally, without a default;
* ``batch_norm``/``instance_norm`` take ``weight, bias`` before the running statistics, and a
  trailing ``cudnn_enabled`` (accepted, meaningless here);
* ``embedding(weight, indices, padding_idx=-1, ...)`` takes the table first; a negative
  ``padding_idx`` means none;
* the losses take ``reduction`` as torch's enum int: 0 none, 1 mean, 2 sum. Called without it,
  torch's top-level losses reduce nothing (their Python binding's default is 0, whatever the
  schema prints), and so do these;
* ``max_pool1d_with_indices`` always returns (values, indices).

Where the signatures agree the name IS the ``downslope.nn.functional`` function (one name, one
meaning). ``import downslope`` reaches these lazily: ``ds.conv2d`` loads ``downslope.nn`` on
first use, so ``import downslope`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import ops
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor
from ..torch_alias_names import TORCH_ALIAS_NAMES
from . import functional as F
from ._rnn_cells import gru_cell as _fused_gru_cell
from ._rnn_cells import lstm_cell as _fused_lstm_cell
from .functional import _as_tensor, _feature_dropout, _in_place

# The same function under torch's top-level name: the signatures agree.
adaptive_avg_pool1d = F.adaptive_avg_pool1d


def adaptive_max_pool1d(input: Any, output_size: Any) -> Any:
    """``torch.adaptive_max_pool1d``: always (values, indices), as torch's top-level form returns them.

    Example:
        >>> import downslope as ds
        >>> [t.tolist() for t in ds.adaptive_max_pool1d(ds.tensor([[1.0, 3.0, 2.0, 0.0]]), 2)]
        [[[3.0, 2.0]], [[1, 2]]]
    """
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


bilinear = F.bilinear
celu, celu_, selu, selu_, relu_ = F.celu, F.celu_, F.selu, F.selu_, F.relu_
threshold, threshold_, hardshrink, prelu = F.threshold, F.threshold_, F.hardshrink, F.prelu
conv1d, conv2d, conv3d = F.conv1d, F.conv2d, F.conv3d
conv_tbc = F.conv_tbc
conv_transpose1d, conv_transpose2d, conv_transpose3d = F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d
cosine_similarity, pairwise_distance, pdist = F.cosine_similarity, F.pairwise_distance, F.pdist
rms_norm = F.rms_norm
pixel_shuffle, pixel_unshuffle = F.pixel_shuffle, F.pixel_unshuffle
channel_shuffle = native_channel_shuffle = F.channel_shuffle

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(value: Any, where: str) -> str:
    # torch's top-level losses take at::Reduction's int, not the functional API's string
    if isinstance(value, bool) or not isinstance(value, int) or value not in _REDUCTIONS:
        raise ArgumentError(f"{where}: reduction must be 0 (none), 1 (mean) or 2 (sum), got {value!r}")
    return _REDUCTIONS[value]


def _stride(stride: Any) -> Any:
    # torch's schema writes the default stride as [] (meaning: the kernel size)
    return None if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else stride


def _flag(value: Any, name: str, where: str) -> bool:
    if not isinstance(value, (bool, int)):
        raise ArgumentTypeError(f"{where}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)  # host: a Python flag, not an array


# ---------------------------------------------------------------------- dropout
def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.dropout``: :func:`downslope.nn.functional.dropout` with ``train`` required.

    Example:
        >>> import downslope as ds
        >>> ds.dropout(ds.ones(3), 0.5, False)
        tensor([1., 1., 1.])
    """
    return F.dropout(input, p, _flag(train, "train", "dropout"))


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.alpha_dropout``: :func:`downslope.nn.functional.alpha_dropout` with ``train`` required.

    Example:
        >>> import downslope as ds
        >>> ds.alpha_dropout(ds.ones(3), 0.5, False)
        tensor([1., 1., 1.])
    """
    return F.alpha_dropout(input, p, _flag(train, "train", "alpha_dropout"))


def _at_least_2d(input: Any, where: str) -> Tensor:
    x = _as_tensor(input, where)
    if x.ndim < 2:
        raise ShapeError(f"{where}: feature dropout needs at least 2 dims (N, C, ...), got shape {tuple(x.shape)}")
    return x


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.feature_dropout``: zero whole channels of (N, C, ...) input (dim 1) with probability
    ``p`` and scale the rest by 1/(1-p); 2-D input drops single features.

    Example:
        >>> import downslope as ds
        >>> ds.feature_dropout(ds.ones(2, 3, 4), 0.5, False).shape
        downslope.Size([2, 3, 4])
    """
    x = _at_least_2d(input, "feature_dropout")
    return _feature_dropout(x, p, _flag(train, "train", "feature_dropout"), True, "feature_dropout")


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.feature_alpha_dropout``: :func:`downslope.nn.functional.feature_alpha_dropout` with
    ``train`` required.

    Example:
        >>> import downslope as ds
        >>> ds.feature_alpha_dropout(ds.ones(2, 3), 0.5, False)
        tensor([[1., 1., 1.],
                [1., 1., 1.]])
    """
    x = _at_least_2d(input, "feature_alpha_dropout")
    return F.feature_alpha_dropout(x, p, _flag(train, "train", "feature_alpha_dropout"))


def dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """:func:`dropout` written into ``input`` (returns it).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2)
        >>> ds.dropout_(x, 0.5, False) is x
        True
    """
    return _in_place(input, lambda t: dropout(t, p, train))


def alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """:func:`alpha_dropout` written into ``input`` (returns it).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2)
        >>> ds.alpha_dropout_(x, 0.5, False) is x
        True
    """
    return _in_place(input, lambda t: alpha_dropout(t, p, train))


def feature_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """:func:`feature_dropout` written into ``input`` (returns it).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, 2)
        >>> ds.feature_dropout_(x, 0.5, False) is x
        True
    """
    return _in_place(input, lambda t: feature_dropout(t, p, train))


def feature_alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """:func:`feature_alpha_dropout` written into ``input`` (returns it).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, 2)
        >>> ds.feature_alpha_dropout_(x, 0.5, False) is x
        True
    """
    return _in_place(input, lambda t: feature_alpha_dropout(t, p, train))


def rrelu(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, generator: Any = None
) -> Tensor:
    """``torch.rrelu``: :func:`downslope.nn.functional.rrelu`; while training the slopes come from
    downslope's generator (``generator`` other than None is refused).

    Example:
        >>> import downslope as ds
        >>> ds.rrelu(ds.tensor([-3.0, 2.0]), 0.2, 0.4)
        tensor([-0.9,  2. ])
    """
    if generator is not None:
        raise ArgumentError("rrelu: generator= is not supported: the slopes come from ds.manual_seed's generator")
    return F.rrelu(input, lower, upper, training)


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, generator: Any = None
) -> Tensor:
    """:func:`rrelu` written into ``input`` (returns it).

    Example:
        >>> import downslope as ds
        >>> ds.rrelu_(ds.tensor([-3.0, 2.0]), 0.2, 0.4)
        tensor([-0.9,  2. ])
    """
    return _in_place(input, lambda t: rrelu(t, lower, upper, training, generator))


# ---------------------------------------------------------------------- normalization
def batch_norm(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    cudnn_enabled: bool,
) -> Tensor:
    """``torch.batch_norm``: weight and bias come BEFORE the running statistics (the functional
    API's order is the other way round); ``cudnn_enabled`` is accepted and changes nothing.

    Example:
        >>> import downslope as ds
        >>> ds.batch_norm(ds.tensor([[1.0], [3.0]]), None, None, None, None, True, 0.1, 1e-5, False)
        tensor([[-1.],
                [ 1.]])
    """
    if not training and (running_mean is None or running_var is None):
        raise ArgumentError(
            "batch_norm: running_mean and running_var must be given in evaluation mode (training=False)"
        )
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    use_input_stats: bool,
    momentum: float,
    eps: float,
    cudnn_enabled: bool,
) -> Tensor:
    """``torch.instance_norm``: weight and bias come BEFORE the running statistics;
    ``cudnn_enabled`` is accepted and changes nothing.

    Example:
        >>> import downslope as ds
        >>> ds.instance_norm(ds.tensor([[[1.0, 3.0]]]), None, None, None, None, True, 0.1, 1e-5, False)
        tensor([[[-1.,  1.]]])
    """
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def layer_norm(
    input: Tensor,
    normalized_shape: Sequence[int] | int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    cudnn_enable: bool = True,
) -> Tensor:
    """``torch.layer_norm``: :func:`downslope.nn.functional.layer_norm` (``cudnn_enable`` is accepted
    and changes nothing).

    Example:
        >>> import downslope as ds
        >>> ds.layer_norm(ds.tensor([[1.0, 3.0]]), [2])
        tensor([[-1.,  1.]])
    """
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    cudnn_enabled: bool = True,
) -> Tensor:
    """``torch.group_norm``: :func:`downslope.nn.functional.group_norm` (``cudnn_enabled`` is
    accepted and changes nothing).

    Example:
        >>> import downslope as ds
        >>> ds.group_norm(ds.tensor([[[1.0], [3.0]]]), 1)
        tensor([[[-1.],
                 [ 1.]]])
    """
    return F.group_norm(input, num_groups, weight, bias, eps)


# ---------------------------------------------------------------------- pooling
def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = (),
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """``torch.avg_pool1d``: :func:`downslope.nn.functional.avg_pool1d` (an empty stride means the
    kernel size, as torch's schema writes it).

    Example:
        >>> import downslope as ds
        >>> ds.avg_pool1d(ds.tensor([[[1.0, 3.0, 5.0, 7.0]]]), 2)
        tensor([[[2., 6.]]])
    """
    return F.avg_pool1d(input, kernel_size, _stride(stride), padding, ceil_mode, count_include_pad)


def max_pool1d(
    input: Tensor, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> Tensor:
    """``torch.max_pool1d``: the maxima only (see :func:`max_pool1d_with_indices`).

    Example:
        >>> import downslope as ds
        >>> ds.max_pool1d(ds.tensor([[[1.0, 3.0, 5.0, 2.0]]]), 2)
        tensor([[[3., 5.]]])
    """
    out: Tensor = F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)
    return out


def max_pool1d_with_indices(
    input: Tensor, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> tuple[Tensor, Tensor]:
    """``torch.max_pool1d_with_indices``: (maxima, their positions along the last dim).

    Example:
        >>> import downslope as ds
        >>> ds.max_pool1d_with_indices(ds.tensor([[[1.0, 3.0, 5.0, 2.0]]]), 2)[1]
        tensor([[[1, 2]]])
    """
    out: tuple[Tensor, Tensor] = F.max_pool1d(
        input, kernel_size, _stride(stride), padding, dilation, ceil_mode, return_indices=True
    )
    return out


def max_pool2d(
    input: Tensor, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> Tensor:
    """``torch.max_pool2d``: the maxima only.

    Example:
        >>> import downslope as ds
        >>> ds.max_pool2d(ds.arange(16.0).reshape(1, 1, 4, 4), 2)
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
    """
    out: Tensor = F.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)
    return out


def max_pool3d(
    input: Tensor, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> Tensor:
    """``torch.max_pool3d``: the maxima only.

    Example:
        >>> import downslope as ds
        >>> ds.max_pool3d(ds.arange(8.0).reshape(1, 1, 2, 2, 2), 2).flatten()
        tensor([7.])
    """
    return F.max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


# ---------------------------------------------------------------------- padding, convolution, sampling
def constant_pad_nd(input: Tensor, pad: Sequence[int], value: float = 0) -> Tensor:
    """``torch.constant_pad_nd``: pad the last dims with ``value``, (left, right) pairs from the last
    dim backwards; a negative amount crops.

    Example:
        >>> import downslope as ds
        >>> ds.constant_pad_nd(ds.tensor([1.0, 2.0, 3.0]), [1, -1], 9.0)
        tensor([9., 1., 2.])
    """
    x = _as_tensor(input, "constant_pad_nd")
    amounts = list(pad) if isinstance(pad, (list, tuple)) else None
    if amounts is None or not all(isinstance(a, int) and not isinstance(a, bool) for a in amounts):
        raise ArgumentTypeError(f"constant_pad_nd: pad must be a list of ints, got {pad!r}")
    if len(amounts) % 2 or len(amounts) // 2 > x.ndim:
        raise ArgumentError(
            f"constant_pad_nd: pad must hold (left, right) pairs for at most {x.ndim} dims, got {len(amounts)} values"
        )
    crop: list[slice] = [slice(None)] * x.ndim
    for k in range(len(amounts) // 2):
        dim, left, right = x.ndim - 1 - k, amounts[2 * k], amounts[2 * k + 1]
        size = x.shape[dim] + left + right
        if size < 0:
            raise ShapeError(
                f"constant_pad_nd: padding ({left}, {right}) of dim {dim} of size {x.shape[dim]} leaves a negative size {size}"
            )
        crop[dim] = slice(max(-left, 0), x.shape[dim] - max(-right, 0))
    if any(a < 0 for a in amounts):
        x = x[tuple(crop)]
    return F.pad(x, tuple(max(a, 0) for a in amounts), "constant", value)


def convolution(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    output_padding: Any,
    groups: int,
) -> Tensor:
    """``torch.convolution``: the 1-, 2- or 3-d convolution (``transposed``: the transposed one)
    that the weight's rank names, with every argument given.

    Example:
        >>> import downslope as ds
        >>> ds.convolution(ds.ones(1, 1, 4), ds.ones(1, 1, 2), None, [1], [0], [1], False, [0], 1)
        tensor([[[2., 2., 2.]]])
    """
    w = _as_tensor(weight, "convolution")
    dims = w.ndim - 2
    if dims not in (1, 2, 3):
        raise ShapeError(
            f"convolution: expected a 3-, 4- or 5-d weight (1-, 2- or 3-d convolution), got {tuple(w.shape)}"
        )
    if transposed:
        transposed_fn = (conv_transpose1d, conv_transpose2d, conv_transpose3d)[dims - 1]
        return transposed_fn(input, w, bias, stride, padding, output_padding, groups, dilation)
    conv = (conv1d, conv2d, conv3d)[dims - 1]
    return conv(input, w, bias, stride, padding, dilation, groups)


_INTERPOLATION = {0: "bilinear", 1: "nearest", 2: "bicubic"}
_PADDING_MODE = {0: "zeros", 1: "border", 2: "reflection"}


def grid_sampler(
    input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int, align_corners: bool
) -> Tensor:
    """``torch.grid_sampler`` (and ``grid_sampler_2d``/``grid_sampler_3d``):
    :func:`downslope.nn.functional.grid_sample` with torch's enum ints (interpolation 0 bilinear,
    1 nearest, 2 bicubic (4-D input only); padding 0 zeros, 1 border, 2 reflection).

    Example:
        >>> import downslope as ds
        >>> grid = ds.zeros(1, 1, 1, 2)  # the centre
        >>> ds.grid_sampler(ds.tensor([[[[1.0, 3.0]]]]), grid, 0, 0, False)
        tensor([[[[2.]]]])
    """
    if interpolation_mode not in _INTERPOLATION or padding_mode not in _PADDING_MODE:
        raise ArgumentError(
            f"grid_sampler: interpolation_mode must be 0, 1 or 2 and padding_mode 0, 1 or 2, "
            f"got {interpolation_mode!r} and {padding_mode!r}"
        )
    return F.grid_sample(input, grid, _INTERPOLATION[interpolation_mode], _PADDING_MODE[padding_mode], align_corners)


grid_sampler_2d = grid_sampler
grid_sampler_3d = grid_sampler


def affine_grid_generator(theta: Tensor, size: Sequence[int], align_corners: bool) -> Tensor:
    """``torch.affine_grid_generator``: :func:`downslope.nn.functional.affine_grid` with
    ``align_corners`` required.

    Example:
        >>> import downslope as ds
        >>> ds.affine_grid_generator(ds.tensor([[[1.0, 0, 0], [0, 1, 0]]]), [1, 1, 1, 2], False).shape
        downslope.Size([1, 1, 2, 2])
    """
    return F.affine_grid(theta, size, align_corners)


def embedding(
    weight: Tensor, indices: Any, padding_idx: int = -1, scale_grad_by_freq: bool = False, sparse: bool = False
) -> Tensor:
    """``torch.embedding``: the rows ``indices`` of ``weight`` (the table comes FIRST); a negative
    ``padding_idx`` means none (torch's top-level convention), else that row gets no gradient.

    Example:
        >>> import downslope as ds
        >>> ds.embedding(ds.eye(3), ds.tensor([2, 0]))
        tensor([[0., 0., 1.],
                [1., 0., 0.]])
    """
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
        raise ArgumentTypeError(f"embedding: padding_idx must be an int, got {type(padding_idx).__name__}")
    pad = padding_idx if padding_idx >= 0 else None
    return F.embedding(indices, weight, pad, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


# ---------------------------------------------------------------------- losses (reduction: torch's enum int)
def binary_cross_entropy_with_logits(
    input: Tensor, target: Any, weight: Any = None, pos_weight: Any = None, reduction: int = 0
) -> Tensor:
    """``torch.binary_cross_entropy_with_logits``: ``pos_weight`` before ``reduction``, an int.

    Example:
        >>> import downslope as ds
        >>> ds.binary_cross_entropy_with_logits(ds.zeros(2), ds.ones(2), reduction=2)
        tensor(1.3863)
    """
    where = "binary_cross_entropy_with_logits"
    return F.binary_cross_entropy_with_logits(
        input, target, weight, reduction=_reduction(reduction, where), pos_weight=pos_weight
    )


def kl_div(input: Tensor, target: Any, reduction: int = 0, *, log_target: bool = False) -> Tensor:
    """``torch.kl_div``: :func:`downslope.nn.functional.kl_div` with an int ``reduction`` (1 is the
    mean over every element).

    Example:
        >>> import downslope as ds
        >>> ds.kl_div(ds.zeros(2), ds.ones(2), 2)
        tensor(0.)
    """
    return F.kl_div(input, target, reduction=_reduction(reduction, "kl_div"), log_target=log_target)


def hinge_embedding_loss(input: Tensor, target: Any, margin: float = 1.0, reduction: int = 0) -> Tensor:
    """``torch.hinge_embedding_loss`` with an int ``reduction``.

    Example:
        >>> import downslope as ds
        >>> ds.hinge_embedding_loss(ds.tensor([0.5, 2.0]), ds.tensor([-1.0, 1.0]))
        tensor([0.5, 2. ])
    """
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction, "hinge_embedding_loss"))


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Any, margin: float = 0.0, reduction: int = 0) -> Tensor:
    """``torch.margin_ranking_loss`` with an int ``reduction``.

    Example:
        >>> import downslope as ds
        >>> ds.margin_ranking_loss(ds.tensor([1.0]), ds.tensor([2.0]), ds.tensor([1.0]))
        tensor([1.])
    """
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction, "margin_ranking_loss"))


def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Any, margin: float = 0.0, reduction: int = 0
) -> Tensor:
    """``torch.cosine_embedding_loss`` with an int ``reduction``.

    Example:
        >>> import downslope as ds
        >>> ds.cosine_embedding_loss(ds.tensor([[1.0, 0.0]]), ds.tensor([[0.0, 1.0]]), ds.tensor([1.0]))
        tensor([1.])
    """
    return F.cosine_embedding_loss(
        input1, input2, target, margin, reduction=_reduction(reduction, "cosine_embedding_loss")
    )


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: int = 0,
) -> Tensor:
    """``torch.triplet_margin_loss`` with an int ``reduction``.

    Example:
        >>> import downslope as ds
        >>> ds.triplet_margin_loss(ds.zeros(1, 2), ds.zeros(1, 2), ds.ones(1, 2) * 3).shape
        downslope.Size([1])
    """
    where = "triplet_margin_loss"
    return F.triplet_margin_loss(
        anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction, where)
    )


def poisson_nll_loss(input: Tensor, target: Any, log_input: bool, full: bool, eps: float, reduction: int) -> Tensor:
    """``torch.poisson_nll_loss``: every argument given, ``reduction`` an int.

    Example:
        >>> import downslope as ds
        >>> ds.poisson_nll_loss(ds.zeros(2), ds.ones(2), True, False, 1e-8, 2)
        tensor(2.)
    """
    return F.poisson_nll_loss(
        input, target, log_input, full, eps=eps, reduction=_reduction(reduction, "poisson_nll_loss")
    )


def ctc_loss(
    log_probs: Tensor,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: int = 0,
    zero_infinity: bool = False,
) -> Tensor:
    """``torch.ctc_loss`` with an int ``reduction`` (1: each sequence's loss divided by its target
    length, then the mean, as the functional API's 'mean').

    Example:
        >>> import downslope as ds
        >>> lp = ds.zeros(2, 1, 2).log_softmax(2)
        >>> ds.ctc_loss(lp, ds.tensor([[1]]), [2], [1])
        tensor([0.2877])
    """
    where = "ctc_loss"
    return F.ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank, _reduction(reduction, where), zero_infinity
    )


# ---------------------------------------------------------------------- recurrent cells
def _cell_args(
    where: str, gates: int, input: Any, hx: Sequence[Any], w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any
) -> None:
    tensors = [("input", input), *(("hx", h) for h in hx), ("w_ih", w_ih), ("w_hh", w_hh)]
    tensors += [(name, b) for name, b in (("b_ih", b_ih), ("b_hh", b_hh)) if b is not None]
    for name, t in tensors:
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{where}: {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim != 2:
        raise ShapeError(f"{where}: expected a 2-d input (N, input_size), got shape {tuple(input.shape)}")
    n, hidden = input.shape[0], (hx[0].shape[-1] if hx[0].ndim else 0)
    want = {
        "hx": (n, hidden),
        "w_ih": (gates * hidden, input.shape[1]),
        "w_hh": (gates * hidden, hidden),
        "b_ih": (gates * hidden,),
        "b_hh": (gates * hidden,),
    }
    for name, t in tensors[1:]:
        if t.shape != want[name]:
            raise ShapeError(
                f"{where}: {name} must have shape {want[name]} for input {tuple(input.shape)} and hidden size {hidden}, "
                f"got {tuple(t.shape)}"
            )
        if t.dtype != input.dtype:
            raise ArgumentTypeError(f"{where}: {name} has dtype {t.dtype}, the input {input.dtype}")


def lstm_cell(
    input: Tensor,
    hx: Sequence[Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``torch.lstm_cell``: one LSTM step, ``hx`` = (h, c); returns (h', c'). Gates i, f, g, o.

    Example:
        >>> import downslope as ds
        >>> h, c = ds.lstm_cell(ds.ones(4, 3), [ds.zeros(4, 2), ds.zeros(4, 2)], ds.ones(8, 3), ds.ones(8, 2))
        >>> h.shape, c.shape
        (downslope.Size([4, 2]), downslope.Size([4, 2]))
    """
    if not isinstance(hx, (list, tuple)) or len(hx) != 2:
        raise ArgumentTypeError(f"lstm_cell: hx must be a list (h, c) of two tensors, got {type(hx).__name__}")
    _cell_args("lstm_cell", 4, input, hx, w_ih, w_hh, b_ih, b_hh)
    packed = _fused_lstm_cell(input, hx[0], hx[1], w_ih, w_hh, b_ih, b_hh)
    return packed[0], packed[1]


def gru_cell(
    input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None
) -> Tensor:
    """``torch.gru_cell``: one GRU step (gates r, z, n); returns h'.

    Example:
        >>> import downslope as ds
        >>> ds.gru_cell(ds.ones(4, 3), ds.zeros(4, 2), ds.ones(6, 3), ds.ones(6, 2)).shape
        downslope.Size([4, 2])
    """
    _cell_args("gru_cell", 3, input, (hx,), w_ih, w_hh, b_ih, b_hh)
    return _fused_gru_cell(input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_tanh_cell(
    input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None
) -> Tensor:
    """``torch.rnn_tanh_cell``: ``tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)``.

    Example:
        >>> import downslope as ds
        >>> ds.rnn_tanh_cell(ds.ones(4, 3), ds.zeros(4, 2), ds.ones(2, 3), ds.ones(2, 2)).shape
        downslope.Size([4, 2])
    """
    _cell_args("rnn_tanh_cell", 1, input, (hx,), w_ih, w_hh, b_ih, b_hh)
    return ops.tanh(F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh))


def rnn_relu_cell(
    input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None
) -> Tensor:
    """``torch.rnn_relu_cell``: ``relu(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)``.

    Example:
        >>> import downslope as ds
        >>> ds.rnn_relu_cell(ds.ones(4, 3), ds.zeros(4, 2), ds.ones(2, 3), ds.ones(2, 2)).shape
        downslope.Size([4, 2])
    """
    _cell_args("rnn_relu_cell", 1, input, (hx,), w_ih, w_hh, b_ih, b_hh)
    return ops.relu(F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh))


# One list with the names `import downslope` routes here (see downslope.torch_alias_names).
__all__ = sorted(TORCH_ALIAS_NAMES)
