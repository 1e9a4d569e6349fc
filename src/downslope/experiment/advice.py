"""Why a run's gradient descent diverged or crawled, from the curvature its data gives the loss.

For the mean squared error of a linear model, the loss is a quadratic whose Hessian is
``2/(n k) [X 1]^T [X 1]`` (n rows, k outputs): its largest eigenvalue L sets the largest learning rate
plain gradient descent survives (2 / L), and the target plays no part in it. Features in large units
(an area of 40-250 m^2) make L large and that rate tiny; standardized features keep it near 1. The
same quadratic has a closed-form minimum (least squares), which tells a crawl from convergence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np  # noqa: F401  (the examples use it)

# the curvature and the least-squares optimum are computed where fit judges its runs with them too
from ..train.diagnostics import condition_number, standardized, unconverged_loss

# (named here too: run.py and the tests import them from this module)
from ..train.diagnostics import least_squares_loss as least_squares_loss
from ..train.diagnostics import stable_lr as stable_lr

#: The optimizers whose stability is set by the curvature alone (a step of lr times the gradient);
#: adaptive ones (Adam, RMSprop...) divide the gradient by its own size and are not judged.
_CURVATURE_BOUND = ("gd", "sgd", "momentum", "nesterov")


def judged(cfg: dict[str, Any], task: str) -> bool:
    """Whether the run is one the curvature bound describes: a linear model, MSE, a plain-gradient
    optimizer, no weight decay (which changes the minimum)."""
    return (
        cfg.get("model") == "linear"
        and task == "regression"
        and cfg.get("loss", "auto") in ("auto", "mse")
        and cfg.get("optimizer") in _CURVATURE_BOUND
        and not cfg.get("weight_decay")
    )


def _momentum(cfg: dict[str, Any], optimizer_momentum: float | None) -> float:
    """The heavy-ball widening of the stable range: 1 + beta (Nesterov's look-ahead step gives back
    part of it: (1 + beta) / (1 + 2 beta)), beta the momentum trained with."""
    beta = optimizer_momentum
    if beta is None:
        beta = 0.9 if cfg.get("optimizer") in ("momentum", "nesterov") else 0.0
    if cfg.get("optimizer") == "nesterov":
        return (1.0 + beta) / (1.0 + 2.0 * beta) - 1.0
    return float(beta)


def _fix(cfg: dict[str, Any], X: Any, n_outputs: int, momentum: float, limit: float, crawl: bool = False) -> str:
    """What to change: standardize the features when the run did not, else a learning rate under ``limit``.
    ``crawl``: the run was too slow rather than unstable, so no lower rate is advised."""
    if not cfg.get("standardize", True):
        better = stable_lr(standardized(X), n_outputs, momentum)
        with_std = f" (about {better:.2g} with standardized features)" if better else ""
        if crawl:
            ratio = condition_number(X)
            spans = f" (its curvature differs {ratio:.2g}-fold between directions)" if ratio else ""
            return (
                f"the features are not standardized (--no-standardize): their scale makes the largest stable "
                f"learning rate of gradient descent tiny, about {limit:.2g}{with_std}, and at such a rate the "
                f"loss's flat directions{spans} take very many steps. Drop --no-standardize"
            )
        return (
            f"the features are not standardized (--no-standardize), and their scale makes the largest stable "
            f"learning rate of gradient descent tiny: about {limit:.2g}{with_std}. Drop --no-standardize, "
            f"or keep it and use --lr {limit / 2:.2g} or lower"
        )
    return f"the largest stable learning rate of gradient descent on these features is about {limit:.2g}: use --lr {limit / 2:.2g}"


def divergence_note(
    cfg: dict[str, Any], X: Any, task: str, n_outputs: int, lr: float | None, optimizer_momentum: float | None
) -> str:
    """Why a diverged run diverged, when the curvature says: its learning rate is above the largest
    stable one of its features (the target's scale plays no part in that bound); "" otherwise."""
    if lr is None or not judged(cfg, task):
        return ""
    momentum = _momentum(cfg, optimizer_momentum)
    limit = stable_lr(X, n_outputs, momentum)
    if limit is None or lr <= limit:
        return ""
    return (
        f"the learning rate {lr:g} is {lr / limit:.3g} times {DIVERGENCE_CAUSE} for a linear model on these "
        f"features (2 / the loss's curvature, from the training rows): {_fix(cfg, X, n_outputs, momentum, limit)}"
    )


#: What a divergence note says (the run's later warnings look for it, to add no other guess at the cause).
DIVERGENCE_CAUSE = "the largest stable one"


def crawl_note(
    cfg: dict[str, Any],
    X: Any,
    y_model: Any,
    task: str,
    n_outputs: int,
    losses: list[Any],
    lr: float | None,
    optimizer_momentum: float | None,
) -> str:
    """A run stopped by its epoch limit far from the least-squares optimum its linear model can reach
    (``y_model``: the targets in the units trained on); "" for a converged run or one not judged.

    Example:
        >>> x = np.array([[100.0], [200.0], [300.0]])
        >>> cfg = {"model": "linear", "optimizer": "gd", "standardize": False}
        >>> losses = [4.0 - 0.1 * e for e in range(10)]  # still far above the optimum, near 0.0017
        >>> crawl_note(cfg, x, np.array([1.0, 2.0, 3.1]), "regression", 1, losses, 1e-5, None)[:26]
        'training had not converged'
    """
    if not judged(cfg, task):
        return ""
    gap = unconverged_loss(X, y_model, losses)  # (as still_improving_note: short runs are not judged)
    if gap is None:
        return ""
    last, best = gap
    excess = last - best
    momentum = _momentum(cfg, optimizer_momentum)
    limit = stable_lr(X, n_outputs, momentum)
    advice = f"train longer (--epochs {2 * int(cfg.get('epochs', 0)) or 'more'})"
    if limit is not None and not cfg.get("standardize", True):
        advice = _fix(cfg, X, n_outputs, momentum, limit, crawl=True)
    elif limit is not None and lr is not None and lr < limit / 4:
        advice = f"raise the learning rate (now {lr:g}) towards the largest stable one, about {limit:.2g} (--lr {limit / 2:.2g})"
    above = f"{100 * excess / best:.3g}% above" if best > 0 else "above"
    return (
        f"training had not converged: its best training loss {last:.4g} is {above} {best:.4g}, the least-squares "
        f"optimum a linear model reaches on these rows; gradient descent was crawling, not finished: {advice}"
    )


#: A model whose validation loss, at the epoch it is saved from, is more than this many times its training
#: loss fits the training rows far better than rows it has not seen (a large generalisation gap) ...
GAP_RATIO = 10.0
#: ... and the gap matters when that validation loss is more than this fraction of a model's that ignores the
#: features (the training mean, or the training class frequencies): for a standardized target and the MSE,
#: 1 - r2 on the validation rows above 0.1. Both small (0.001 vs 0.02 on digits) is a good fit, not a problem.
GAP_BASELINE_SHARE = 0.1


def generalisation_gap_note(
    train_loss: float | None,
    val_loss: float | None,
    baseline: float | None,
    epoch: int,
    cfg: dict[str, Any],
    n_features: int,
    n_train: int,
) -> str:
    """Advice when the saved model overfits: its validation loss (at ``epoch``, 1-based) is more than
    :data:`GAP_RATIO` times its training loss and more than :data:`GAP_BASELINE_SHARE` of ``baseline``, the
    validation loss of predicting without the features. A validation loss that rises above its best is told
    elsewhere; this one may plateau, early stopping keeps its best epoch, and still the model fits the
    training rows' noise: a wide table (many features per row) is the usual cause. The advice is what the run
    has not done: a linear model (for an MLP), weight decay, dropout, fewer hidden units.

    Example:
        >>> cfg = {"model": "mlp", "weight_decay": 0.0, "dropout": 0.0, "hidden": [128, 64]}
        >>> print(generalisation_gap_note(2.3e-4, 0.25, 1.0, 17, cfg, 199, 650))  # doctest: +ELLIPSIS
        the model overfits: at epoch 17, whose weights are saved, the validation loss 0.25 is 1087 times the ...
        >>> generalisation_gap_note(0.004, 0.08, 2.3, 40, cfg, 64, 1168)  # a good fit: both losses small
        ''
    """
    if train_loss is None or val_loss is None or baseline is None:
        return ""
    if not all(math.isfinite(v) for v in (train_loss, val_loss, baseline)) or baseline <= 0 or val_loss <= 0:
        return ""
    if val_loss <= GAP_RATIO * max(train_loss, 0.0) or val_loss <= GAP_BASELINE_SHARE * baseline:
        return ""
    ratio = f"{val_loss / train_loss:.0f} times" if train_loss > 0 else "far above"
    tries = []
    if cfg.get("model", "mlp") == "mlp":
        tries.append("--model linear (one weight per feature; on a table with a linear target it is the model to beat)")
    decay = float(cfg.get("weight_decay") or 0.0)
    tries.append(f"--weight-decay {max(0.1, 10 * decay):g}" if decay else "--weight-decay 0.1")
    if cfg.get("model", "mlp") in ("mlp", "cnn"):
        dropout = float(cfg.get("dropout") or 0.0)
        if dropout < 0.5:
            tries.append(f"--dropout {0.5 if dropout >= 0.2 else 0.2:g}")
        hidden = [int(h) for h in cfg.get("hidden") or []]
        if hidden and max(hidden) > 8:
            tries.append(f"a smaller --hidden ({','.join(str(max(4, h // 4)) for h in hidden)})")
    wide = f"; {n_features} features for {n_train} training rows" if n_features * 10 > n_train else ""
    return (
        f"the model overfits: at epoch {epoch}, whose weights are saved, the validation loss {val_loss:.4g} is "
        f"{ratio} the training loss {train_loss:.3g}, and {100 * val_loss / baseline:.0f}% of the loss of predicting "
        f"without the features ({baseline:.4g}){wide}; it fits the training rows' noise, which more epochs would "
        f"not cure: try {', '.join(tries[:-1]) + ' or ' + tries[-1] if len(tries) > 1 else tries[0]}"
    )
