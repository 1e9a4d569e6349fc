"""Loss functions, as functions (``mse_loss``) and as modules (``MSELoss``), with PyTorch's formulas.

Every loss takes ``reduction``: ``'mean'`` (default), ``'sum'`` or ``'none'`` (per element).

One deliberate difference from PyTorch: an elementwise loss given an input and a target of
different shapes raises a ValueError naming both shapes. PyTorch broadcasts them with only a
warning, so ``mse_loss`` of predictions (N, 1) against targets (N,) silently averages an (N, N)
matrix of every prediction against every target, and training "works" towards the wrong answer.

Two losses are fused into a single op with a hand-written gradient, because they are hot or
because the composite would be unstable:

* ``cross_entropy`` with class indices: log-softmax and the pick of the target's log-probability
  in one forward; the gradient is ``(softmax - smoothed one-hot) * scale``. It supports double
  backward (the rule is recomputed from differentiable ops under ``create_graph``).
* ``binary_cross_entropy`` (from probabilities): logs clamped at -100 as in PyTorch, whose
  composite gradient would be inf * 0 = nan at probabilities of exactly 0 or 1.
* ``mse_loss`` with mean/sum reduction: one op instead of three (the common regression loss).

Modules by family: regression (MSE, L1, Huber, Poisson/Gaussian NLL), classification (binary and
multi-class cross-entropy, NLL, KL divergence), margin (ranking, hinge, margin and triplet losses),
ctc (connectionist temporal classification); _base holds the shared checks and the ``_Loss`` module.
"""

from __future__ import annotations

from .classification import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    KLDivLoss,
    NLLLoss,
    NLLLoss2d,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    nll_loss,
)
from .ctc import CTCLoss, ctc_loss
from .linear_cross_entropy import LinearCrossEntropyLoss, LinearCrossEntropyOptions, linear_cross_entropy
from .margin import (
    CosineEmbeddingLoss,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
    cosine_embedding_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from .regression import (
    GaussianNLLLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    gaussian_nll_loss,
    huber_loss,
    l1_loss,
    mse_loss,
    poisson_nll_loss,
    smooth_l1_loss,
)

__all__ = [
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "smooth_l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "kl_div",
    "MSELoss",
    "L1Loss",
    "HuberLoss",
    "SmoothL1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "KLDivLoss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "MarginRankingLoss",
    "HingeEmbeddingLoss",
    "SoftMarginLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "TripletMarginLoss",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
    "multi_margin_loss",
    "MultiMarginLoss",
    "multilabel_margin_loss",
    "MultiLabelMarginLoss",
    "NLLLoss2d",
    "triplet_margin_with_distance_loss",
    "TripletMarginWithDistanceLoss",
    "ctc_loss",
    "CTCLoss",
    "linear_cross_entropy",
    "LinearCrossEntropyLoss",
    "LinearCrossEntropyOptions",
]
