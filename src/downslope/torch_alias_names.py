"""The names of torch's top-level spellings of nn functions (``torch.conv2d``, ``torch.dropout(x, p,
train)``, ...) that ``downslope.nn._torch_aliases`` defines.

One list serves both sides: ``import downslope`` reads it to send ``ds.conv2d`` to
``downslope.nn`` on first use, and the aliases module exports it as its ``__all__``. It lives here,
in a module that imports nothing, because ``import downslope`` must not import ``downslope.nn``
(that would make the package's import slow).
"""

from __future__ import annotations

TORCH_ALIAS_NAMES = frozenset((
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "affine_grid_generator", "alpha_dropout", "alpha_dropout_",
    "avg_pool1d", "batch_norm", "bilinear", "binary_cross_entropy_with_logits", "celu", "celu_", "channel_shuffle",
    "constant_pad_nd", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_tbc", "convolution", "cosine_embedding_loss", "cosine_similarity", "ctc_loss", "dropout", "dropout_", "embedding",
    "feature_alpha_dropout", "feature_alpha_dropout_", "feature_dropout", "feature_dropout_", "grid_sampler",
    "grid_sampler_2d", "grid_sampler_3d", "group_norm", "gru_cell", "hardshrink", "hinge_embedding_loss", "instance_norm", "kl_div",
    "layer_norm", "lstm_cell", "margin_ranking_loss", "max_pool1d", "max_pool1d_with_indices", "max_pool2d",
    "max_pool3d", "native_channel_shuffle", "pairwise_distance", "pdist", "pixel_shuffle", "pixel_unshuffle",
    "poisson_nll_loss", "prelu", "relu_", "rms_norm", "rnn_relu_cell", "rnn_tanh_cell", "rrelu", "rrelu_", "selu",
    "selu_", "threshold", "threshold_", "triplet_margin_loss",
))  # fmt: skip
