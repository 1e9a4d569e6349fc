"""Neural-network building blocks with PyTorch's names: Module, Parameter, layers, losses, init.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> model(ds.randn(2, 4)).shape
    downslope.Size([2, 3])
"""

from __future__ import annotations

from . import functional, init, utils
from . import parallel as parallel  # torch.nn.parallel
from . import parameter as parameter  # torch.nn.parameter
from .activation import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    CosineSimilarity,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PairwiseDistance,
    PReLU,
    ReLU,
    ReLU6,
    RReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softmax2d,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from .adaptive import AdaptiveLogSoftmaxWithLoss
from .attention import MultiheadAttention
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .convolution import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    MaxPool1d,
    MaxPool2d,
)
from .fold import Fold, Unfold
from .layers import (
    AlphaDropout,
    Bilinear,
    ChannelShuffle,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    Embedding,
    EmbeddingBag,
    FeatureAlphaDropout,
    Linear,
    PixelShuffle,
    PixelUnshuffle,
)
from .lazy import (
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
    LazyLinear,
)
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    CTCLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    LinearCrossEntropyLoss,
    LinearCrossEntropyOptions,
    MarginRankingLoss,
    MSELoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss,
    NLLLoss2d,
    PoissonNLLLoss,
    SmoothL1Loss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)
from .module import (
    Buffer,
    Flatten,
    Identity,
    IncompatibleKeys,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    Sequential,
    Unflatten,
)
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
    LocalResponseNorm,
    RMSNorm,
)
from .padding import (
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)
from .parallel import DataParallel
from .parameter import UninitializedBuffer, UninitializedParameter
from .pooling_extra import (
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    CrossMapLRN2d,
    LPPool1d,
    LPPool2d,
    LPPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
    MaxUnpool3d,
)
from .pooling_windows import AdaptiveMaxPool3d, FractionalMaxPool2d, FractionalMaxPool3d
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .sync_batchnorm import SyncBatchNorm
from .transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .utils import rnn as _rnn  # noqa: F401  (nn.utils.rnn as an attribute path)
from .volumetric import AdaptiveAvgPool3d, AvgPool3d, Conv3d, ConvTranspose3d, MaxPool3d

__all__ = [
    "functional", "init", "utils", "parallel", "DataParallel",
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "Identity", "Flatten", "Unflatten", "IncompatibleKeys",
    "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d",
    "ReplicationPad2d", "CircularPad1d", "CircularPad2d", "Softshrink", "Hardshrink", "Softmax2d",
    "Linear", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Embedding",
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm",
    "Bilinear", "PixelShuffle", "PixelUnshuffle", "ChannelShuffle", "AlphaDropout", "FeatureAlphaDropout", "RReLU",
    "MultiMarginLoss", "EmbeddingBag", "LocalResponseNorm", "TripletMarginWithDistanceLoss", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d", "LPPool2d", "Fold", "Unfold", "MaxUnpool1d", "MaxUnpool2d", "MultiLabelMarginLoss", "NLLLoss2d", "Buffer", "CTCLoss", "AdaptiveLogSoftmaxWithLoss", "RNNBase", "RNNCellBase", "Conv3d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d", "InstanceNorm3d",
    "ZeroPad3d", "ConstantPad3d", "ReflectionPad3d", "ReplicationPad3d", "CircularPad3d",
    "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "parameter", "UninitializedParameter", "UninitializedBuffer", "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d",
    "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
    "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
    "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss",
    "KLDivLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss", "TripletMarginLoss", "PoissonNLLLoss", "GaussianNLLLoss",
    "ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softplus", "SiLU",
    "ReLU6", "Hardtanh", "SELU", "CELU", "Mish", "Softsign", "Softmin", "LogSigmoid", "Tanhshrink", "Hardsigmoid",
    "Hardswish", "Threshold", "GLU", "PReLU", "CosineSimilarity", "PairwiseDistance",
    "CrossMapLRN2d", "LPPool3d", "MaxUnpool3d", "AdaptiveMaxPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d",
    "LinearCrossEntropyLoss", "LinearCrossEntropyOptions",
]  # fmt: skip


def __getattr__(name: str) -> object:
    if name == "grad":  # torch.nn.grad (conv gradients), loaded on first use
        import importlib

        return importlib.import_module(f"{__name__}.grad")  # not `from . import`: it would ask this hook again
    # einops' layers (Rearrange, Reduce, EinMix: einops.layers.torch's) load with einops, which is optional,
    # on first use; without einops they are missing attributes whose message says what to install
    if name in ("Rearrange", "Reduce", "EinMix"):
        try:
            from . import einops_layers
        except ModuleNotFoundError as missing:
            if (missing.name or "").partition(".")[0] != "einops":
                raise
            message = f"downslope.nn.{name} is einops' layer and needs einops (pip install einops)"
            raise AttributeError(message) from None
        return getattr(einops_layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# PyTorch's module path ``torch.nn.modules``: ``modules.module`` is ``downslope.nn.module`` (global hooks
# live there), and its other submodules (batchnorm, conv, loss ...) hold the private layer bases.
from . import modules as modules  # noqa: E402
